"""Payments: WeChat Pay prepay, payment and refund notifications (verified, recorded, idempotent), refunds.

May import access, catalog, members and loyalty. What a settled payment or refund means for an order is
plugged in by the orders domain (`notifications.register_settlement`), so payments never imports orders.
"""
