"""Helpers of the SFT export tests: run an export over a built store, one-call turns."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import orjson

from heron_core.export.sft import SftResult, export_sft
from tests.export.store_builder import StoreBuilder


def pseudo(signature: str, k: int = 0) -> str:
    """agents-and-turns.md §6.2 pseudo id, computed independently of the code under test."""
    return "tu-" + hashlib.sha256(f"{signature}#{k}".encode()).hexdigest()[:16]


def export(b: StoreBuilder, **kw: Any) -> tuple[list[dict], SftResult, list[dict]]:
    b.flush()
    out, rep = io.BytesIO(), io.BytesIO()
    res = export_sft(b.conn, out, report=rep, **kw)
    records = [orjson.loads(line) for line in out.getvalue().splitlines()]
    report = [orjson.loads(line) for line in rep.getvalue().splitlines()]
    return records, res, report


def one_call_turn(
    b: StoreBuilder, wire_api: str, request: Any, response: Any, turn: str = "t-1", **kw: Any
) -> None:
    call = b.add_call(f"c-{turn}", wire_api, request, response, **kw)
    b.add_turn(turn, [call])


def single(wire_api: str, request: Any, response: Any, **kw: Any) -> dict:
    b = StoreBuilder()
    one_call_turn(b, wire_api, request, response, **kw)
    records, res, _ = export(b)
    assert res == SftResult(1, {}), res
    return records[0]
