"""Flash sales (秒杀): staff set up daily slots and activities (setup), shoppers see the day's slots with
countdowns and buy through checkout's campaign lines (schedule, campaign); Redis counters (stock) turn the crowd
away, the database records the winners. Importing the package registers the campaign and its hooks."""

from services.marketing.flash_sale import campaign as campaign

__all__ = ["campaign"]
