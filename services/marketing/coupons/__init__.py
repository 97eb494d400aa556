"""Coupons: templates staff define (`templates`), the coupons members hold and how they get them (`wallet`,
`codes`), which of them an order can use and the best combination (`choice`), and their part in checkout
(`checkout`: a pricing step, consumed in the order's transaction, given back on cancel or refund).

A member's coupon is a row (`MemberCoupon`); every count that must not be exceeded is guarded by the database:
a template's total by a guarded update (`issued < total_quantity`), the per-member limit by the unique
(coupon, member, seq) with `seq` at most the limit, a use by a guarded update (`status = UNUSED`).
"""
