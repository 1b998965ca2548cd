"""``export calls``: §6.1 key order and types, filters, streaming."""

from __future__ import annotations

import io
from collections import Counter

import orjson
import pytest
from store_helpers import SPEC, make_call, spec_fields

from heron_core.export.calls import CALL_EXPORT_FIELDS, CallFilters, export_calls, parse_time
from heron_core.records import ToolCall
from heron_core.store.db import open_store
from heron_core.store.writer import StoreWriter


def _store_with(calls):
    st = open_store(None)
    w = StoreWriter(st, Counter())
    for c in calls:
        w.add_call(c)
    w.close()
    return st


def _export(st, **filters) -> list[dict]:
    buf = io.BytesIO()
    n = export_calls(st.conn, buf, CallFilters(**filters))
    lines = buf.getvalue().splitlines()
    assert n == len(lines)
    return [orjson.loads(line) for line in lines]


@pytest.mark.skipif(not SPEC.exists(), reason="spec not available")
def test_export_fields_match_spec_table():
    assert list(CALL_EXPORT_FIELDS) == spec_fields("### 6.1 `calls`")


def test_export_fields_hardcoded_landmarks():
    f = CALL_EXPORT_FIELDS
    assert f[0] == "call_id" and f[-2:] == ("damaged", "damage") and len(f) == len(set(f)) == 80
    assert f.index("connection") + 1 == f.index("server") and f.index("process") == f.index("host") + 1


def test_record_key_order_and_types():
    call = make_call(
        7,
        error={"source": "body", "type": "overloaded_error", "message": "Overloaded"},
        tool_calls=[ToolCall("toolu_01", "Bash", {"command": "ls", "n": [1, 2]}),
                    ToolCall("toolu_02", "Read", {})],
        tool_call_count=2,
        damage=["gap"],
        damaged=True,
        hop_role="proxy_out",
    )
    st = _store_with([call])
    (rec,) = _export(st)
    raw = io.BytesIO()
    export_calls(st.conn, raw, None)
    assert raw.getvalue().endswith(b"}\n") and raw.getvalue().count(b"\n") == 1
    assert list(rec) == list(CALL_EXPORT_FIELDS)
    assert rec["connection"] == {"protocol": "tcp", "client_ip": "10.0.0.1", "client_port": 50007,
                                 "server_ip": "10.0.0.2", "server_port": 443}
    assert list(rec["connection"]) == ["protocol", "client_ip", "client_port", "server_ip", "server_port"]
    assert rec["process"] == {"pid": 4242, "comm": "node", "exe": "/usr/bin/node"}
    assert rec["error"] == call.error
    assert rec["tool_calls"] == [
        {"id": "toolu_01", "name": "Bash", "arguments": {"command": "ls", "n": [1, 2]}},
        {"id": "toolu_02", "name": "Read", "arguments": {}},
    ]
    assert rec["ratelimit"] == call.ratelimit
    assert rec["damage"] == ["gap"] and rec["damaged"] is True
    assert rec["hop_role"] == "proxy_out"  # hop legs are exported
    assert rec["request_start"] == call.request_start and isinstance(rec["request_start"], float)
    assert rec["ok"] is True and rec["is_auxiliary"] is False
    assert isinstance(rec["input_tokens"], int) and rec["reasoning_tokens"] is None
    assert rec["input_preview"] == "héllo ✓"
    for extra in ("usage_raw", "user_text", "client_ip", "process_pid", "x_request"):
        assert extra not in rec


def test_null_connection_process_and_empty_lists():
    call = make_call(1, client_ip=None, client_port=None, server_ip=None, server_port=None, process=None,
                     tool_calls=[], tool_call_count=0, error=None, ratelimit=None, damage=[])
    (rec,) = _export(_store_with([call]))
    assert rec["connection"] is None and rec["process"] is None
    assert rec["tool_calls"] == [] and rec["damage"] == []
    assert rec["error"] is None and rec["ratelimit"] is None


