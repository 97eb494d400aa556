"""The cut plan of a bargain: random cuts that reach the floor with exactly the N-th helper, never below it.

With `remaining` fen between the current price and the floor and `helpers_left` cuts to go, a cut is drawn
uniformly from 1 to twice the fair share (remaining / helpers_left), but never so deep that a later helper
would have less than 1 fen to cut; the last helper cuts exactly what remains. So every cut is at least 1 fen,
the cuts add up to start - floor, and the floor is reached by the N-th helper and not before (this needs
start - floor >= N fen, which setup checks).
"""

from __future__ import annotations

import random
import secrets

_system = secrets.SystemRandom()


def next_cut(remaining: int, helpers_left: int, rng: random.Random | None = None) -> int:
    """How many fen the next helper cuts. Raises ValueError when no valid cut exists."""
    if helpers_left < 1 or remaining < helpers_left:
        raise ValueError(f"cannot cut {remaining} fen over {helpers_left} helpers, 1 fen each at least")
    if helpers_left == 1:
        return remaining
    ceiling = min(remaining - (helpers_left - 1), max(1, 2 * remaining // helpers_left))
    return (rng or _system).randint(1, ceiling)
