"""Snapshots of the detail screens (pytest-textual-snapshot; ``--snapshot-update`` to accept changes).

Both stores are hand-made and deterministic (no capture timestamps, no random redaction salt), so a
snapshot changes only when the screens do.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_textual_snapshot")

from heron_tui.screens.call_detail import CallDetailScreen  # noqa: E402
from heron_tui.screens.turn_detail import TurnDetailScreen  # noqa: E402
from tests.tui.detail_fixtures import Host, anthropic_store, timeline_store  # noqa: E402

SIZE = (150, 34)


def test_turn_detail_snapshot(snap_compare):
    store = timeline_store()
    assert snap_compare(Host(lambda: TurnDetailScreen(store.conn, "t-1", bar_width=40)), terminal_size=SIZE)


def test_call_detail_conversation_snapshot(snap_compare):
    store = anthropic_store()
    assert snap_compare(Host(lambda: CallDetailScreen(store.conn, "call-anthropic-1")), terminal_size=SIZE)


def test_call_detail_stream_snapshot(snap_compare):
    store = anthropic_store()
    assert snap_compare(
        Host(lambda: CallDetailScreen(store.conn, "call-anthropic-1")), press=["4"], terminal_size=SIZE
    )
