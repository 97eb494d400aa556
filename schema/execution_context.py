"""graphql-core's executor, leaving nothing behind for the cyclic garbage collector.

graphql-core's executor refers to itself: its `async_helpers` hold two of its bound methods. So every operation it
ran stayed alive after its answer until a collection found the cycle, and with it everything the executor holds:
the context (request, viewer, loaders), the variables, collected fields (~100 objects for a placeOrder). A worker
selling 100 orders/s filled the youngest generation with them, and each collection of 50,000 young objects
(infra/gc_tuning.py) took ~50 ms of the event loop: ~0.1 ms per order, and a pause every few seconds in every
request's latency. Once the operation's response is built (a complete result: nothing of an incremental one
runs later) the executor lets go of its helpers, and reference counting frees the rest at once. Resolve infos
still in flight keep the helpers themselves, not through the executor.
"""

from __future__ import annotations

from typing import Any

from graphql import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def build_response(self, data: dict[str, Any] | None) -> Any:
        response = super().build_response(data)
        if type(response) is ExecutionResult:
            self.async_helpers = None
        return response
