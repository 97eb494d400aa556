"""Orders: cart, order pricing (quotes, shipping, points, adjustments), checkout, the order state machine,
after-sales, settlement of payments and refunds, order queries and shipping, and the sweeper.

May import every lower domain: access, catalog, members, loyalty, payments. Marketing plugs in through
`pricing.register_adjustment` and the state machine's hooks.
"""

# Importing the package registers what settled payments and refunds mean for orders.
from services.orders import settlement as settlement
