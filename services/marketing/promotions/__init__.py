"""Promotions: rules built from registered conditions and actions (rules), the engine applying them in the
pricing pipeline and on the product page (engine), and what staff do with them (admin).

Importing the package registers the LIMITED_TIME and THRESHOLD steps of the pricing pipeline.
"""

from services.marketing.promotions.engine import LimitedTimeStep, OrderPromotionStep
from services.orders.pipeline import register_step

register_step(LimitedTimeStep())
register_step(OrderPromotionStep())
