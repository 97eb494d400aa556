"""Test setup. TEST_BACKEND=embedded (default: SQLite + in-process Redis) or real (PostgreSQL + Redis)."""

from __future__ import annotations

import os
import tempfile

BACKEND = os.environ.get("TEST_BACKEND", "embedded")
REAL_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
REAL_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# Settings are read once per process: fix the environment before any project module reads it.
_DATA_DIR = tempfile.mkdtemp(prefix="lianmall-test-")
os.environ["DATA_DIR"] = _DATA_DIR
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)
# Production strictness (no anonymous introspection, quiet logs) unless a test turns debug on.
os.environ["DEBUG"] = "false"
# In-process tests talk to the WeChat stand-ins (tests/wechat_*standin.py) or to no WeChat at all; the
# built-in sandbox is tested through a served process (tests/test_sandbox.py).
os.environ["WECHAT_SANDBOX"] = "false"
if BACKEND == "real":
    os.environ["DATABASE_URL"] = REAL_DATABASE_URL
    os.environ["REDIS_URL"] = REAL_REDIS_URL

import pytest  # noqa: E402

pytest_plugins = ["tests.fixtures", "tests.wechat_standin", "tests.wechat_pay_standin", "tests.js_clients"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BACKEND == "real":
        return
    skip = pytest.mark.skip(
        reason="needs TEST_BACKEND=real (PostgreSQL + Redis); scripts/test runs that pass"
    )
    for item in items:
        if "realservices" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """A test that fails while server processes run (setup, call or teardown) reports the tail of their logs:
    a plain 500 or a hang in a child process is otherwise unexplained once the servers are stopped."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    from tests.server_process import server_logs_for_report

    report.sections.extend(server_logs_for_report(report.failed))