def _fleet():
    return [
        make_call(0, source_id="a", agent_kind="claude-cli", model="m1", model_requested="m1",
                  wire_api="anthropic", session_id="s1", turn_id="t1", status_code=200),
        make_call(1, source_id="a", agent_kind="codex-cli", model="m2", model_requested="m2-alias",
                  wire_api="openai-responses", session_id="s2", turn_id="t2", status_code=429, ok=False),
        make_call(2, source_id="b", agent_kind=None, model="m1", model_requested="m1", wire_api="openai-chat",
                  session_id=None, turn_id=None, status_code=500, ok=False, finish="error"),
        make_call(3, source_id="b", agent_kind="claude-cli", model="m3", model_requested="m3",
                  wire_api="anthropic", session_id="s1", turn_id="t3", status_code=200, finish="aborted"),
    ]


def _ids(recs) -> list[int]:
    return [int(r["call_id"][-12:]) for r in recs]


def test_filters():
    st = _store_with(reversed(_fleet()))
    t0 = make_call(0).request_start
    assert _ids(_export(st)) == [0, 1, 2, 3]  # ordered by request_start
    assert _ids(_export(st, since=t0 + 1)) == [1, 2, 3]
    assert _ids(_export(st, since=t0 + 1, until=t0 + 3)) == [1, 2]
    assert _ids(_export(st, since="2023-11-14T22:13:21Z")) == [1, 2, 3]  # t0 = 22:13:20.123456Z
    assert _ids(_export(st, until="2023-11-14T23:13:22+01:00")) == [0, 1]
    assert _ids(_export(st, source_id="b")) == [2, 3]
    assert _ids(_export(st, source_id=["a", "b"])) == [0, 1, 2, 3]
    assert _ids(_export(st, agent_kind="claude-cli,codex-cli")) == [0, 1, 3]
    assert _ids(_export(st, session="s1")) == [0, 3]
    assert _ids(_export(st, turn=["t2", "t3"])) == [1, 3]
    assert _ids(_export(st, model="m1")) == [0, 2]
    assert _ids(_export(st, model="m2-alias")) == [1]  # requested model matches too
    assert _ids(_export(st, wire_api="anthropic")) == [0, 3]
    assert _ids(_export(st, status=429)) == [1]
    assert _ids(_export(st, status="5xx")) == [2]
    assert _ids(_export(st, status="ok")) == [0, 3]
    assert _ids(_export(st, status="error")) == [1, 2, 3]
    assert _ids(_export(st, status="429,5xx")) == [1, 2]
    assert _ids(_export(st, limit=2)) == [0, 1]
    assert _ids(_export(st, source_id="a", status="error", limit=5)) == [1]
    assert _export(st, source_id="nope") == []


def test_filter_values_are_parameters_not_sql():
    st = _store_with(_fleet())
    assert _export(st, source_id="a' OR '1'='1") == []


@pytest.mark.parametrize("bad", [dict(since="yesterday"), dict(status="teapot"), dict(limit=-1),
                                 dict(until=float("nan"))])
def test_invalid_filters_raise_value_error(bad):
    with pytest.raises(ValueError):
        CallFilters(**bad).query()


def test_parse_time():
    assert parse_time(12.5) == 12.5 and parse_time("12.5") == 12.5
    assert parse_time("1970-01-01T00:00:10Z") == 10.0
    assert parse_time("1970-01-01T01:00:10+01:00") == 10.0
    assert parse_time("1970-01-01t00:00:10z") == 10.0
    assert parse_time("1970-01-01T00:00:10") == 10.0  # no offset: UTC


def test_export_streams_in_batches():
    calls = [make_call(i, tool_calls=[]) for i in range(2500)]
    st = _store_with(calls)
    recs = _export(st)
    assert len(recs) == 2500 and _ids(recs) == list(range(2500))
    # the shared connection is still usable afterwards (the export used and closed its own cursor)
    assert st.conn.execute("SELECT count(*) FROM calls").fetchall() == [(2500,)]
