"""The H5 live-sale page, `/h5/live/{roomId}`: one HTML page of ours, the vendored graphql-ws browser build and
our own script (static/h5/live.js), all served by this server (no CDN). The page reads the room once, then
follows `liveRoomEvents` from the room's `eventSeq`, rendering everything from the events."""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from string import Template

from starlette.requests import Request
from starlette.responses import HTMLResponse

from infra.static_assets import vendor_asset
from schema.node import decode_id
from services.errors import DomainError
from services.live.rooms import room_exists

TEMPLATE = Path(__file__).with_name("live_page.html")


@cache
def _template() -> Template:
    return Template(TEMPLATE.read_text(encoding="utf-8"))


async def live_page(request: Request) -> HTMLResponse:
    room_gid = request.path_params["room_id"]
    try:
        found = await room_exists(decode_id(room_gid, "LiveRoom", "roomId"))
    except DomainError:
        found = False
    if not found:
        return HTMLResponse("<!doctype html><title>直播间不存在</title><p>直播间不存在</p>", status_code=404)
    page = _template().substitute(
        graphql_ws=vendor_asset("graphql-ws").script_tag(), room_id=html.escape(room_gid)
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})
