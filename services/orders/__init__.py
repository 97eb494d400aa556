"""Orders: cart, order pricing (the pricing pipeline's slots, quotes, shipping, points), checkout, the order
state machine, after-sales, settlement of payments and refunds, order queries and shipping, and the sweeper.

May import every lower domain: access, catalog, members, loyalty, payments. Marketing plugs in through
`pipeline.register_step` (promotions, coupons), `campaigns.register_campaign` and the state machine's hooks.
"""

# Importing the package registers what settled payments and refunds mean for orders.
from services.orders import settlement as settlement
