"""Loyalty: member levels by growth, the points ledger, daily sign-in and referral (who invited whom).

May import access, catalog and members. Plugs the level discount into the viewer (`members.viewer`).
"""

# Importing the package plugs the level discount into every viewer.
from services.loyalty import levels as levels
