"""Presales (预售): staff setup (`setup`), and orders paid as a deposit then a balance (`orders`).

Importing this package registers the PRESALE campaign handler with checkout, its payment plan with payments
(DEPOSIT, then BALANCE), its CANCELLED guard and PAID / CANCELLED hooks with the order state machine, and the
`presale-reminders` sweep job.
"""

from services.marketing.presale import orders as orders
from services.marketing.presale import setup as setup
