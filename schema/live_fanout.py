"""`liveRoomEvents` over graphql-transport-ws, each event executed and serialised once per process for every
subscriber holding the same operation, instead of once per subscriber.

strawberry runs a subscription's selection for every subscriber and every event (about 0.3 ms and 27 KB of
execution state each, see schema/sockets.py): a room of 10,000 viewers would spend seconds per event. Here a
subscription that is exactly one `liveRoomEvents` field (any selection, fragments, aliases) is served by a small
task of ours: it follows the room (services.live.feed: history after `afterSeq`, then live events in order) and
sends each event as a text frame built from the event's payload JSON, which is executed and encoded once per
(operation, variables, event) in this process and shared by every subscriber (`_PayloadCache`). Anything else
(another field, directives on the operation, a document that does not validate, the legacy protocol, SSE) goes
through strawberry as before, so errors read the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    execute,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values
from starlette.websockets import WebSocketDisconnect
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation

from schema.context import Context
from schema.live_events import event_object
from schema.node import decode_id
from services.errors import DomainError, ErrorCode
from services.live import feed, rooms
from services.live.events import Envelope

log = logging.getLogger("lianmall.live.fanout")

FIELD = "liveRoomEvents"
SHAPES_KEPT = 256
PAYLOADS_KEPT = 2048


@dataclass(frozen=True)
class Shape:
    """A document that is one liveRoomEvents subscription."""

    document: DocumentNode
    operation: OperationDefinitionNode
    field: FieldNode


_shapes: OrderedDict[tuple[str, str | None], Shape | None] = OrderedDict()


def shape_of(graphql_schema: Any, query: str, operation_name: str | None) -> Shape | None:
    key = (query, operation_name)
    if key in _shapes:
        _shapes.move_to_end(key)
        return _shapes[key]
    shape = _find_shape(graphql_schema, query, operation_name)
    _shapes[key] = shape
    while len(_shapes) > SHAPES_KEPT:
        _shapes.popitem(last=False)
    return shape


def _find_shape(graphql_schema: Any, query: str, operation_name: str | None) -> Shape | None:
    if len(query) > 20_000:
        return None
    try:
        document = parse(query, max_tokens=2000)
    except GraphQLError:
        return None
    if validate(graphql_schema, document):
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return None
    operation = operations[0]
    selections = operation.selection_set.selections
    if operation.operation != OperationType.SUBSCRIPTION or operation.directives or len(selections) != 1:
        return None
    field = selections[0]
    if not isinstance(field, FieldNode) or field.name.value != FIELD or field.directives:
        return None
    return Shape(document, operation, field)


class _PayloadCache:
    """Each event's `next` payload as JSON text, per (operation, variables that shape it): made once."""

    def __init__(self) -> None:
        self._payloads: OrderedDict[tuple[int, str, str, int], str] = OrderedDict()

    async def payload(
        self, graphql_schema: Any, shape: Shape, variables: dict[str, Any], shared: str, envelope: Envelope
    ) -> str:
        key = (id(shape.document), shared, envelope.epoch, envelope.seq)
        found = self._payloads.get(key)
        if found is not None:
            return found
        result = execute(
            graphql_schema,
            shape.document,
            root_value=event_object(envelope),
            context_value=Context(),
            variable_values=variables,
            operation_name=shape.operation.name.value if shape.operation.name else None,
        )
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        body: dict[str, Any] = {"data": result.data}  # type: ignore[union-attr]
        if result.errors:  # type: ignore[union-attr]
            body["errors"] = [e.formatted for e in result.errors]  # type: ignore[union-attr]
        text = orjson.dumps(body).decode()
        self._payloads[key] = text
        while len(self._payloads) > PAYLOADS_KEPT:
            self._payloads.popitem(last=False)
        return text


_cache = _PayloadCache()


def _error(message: str, code: ErrorCode) -> list[dict[str, Any]]:
    return [{"message": message, "extensions": {"code": code.value}}]


async def start(handler: Any, message: dict[str, Any]) -> bool:
    """Serve a `subscribe` message here if it is a plain liveRoomEvents subscription; False: strawberry's turn."""
    payload = message.get("payload") or {}
    query, raw_variables = payload.get("query"), payload.get("variables") or {}
    if not isinstance(query, str) or not isinstance(raw_variables, dict):
        return False
    graphql_schema = handler.schema._schema
    shape = shape_of(graphql_schema, query, payload.get("operationName"))
    if shape is None:
        return False
    coerced = get_variable_values(graphql_schema, shape.operation.variable_definitions or (), raw_variables)
    if isinstance(coerced, list):
        return False  # strawberry reports the variables' errors
    definition = graphql_schema.subscription_type.fields[FIELD]
    arguments = get_argument_values(definition, shape.field, coerced)
    # The variable that carries afterSeq differs per subscriber without changing what an event looks like.
    after_node = next((a.value for a in shape.field.arguments if a.name.value == "afterSeq"), None)
    shared_variables = {
        k: v
        for k, v in coerced.coerced.items()
        if not (isinstance(after_node, VariableNode) and after_node.name.value == k)
    }
    shared = orjson.dumps(shared_variables, option=orjson.OPT_SORT_KEYS, default=str).decode()
    operation_id = message["id"]
    operation = Operation(handler, operation_id, query, raw_variables, payload.get("operationName"))
    operation.task = asyncio.create_task(
        _serve(handler, operation_id, graphql_schema, shape, raw_variables, shared, arguments)
    )
    handler.operations[operation_id] = operation
    return True


async def _serve(
    handler: Any,
    operation_id: str,
    graphql_schema: Any,
    shape: Shape,
    variables: dict[str, Any],
    shared: str,
    arguments: dict[str, Any],
) -> None:
    prefix = '{"id":' + orjson.dumps(operation_id).decode() + ',"type":"next","payload":'
    send_text = handler.websocket.ws.send_text
    try:
        room_id = decode_id(arguments["roomId"], "LiveRoom", "roomId")
        after_seq = arguments.get("afterSeq")
        if after_seq is not None and after_seq < 0:
            raise DomainError(
                ErrorCode.BAD_USER_INPUT, "afterSeq is a sequence number (0 or more)", "afterSeq"
            )
        if not await rooms.room_exists(room_id):
            raise DomainError(ErrorCode.NOT_FOUND, "No such live room", "roomId")
    except DomainError as exc:
        handler.operations.pop(operation_id, None)
        await handler.send_message(
            {"id": operation_id, "type": "error", "payload": _error(exc.message, exc.code)}
        )
        return
    feeds = feed.room_feeds()
    listener = feed.QueueListener()
    feeds.attach(room_id, listener)
    try:
        sequencer, missed = await feed.Sequencer.start(room_id, after_seq)
        pending = list(missed)
        while True:
            for envelope in pending:
                text = await _cache.payload(graphql_schema, shape, variables, shared, envelope)
                await send_text(prefix + text + "}")
            pending = await sequencer.admit(await listener.queue.get())
    except (WebSocketDisconnect, RuntimeError, OSError):
        handler.operations.pop(
            operation_id, None
        )  # the socket is gone; strawberry's shutdown cleans the rest
    finally:
        feeds.detach(room_id, listener)
