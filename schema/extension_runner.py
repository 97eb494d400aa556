"""strawberry's schema-extension hooks, looked up once per extension class instead of on every request.

strawberry finds each extension's hook for each phase (operation, parse, validate, execute) anew on every request:
it inspects the method and wraps it in a fresh `contextlib.contextmanager`, whose `functools.wraps` copy costs more
than most of our hooks do. With our six extensions that was 24 lookups, ~20% of the CPU of a
`mutation { __typename }`. Here the wrapped hooks are made once per class; each request only binds them to its
extension instances. Running them (order, exit order, exceptions) is strawberry's own code.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext
from strawberry.utils.await_maybe import await_maybe

# A generator hook made a context manager once: (factory taking the extension, is_async); None when the class does
# not define the hook; `_PER_REQUEST` when it is a plain function (strawberry's own wrapping is kept for those).
_Made = tuple[Callable[[SchemaExtension], Any], bool] | None
_PER_REQUEST: Any = object()
_made: dict[tuple[type[SchemaExtension], str], _Made] = {}
M = TypeVar("M", bound=ExtensionContextManagerBase)


def _hook(cls: type[SchemaExtension], name: str) -> _Made:
    key = (cls, name)
    if key in _made:
        return _made[key]
    function = getattr(cls, name)
    made: _Made
    if function is getattr(SchemaExtension, name):
        made = None
    elif inspect.isgeneratorfunction(function):
        made = (contextlib.contextmanager(function), False)
    elif inspect.isasyncgenfunction(function):
        made = (contextlib.asynccontextmanager(function), True)
    else:
        made = _PER_REQUEST
    _made[key] = made
    return made


# Per phase and per list of extension classes (the schema's, the same on every request): what to bind.
_plans: dict[tuple[str, tuple[type[SchemaExtension], ...]], list[tuple[int, _Made]]] = {}


def _plan(name: str, classes: tuple[type[SchemaExtension], ...]) -> list[tuple[int, _Made]]:
    key = (name, classes)
    plan = _plans.get(key)
    if plan is None:
        if len(_plans) >= 64:  # a bound, should extension lists ever vary per request
            _plans.clear()
        plan = _plans[key] = [
            (i, made) for i, cls in enumerate(classes) if (made := _hook(cls, name)) is not None
        ]
    return plan


def _phase(kind: type[M], extensions: list[SchemaExtension]) -> M:
    manager = kind.__new__(kind)
    manager.default_hook = getattr(SchemaExtension, kind.HOOK_NAME)
    hooks: list[WrappedHook] = []
    for i, made in _plan(kind.HOOK_NAME, tuple(type(e) for e in extensions)):
        extension = extensions[i]
        if made is _PER_REQUEST:
            wrapped = manager.get_hook(extension)
            if wrapped is not None:
                hooks.append(wrapped)
            continue
        factory, is_async = made
        hooks.append(WrappedHook(extension, partial(factory, extension), is_async))
    manager.hooks = hooks
    return manager


class CachedHooksRunner(SchemaExtensionsRunner):
    def operation(self) -> OperationContextManager:
        return _phase(OperationContextManager, self.extensions)

    def validation(self) -> ValidationContextManager:
        return _phase(ValidationContextManager, self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _phase(ParsingContextManager, self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _phase(ExecutingContextManager, self.extensions)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self.extensions:
            # The base class answers {}: asking it (and awaiting maybe) for every extension is pure cost.
            if type(extension).get_results is not SchemaExtension.get_results:
                data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data
