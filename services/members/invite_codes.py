"""Every member's own invite code, made when the member is: the code friends bind to (see loyalty.referral)."""

from __future__ import annotations

import secrets

# No 0/O or 1/I: a code read aloud or copied from a poster cannot be mistyped into another one.
INVITE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
INVITE_CODE_LENGTH = 8


def new_invite_code() -> str:
    """A fresh random invite code (8 characters of an unambiguous alphabet, ~40 bits); check uniqueness on
    insert (`Member.invite_code` is unique) and draw again on a clash."""
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_CODE_LENGTH))
