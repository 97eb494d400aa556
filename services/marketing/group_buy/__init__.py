"""Group buys (拼团): staff rules (`rules`), and the groups shoppers open, join, fill or fail (`groups`).

Importing this package registers the GROUP_BUY campaign handler with checkout, the PAID / CANCELLED entry hooks
and the SHIPPED guard with the order state machine, and the `group-buy` sweep job with the sweeper.
"""

from services.marketing.group_buy import groups as groups
from services.marketing.group_buy import rules as rules
