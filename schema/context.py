"""The per-request (and per-subscription-event) context resolvers see."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from infra.settings import Settings, get_settings
from loaders.catalog import CatalogLoaders
from loaders.members import MemberLoaders

if TYPE_CHECKING:
    from loaders.content import ContentLoaders
from services.members.viewer import ANONYMOUS, Viewer


@dataclass
class Context:
    viewer: Viewer = ANONYMOUS
    settings: Settings = field(default_factory=get_settings)
    request: Any = None
    response: Any = None
    # Filled while resolving: what a cached copy of this answer depends on.
    cache_tags: set[str] = field(default_factory=set)
    cache_blocked: bool = False
    search_terms: list[str] = field(default_factory=list)
    cache_key: str | None = None
    cache_marks: tuple[int, bytes] | None = None

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

    def depends_on(self, *tags: str) -> None:
        self.cache_tags.update(tags)

    def fresh(self) -> Context:
        """A copy with new loaders, for each subscription event: a WebSocket keeps one context for its whole
        life, and loaders kept that long would serve stale rows."""
        return Context(viewer=self.viewer, settings=self.settings, request=self.request)


def make_context(viewer: Viewer = ANONYMOUS, **kwargs: Any) -> Context:
    return Context(viewer=viewer, **kwargs)
