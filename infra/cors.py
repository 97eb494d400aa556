"""CORS for the configured browser origins (ALLOWED_ORIGINS), on Starlette's middleware."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response


class BrowserOriginsCORS(CORSMiddleware):
    """Starlette's CORS, except that a refused preflight carries no CORS headers at all (Starlette lists the
    allowed methods and headers even to an origin it refuses)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 200:
            for name in [n for n in response.headers if n.lower().startswith("access-control-")]:
                del response.headers[name]
        return response
