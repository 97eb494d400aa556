"""Where the sandbox is served: two mounts on our own app, only while the settings turn the sandbox on."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount

from infra.settings import Settings
from infra.wechat_sandbox import API_PATH, PAY_PATH
from infra.wechat_sandbox.miniprogram import MiniProgramSandbox
from infra.wechat_sandbox.pay import PaySandbox

_pay: PaySandbox | None = None


def sandbox_routes(settings: Settings) -> list[BaseRoute]:
    """The sandbox's mini-program API and WeChat Pay, or nothing when the sandbox is off."""
    global _pay
    if not settings.wechat_sandbox:
        return []
    _pay = PaySandbox()
    return [Mount(API_PATH, app=MiniProgramSandbox().app), Mount(PAY_PATH, app=_pay.app)]


def pay_sandbox() -> PaySandbox | None:
    """The WeChat Pay sandbox this process serves, if any."""
    return _pay
