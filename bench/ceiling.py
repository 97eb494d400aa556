"""The ceiling: the cheapest JSON POST this stack can answer (Starlette + uvicorn, no GraphQL, no I/O).

Lianmall's numbers are reported as a fraction of this app's req/s on the same core, so the ratio says how
much of the framework's budget the server spends, independent of how fast the machine is.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# Fixed bytes: the ceiling should not even pay for JSON encoding.
_BODY = b'{"data":{"__typename":"Query"}}'


async def graphql(request: Request) -> Response:
    # Read the body like a real endpoint would, so the request is fully consumed.
    await request.body()
    return Response(_BODY, media_type="application/json")


app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])
