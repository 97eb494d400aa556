"""Marketing: promotions and coupons, flash sales, group buys, bargains, presales, distribution.

May import every domain below it (access, catalog, members, loyalty, payments, orders); plugs into orders
through the pricing pipeline's registered steps and the order state machine's hooks.
"""
