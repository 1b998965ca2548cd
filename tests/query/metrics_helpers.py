"""Hand-built stores for the metrics, services and export tests: rows go through the real writer."""

from __future__ import annotations

from collections import Counter
from typing import Any

import zstandard

from heron_core.bodies import BodyRow
from heron_core.records import Exchange
from heron_core.store.db import Store, open_store
from heron_core.store.writer import StoreWriter

B = 1_699_999_200.0
"""Base time, a multiple of 3600 (so of 10, 60 and 300): bucket boundaries fall on B + k·w."""


class Builder:
    """An in-memory store; ``call(...)`` adds one call row from keyword columns with sane defaults."""

    def __init__(self) -> None:
        self.store: Store = open_store(None)
        self.writer = StoreWriter(self.store, Counter())
        self.n = 0

    @property
    def conn(self):
        self.writer.flush()
        return self.store.conn

    def call(self, start: float, end: float | None, **kw: Any) -> str:
        """A call in flight over ``[B + start, B + end]`` (offsets in seconds)."""
        self.n += 1
        row: dict[str, Any] = dict(
            call_id=kw.pop("call_id", f"c{self.n:04d}"), source_id="src", server="10.0.0.2:443",
            wire_api="anthropic", model="m1", model_requested="m1", status_code=200, finish="stop", ok=True,
            is_stream=False, request_start=B + start, response_end=None if end is None else B + end,
            client_ip="10.0.0.1", is_auxiliary=False, usage_estimated=False,
        )
        row.update(kw)
        if "ok" not in kw:
            sc = row["status_code"]
            row["ok"] = sc is not None and 200 <= sc < 300 and row["finish"] not in ("error", "aborted")
        self.writer.add_rows("calls", [row])
        return row["call_id"]

    def rows(self, table: str, *rows: dict[str, Any]) -> None:
        self.writer.add_rows(table, list(rows))

    def exchange(self, ex: Exchange, is_llm: bool = True) -> None:
        self.writer.add_exchange(ex, is_llm)

    def body(self, exchange_id: str, part: str, data: bytes) -> None:
        comp = zstandard.ZstdCompressor(level=3).compress(data)
        self.writer.add_bodies([BodyRow(exchange_id, part, "zstd", comp, len(data), len(comp), 0, False, True)])


def exchange(i: int, server_ip: str = "10.0.0.2", port: int = 443, path: str = "/v1/chat/completions",
             headers: list[tuple[str, str]] | None = None, start: float = 0.0, **kw: Any) -> Exchange:
    """An exchange row to ``server_ip:port`` at ``B + start``."""
    base: dict[str, Any] = dict(
        exchange_id=f"e{i:04d}", source_id="src", ordinal=0, client_ip="10.0.0.1", client_port=40000 + i,
        server_ip=server_ip, server_port=port, method="POST", path=path, http_version="HTTP/1.1",
        request_headers=[("Host", "h")], status_code=200, response_headers=headers or [],
        request_start=int((B + start) * 1e6), response_end=int((B + start + 1) * 1e6),
    )
    base.update(kw)
    return Exchange(**base)
