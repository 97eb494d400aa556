"""Static files under /static: our own pages' assets and pinned third-party browser builds (`static/vendor/`).

Nothing a page of ours loads comes from a CDN: shops behind the Great Firewall and offline staging boxes must
work. Each vendored file is the unmodified file from its npm package at the version in its path; the manifest
(`static/vendor/manifest.json`) names it and holds its SRI hash, which pages put in `integrity=` so a browser
refuses a file that was changed. `scripts/vendor-static` fetches them again from the npm registry.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from infra.settings import PROJECT_ROOT

STATIC_DIR = PROJECT_ROOT / "static"
STATIC_PREFIX = "/static"
VENDOR_MANIFEST = STATIC_DIR / "vendor" / "manifest.json"
# A vendored file never changes under its versioned path: browsers and CDNs may keep it for a year.
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class VendorAsset:
    package: str  # name@version, as on npm
    file: str  # path inside the package
    integrity: str  # SRI hash (sha384-...)

    @property
    def path(self) -> str:
        """Relative to the static folder."""
        return f"vendor/{self.package}/{self.file}"

    @property
    def url(self) -> str:
        return f"{STATIC_PREFIX}/{self.path}"

    def script_tag(self) -> str:
        return f'<script src="{self.url}" integrity="{self.integrity}"></script>'

    def stylesheet_tag(self) -> str:
        return f'<link rel="stylesheet" href="{self.url}" integrity="{self.integrity}" />'


@cache
def vendor_assets() -> dict[str, VendorAsset]:
    """The vendored browser builds by name (`graphql-ws`, `graphiql`, `react`, ...)."""
    entries = json.loads(VENDOR_MANIFEST.read_text())
    return {name: VendorAsset(**entry) for name, entry in entries.items()}


def vendor_asset(name: str) -> VendorAsset:
    return vendor_assets()[name]


class StaticAssets(StaticFiles):
    """Starlette's static files (ETag, Last-Modified, HEAD, 304), with long caching for vendored builds."""

    def __init__(self) -> None:
        super().__init__(directory=STATIC_DIR)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        if Path(full_path).is_relative_to(STATIC_DIR / "vendor"):
            response.headers["Cache-Control"] = IMMUTABLE
        return response
