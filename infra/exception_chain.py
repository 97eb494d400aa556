"""Looking through an exception's chain: libraries wrap the failure that matters (a driver's connection error
inside an ORM's, a socket error inside a client's), and the edge answers by what caused it."""

from __future__ import annotations

# Chains are short; the bound only guards against a cycle built by hand.
MAX_DEPTH = 8


def caused_by(
    exc: BaseException | None, kinds: type[BaseException] | tuple[type[BaseException], ...]
) -> bool:
    """Whether `exc` or an exception it was raised from (or while handling) is one of `kinds`."""
    seen = 0
    while exc is not None and seen < MAX_DEPTH:
        if isinstance(exc, kinds):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
