"""Fixtures of the TUI tests: stores built from real captures (the demo, testdata/captures) or from
``storegen.synth_rows``, and a fixed time zone so rendered clocks (and snapshots) are stable."""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest

from heron_core.store.db import open_store
from tests.tui.storegen import synth_rows
from tests.tui.tui_helpers import DEMO, ingest


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(scope="session")
def demo_store():
    """The demo capture through the real engine (read-only use in tests)."""
    return ingest([DEMO])


@pytest.fixture(scope="session")
def synth_store():
    """2,000 synthetic calls with turns, sessions, insights and tool calls (deterministic)."""
    store = open_store(None)
    synth_rows(store.conn, 2000)
    return store


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    """Run in a temporary directory (exports default to ./heron-sft-*.jsonl)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run ``async def`` tests (Textual's Pilot) in a fresh event loop, without an asyncio plugin."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None
