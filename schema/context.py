"""The per-request (and per-subscription-event) context resolvers see."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from aiodataloader import DataLoader
from tortoise.models import Model

from infra.client_ip import client_ip, network_key
from infra.leaky_bucket import BucketState
from infra.settings import Settings, get_settings
from loaders.catalog import CatalogLoaders
from loaders.members import MemberLoaders
from loaders.rows import RowLoader
from services.members.viewer import ANONYMOUS, Viewer

if TYPE_CHECKING:
    from loaders.content import ContentLoaders
    from schema.cache_policy import ExecutedOperation
    from schema.volatile import Noted

L = TypeVar("L", bound=DataLoader[Any, Any])


@dataclass
class Context:
    viewer: Viewer = ANONYMOUS
    settings: Settings = field(default_factory=get_settings)
    request: Any = None
    response: Any = None
    # Filled while resolving: what a cached copy of this answer depends on.
    cache_tags: set[str] = field(default_factory=set)
    cache_expires_at: float | None = None  # Unix seconds (infra.clock) when the answer stops being true
    cache_blocked: bool = False
    search_terms: list[str] = field(default_factory=list)
    cache_key: str | None = None
    cache_marks: tuple[int, bytes] | None = None
    # What a cache candidate ran (schema/cache_policy.py decides from it whether its answer may be stored).
    operation: ExecutedOperation | None = None
    # Where volatile numbers (stock) went in the answer (schema/volatile.py); noted only when it may be cached.
    volatile: list[Noted] | None = None
    # When the request began reading (monotonic): what it read from the database is at least this fresh.
    started: float = field(default_factory=time.monotonic)
    # Set by schema/query_guard.py when the caller's cost bucket refused: the HTTP answer is a 429.
    retry_after: float | None = None
    # The bucket spend of an edge that answers early (schema/sold_out_lane.py) and handed the request over:
    # QueryGuard takes it instead of spending again.
    charged: BucketState | None = None
    # Loaders a domain asks for by class (`loader`) or by model (`rows`), made on first use.
    _loaders: dict[object, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def loaders(self) -> CatalogLoaders:
        # Made on first use: requests answered without resolving (cache hits, parse errors) skip them.
        return CatalogLoaders()

    @cached_property
    def member_loaders(self) -> MemberLoaders:
        return MemberLoaders()

    @cached_property
    def content_loaders(self) -> ContentLoaders:
        from loaders.content import ContentLoaders

        return ContentLoaders()

    def loader(self, kind: type[L]) -> L:
        """This request's loader of class `kind`: one per request, so every load in it joins one batch."""
        made = self._loaders.get(kind)
        if made is None:
            made = self._loaders[kind] = kind()
        return made  # type: ignore[no-any-return]

    def rows(self, model: type[Model]) -> RowLoader:
        """This request's loader of `model` rows by primary key."""
        made = self._loaders.get(model)
        if made is None:
            made = self._loaders[model] = RowLoader(model)
        return made  # type: ignore[no-any-return]

    def forget_loaded(self) -> None:
        """Drop every loader (and the rows they hold); the next use makes fresh ones."""
        self._loaders.clear()
        self.__dict__.pop("loaders", None)
        self.__dict__.pop("member_loaders", None)
        self.__dict__.pop("content_loaders", None)

    def depends_on(self, *tags: str) -> None:
        self.cache_tags.update(tags)

    def true_until(self, moment: datetime | None) -> None:
        """A cached copy of this answer stops being true at `moment` (e.g. a promotion's start or end)."""
        if moment is not None:
            stamp = moment.timestamp()
            if self.cache_expires_at is None or stamp < self.cache_expires_at:
                self.cache_expires_at = stamp

    def fresh(self) -> Context:
        """A copy with new loaders, for each subscription event: a WebSocket keeps one context for its whole
        life, and loaders kept that long would serve stale rows."""
        return Context(viewer=self.viewer, settings=self.settings, request=self.request)


def searcher_key(viewer: Viewer, connection: Any) -> str | None:
    """Whom a search counts for in the hot words: a member by id, a guest by network address. Staff and
    partners (admin screens, integrations) are not shoppers and do not count."""
    if viewer.member is not None:
        return f"m:{viewer.member.id}"
    if viewer.is_anonymous:
        ip = client_ip(connection)
        return f"ip:{network_key(ip)}" if ip else None
    return None


def make_context(viewer: Viewer = ANONYMOUS, **kwargs: Any) -> Context:
    return Context(viewer=viewer, **kwargs)
