"""Paths and store builders shared by the TUI tests, screenshots and benchmark."""

from __future__ import annotations

from pathlib import Path

from heron_core.config import Config
from heron_core.engine import Engine
from heron_core.store.db import open_store
from tests.tui.storegen import derive_agent_tables

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "heron_tui" / "demo" / "demo.pcap"
CAPTURES = ROOT / "testdata" / "captures"


def ingest(paths: list[Path], derive: bool = True):
    """An in-memory store with ``paths`` ingested (turns derived from calls if the engine made none)."""
    store = open_store(None)
    Engine(store, Config()).ingest([str(p) for p in paths], [p.stem for p in paths])
    if derive:
        derive_agent_tables(store.conn)
    return store
