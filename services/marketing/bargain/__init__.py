"""Bargains (砍价): staff set up activities, members start bargains and friends cut them (service, with the cut
plan in cuts), the starter buys at the price reached through checkout's campaign lines (campaign). Importing
the package registers the campaign, its cancel hook and its sweep job."""

from services.marketing.bargain import campaign as campaign

__all__ = ["campaign"]
