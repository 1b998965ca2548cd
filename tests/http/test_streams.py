"""Streamed bodies (capture-and-http.md §6.5, §8): heron_core/http/streams.py."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron_core.http.streams import Splitter, make_splitter, stream_format_for
from heron_core.records import BadUnit, SseEvent, StreamUnit


def feed_all(s: Splitter, pieces: list[bytes], end_ts: int = 999) -> list[StreamUnit]:
    """Feed piece i with ts_us = i, then finish with ``end_ts``."""
    units: list[StreamUnit] = []
    for i, piece in enumerate(pieces):
        units += s.feed(piece, i)
    units += s.finish(end_ts)
    return units


def split_at(body: bytes, cuts: list[int]) -> list[bytes]:
    """``body`` cut at the given offsets (clamped, sorted; empty pieces allowed)."""
    points = sorted(min(max(c, 0), len(body)) for c in cuts)
    pieces, prev = [], 0
    for p in points:
        pieces.append(body[prev:p])
        prev = p
    pieces.append(body[prev:])
    return pieces


def bytewise(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def units_only(units: list[StreamUnit]) -> list[Any]:
    return [u for _, u in units]


def sse(pieces: list[bytes], **kw: Any) -> tuple[list[StreamUnit], Splitter, Counter]:
    c: Counter = Counter()
    s = make_splitter("sse", c, **kw)
    return feed_all(s, pieces), s, c


# --- stream detection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ctype,path,query,expected",
    [
        ("text/event-stream", "/v1/messages", None, "sse"),
        ("Text/Event-Stream; charset=utf-8", "/v1/chat/completions", None, "sse"),
        ("application/x-ndjson", "/api/chat", None, "ndjson"),
        ("application/jsonl;charset=UTF-8", "/x", None, "ndjson"),
        ("APPLICATION/X-NDJSON", "/x", None, "ndjson"),
        ("application/json", "/v1/messages", None, None),
        (None, "/v1/messages", None, None),
        ("application/json", "/v1beta/models/gemini-2.5-pro:streamGenerateContent", None, "json-array"),
        ("application/json; charset=UTF-8", "/v1beta/models/g:streamGenerateContent", "key=k", "json-array"),
        ("application/json", "/v1beta/models/g:streamGenerateContent", "alt=json", "json-array"),
        (None, "/v1beta/models/g:streamGenerateContent", None, "json-array"),
        ("text/event-stream", "/v1beta/models/g:streamGenerateContent", "alt=sse", "sse"),
        ("application/json", "/v1beta/models/g:streamGenerateContent", "alt=sse", None),
        ("application/json", "/v1beta/models/g:streamGenerateContent", "key=k&alt=sse", None),
        ("application/json", "/v1beta/models/g:generateContent", None, None),
        ("application/json", "/v1beta/models/g:streamGenerateContentX", None, None),
    ],
)
def test_stream_format_for(ctype: str | None, path: str, query: str | None, expected: str | None) -> None:
    assert stream_format_for(ctype, "POST", path, query) == expected


def test_make_splitter_rejects_unknown_format() -> None:
    with pytest.raises(ValueError):
        make_splitter("xml", Counter())


# --- SSE -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_sse_line_endings(eol: bytes) -> None:
    body = eol.join([b"event: message_start", b"data: {\"a\":1}", b"", b"data: two", b"", b""])
    for pieces in ([body], bytewise(body)):
        units, s, c = sse(pieces)
        assert units_only(units) == [SseEvent("message_start", '{"a":1}', None), SseEvent(None, "two", None)]
        assert c["sse_events"] == 2
        assert s.damage == set()


def test_sse_mixed_line_endings() -> None:
    body = b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r"
    units, _, _ = sse([body])
    assert units_only(units) == [SseEvent(None, "a\nb\nc", None), SseEvent(None, "d", None)]


def test_sse_crlf_split_across_feeds_is_one_line_end() -> None:
    """A \\r ending one packet and the \\n opening the next are one line end: no empty line, so no early
    dispatch of the event before its second data line."""
    units, _, _ = sse([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])
    assert units == [(2, SseEvent(None, "a\nb", None))]  # the bare \r of feed 2 already ends the empty line
    # an empty feed between the halves changes nothing
    units, _, _ = sse([b"data: a\r", b"", b"\ndata: b\r\n\r\n"])
    assert units == [(2, SseEvent(None, "a\nb", None))]


def test_sse_cr_then_lf_in_next_feed_after_cr_still_dispatches() -> None:
    # "\r" "\r" "\n": the second \r ends an empty line (dispatch), the \n belongs to it
    units, _, _ = sse([b"data: x\r", b"\r", b"\ndata: y\n\n"])
    assert units == [(1, SseEvent(None, "x", None)), (2, SseEvent(None, "y", None))]


def test_sse_fields() -> None:
    body = (
        b": keep-alive comment\n"
        b"retry: 3000\n"
        b"id: 42\n"
        b"event: content_block_delta\n"
        b"data:no-space\n"
        b"data:  two spaces\n"
        b"data\n"
        b"unknown: field\n"
        b"\n"
    )
    units, _, c = sse([body])
    assert units_only(units) == [SseEvent("content_block_delta", "no-space\n two spaces\n", "42")]
    assert c["sse_events"] == 1


def test_sse_id_is_per_event_and_nul_id_ignored() -> None:
    units, _, _ = sse([b"id: 1\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\n"])
    assert units_only(units) == [
        SseEvent(None, "a", "1"),
        SseEvent(None, "b", None),
        SseEvent(None, "c", None),
    ]


def test_sse_events_without_data() -> None:
    body = b": ping\n\n\n\nid: 5\n\nevent: ping\n\nretry: 10\n\ndata: real\n\n"
    units, _, c = sse([body])
    # nothing dispatched for comment-only, empty, id-only or retry-only blocks; a typed event without data is
    assert units_only(units) == [SseEvent("ping", "", None), SseEvent(None, "real", None)]
    assert c["sse_events"] == 2


def test_sse_empty_data_line_is_data() -> None:
    units, _, _ = sse([b"data:\n\ndata\ndata\n\n"])
    assert units_only(units) == [SseEvent(None, "", None), SseEvent(None, "\n", None)]


def test_sse_unterminated_last_event_dispatched_at_finish() -> None:
    units, _, c = sse([b"data: first\n\nevent: done\ndata: [DONE]"], )
    assert units == [(0, SseEvent(None, "first", None)), (999, SseEvent("done", "[DONE]", None))]
    assert c["sse_events"] == 2
    units, _, _ = sse([b"data: x\n"])  # data line terminated, event not
    assert units == [(999, SseEvent(None, "x", None))]
    units, _, _ = sse([b"data: x\n\nevent: only-type\n"])  # pending event without data: dropped
    assert units_only(units) == [SseEvent(None, "x", None)]


def test_sse_timestamps_are_of_the_completing_feed() -> None:
    pieces = [b"data: a", b"bc\n", b"\n", b"data: d\n\ndata: e\n\n", b"data: f\n", b"\n"]
    units, _, _ = sse(pieces)
    assert units == [
        (2, SseEvent(None, "abc", None)),
        (3, SseEvent(None, "d", None)),
        (3, SseEvent(None, "e", None)),
        (5, SseEvent(None, "f", None)),
    ]


def test_sse_multibyte_utf8_split_across_feeds() -> None:
    body = "data: h\u00e9llo \u20ac \U0001f600\n\n".encode()
    for cut in range(1, len(body)):
        units, s, _ = sse([body[:cut], body[cut:]])
        assert units_only(units) == [SseEvent(None, "h\u00e9llo \u20ac \U0001f600", None)]
        assert s.damage == set()
    units, s, _ = sse(bytewise(body))
    assert units_only(units) == [SseEvent(None, "h\u00e9llo \u20ac \U0001f600", None)]
    assert s.damage == set()


def test_sse_invalid_utf8_is_replaced_and_flagged_once() -> None:
    units, s, _ = sse([b"data: a\xffb\n\n", b"data: \xc3\n\n", b"data: ok\n\n"])
    assert units_only(units) == [
        SseEvent(None, "a\ufffdb", None),
        SseEvent(None, "\ufffd", None),
        SseEvent(None, "ok", None),
    ]
    assert s.damage == {"decode_error"}


def test_sse_genuine_replacement_character_is_not_damage() -> None:
    body = "data: \ufffd sent as is\n\n".encode()
    units, s, _ = sse(bytewise(body))
    assert units_only(units) == [SseEvent(None, "\ufffd sent as is", None)]
    assert s.damage == set()


def test_sse_cut_multibyte_at_end_is_flagged() -> None:
    units, s, _ = sse([b"data: \xe2\x82"])
    assert units_only(units) == [SseEvent(None, "\ufffd", None)]
    assert s.damage == {"decode_error"}


def test_sse_bom_at_start_is_skipped() -> None:
    units, _, _ = sse([b"\xef\xbb", b"\xbfdata: x\n\n"])
    assert units_only(units) == [SseEvent(None, "x", None)]


def test_sse_redact_applies_to_data() -> None:
    units, _, _ = sse([b"event: e\ndata: key=sk-SECRET\n\n"], redact=lambda t: t.replace("sk-SECRET", "[R]"))
    assert units_only(units) == [SseEvent("e", "key=[R]", None)]


# --- NDJSON --------------------------------------------------------------------------------------------


def ndjson(pieces: list[bytes], **kw: Any) -> tuple[list[StreamUnit], Splitter, Counter]:
    c: Counter = Counter()
    s = make_splitter("ndjson", c, **kw)
    return feed_all(s, pieces), s, c


def test_ndjson_lines_bad_lines_and_crlf() -> None:
    body = b'{"a": 1}\r\n\n  \n[1, 2]\nnot json\r\n"s"\n{"done": true}'
    for pieces in ([body], bytewise(body)):
        units, s, c = ndjson(pieces)
        assert units_only(units) == [{"a": 1}, [1, 2], BadUnit("not json"), "s", {"done": True}]
        assert c["ndjson_lines"] == 5
        assert c["ndjson_bad_lines"] == 1
        assert s.damage == set()


def test_ndjson_timestamps() -> None:
    units, _, _ = ndjson([b'{"a":', b"1}\n{", b'"b":2}\n', b"3"])
    assert units == [(1, {"a": 1}), (2, {"b": 2}), (999, 3)]


def test_ndjson_redact_before_parse_and_invalid_utf8() -> None:
    units, s, _ = ndjson([b'{"k": "sk-X"}\n{"t": "\xff"}\n'], redact=lambda t: t.replace("sk-X", "[R]"))
    assert units_only(units) == [{"k": "[R]"}, {"t": "\ufffd"}]
    assert s.damage == {"decode_error"}


# --- JSON array ----------------------------------------------------------------------------------------


def jarr(pieces: list[bytes], **kw: Any) -> tuple[list[StreamUnit], Splitter, Counter]:
    c: Counter = Counter()
    s = make_splitter("json-array", c, **kw)
    return feed_all(s, pieces), s, c


GEMINI = (
    b'[{"candidates": [{"content": {"parts": [{"text": "He said \\"[x]\\" and {y}"}]}}]}\r\n'
    b',\r\n{"candidates": [{"content": {"parts": [{"text": "\\\\"}]}}],'
    b' "usageMetadata": {"n": [1, [2, []]]}}\r\n'
    b"]"
)
GEMINI_UNITS = [
    {"candidates": [{"content": {"parts": [{"text": 'He said "[x]" and {y}'}]}}]},
    {"candidates": [{"content": {"parts": [{"text": "\\"}]}}], "usageMetadata": {"n": [1, [2, []]]}},
]


def test_json_array_elements_with_brackets_and_escapes_in_strings() -> None:
    units, s, _ = jarr([GEMINI])
    assert units_only(units) == GEMINI_UNITS
    assert s.damage == set()


def test_json_array_one_byte_feeds_and_timestamps() -> None:
    units, _, _ = jarr(bytewise(GEMINI))
    assert units_only(units) == GEMINI_UNITS
    first_end = GEMINI.index(b"}\r\n,") + 1  # the closing brace of the first element
    assert [ts for ts, _ in units] == [first_end - 1, len(GEMINI) - 4]


def test_json_array_scalars_strings_and_nesting() -> None:
    body = b' [ 1 , -2.5e3,"a]\\"b" ,true,null, [ [] , {"x":"}"} ] , {} ] '
    for pieces in ([body], bytewise(body)):
        units, _, _ = jarr(pieces)
        assert units_only(units) == [1, -2500.0, 'a]"b', True, None, [[], {"x": "}"}], {}]


def test_json_array_scalar_completed_by_delimiter_in_later_feed() -> None:
    units, _, _ = jarr([b"[12", b"3", b",4", b"]"])
    assert units == [(2, 123), (3, 4)]


def test_json_array_bad_element_and_cut_element() -> None:
    units, _, _ = jarr([b'[{"a": 1}, {bad}, tru, {"cut": [1, '])
    assert units_only(units) == [{"a": 1}, BadUnit("{bad}"), BadUnit("tru"), BadUnit('{"cut": [1, ')]
    assert units[-1][0] == 999


def test_json_array_empty_and_trailing_data() -> None:
    assert jarr([b" [ ] \r\n"])[0] == []
    assert units_only(jarr([b'[{"a":1}] [{"b":2}]'])[0]) == [{"a": 1}]


def test_json_array_body_that_is_not_an_array_is_one_element() -> None:
    body = b'{"error": {"code": 400, "message": "bad [request]"}}'
    units, _, _ = jarr(bytewise(body))
    assert units_only(units) == [{"error": {"code": 400, "message": "bad [request]"}}]


def test_json_array_body_that_is_not_json_is_one_unit_at_the_end() -> None:
    body = b"<html>\n<body>Bad Gateway</body>\n</html>\n"
    units, _, _ = jarr(bytewise(body))
    assert units == [(999, BadUnit("<html>\n<body>Bad Gateway</body>\n</html>"))]
    units, _, _ = jarr([b" 4", b"2 "])
    assert units == [(999, 42)]


def test_json_array_redact_and_multibyte() -> None:
    body = '[{"t": "caf\u00e9 sk-X \u20ac"}]'.encode()
    units, s, _ = jarr(bytewise(body), redact=lambda t: t.replace("sk-X", "[R]"))
    assert units_only(units) == [{"t": "caf\u00e9 [R] \u20ac"}]
    assert s.damage == set()


# --- any split gives the same units --------------------------------------------------------------------

_text = st.text(
    alphabet=st.sampled_from(list("ab :{}[]\",\\\u00e9\u20ac\U0001f600\ufffd") + ["\x00"]), max_size=12
)
_cuts = st.lists(st.integers(0, 2000), max_size=30)


@st.composite
def sse_bodies(draw: st.DrawFn) -> tuple[bytes, list[SseEvent]]:
    """An SSE body with random line endings and its expected events."""
    events = draw(
        st.lists(
            st.tuples(
                st.one_of(st.none(), st.text(alphabet="abc_", min_size=1, max_size=5)),
                st.lists(_text.filter(lambda t: "\n" not in t and "\r" not in t), min_size=1, max_size=3),
                st.one_of(st.none(), st.text(alphabet="0123456789", max_size=3)),
                st.booleans(),  # a comment line inside
            ),
            max_size=6,
        )
    )
    eols = st.sampled_from(["\n", "\r\n", "\r"])
    text, expected = "", []
    for event, data_lines, ev_id, comment in events:
        lines = []
        if comment:
            lines.append(": keep-alive")
        if event is not None:
            lines.append(f"event: {event}")
        if ev_id is not None:
            lines.append(f"id:{ev_id}")
        lines += [f"data: {d}" for d in data_lines]
        lines.append("")
        for line in lines:
            eol = draw(eols)
            if line == "" and text.endswith("\r") and eol == "\n":
                eol = "\r\n"  # "\r" + "\n" would be one line end, not an empty line
            text += line + eol
        expected.append(SseEvent(event, "\n".join(data_lines), ev_id))
    return text.encode(), expected


@settings(max_examples=200, deadline=None)
@given(body=sse_bodies(), cuts=_cuts)
def test_sse_any_split_yields_identical_units(body: tuple[bytes, list[SseEvent]], cuts: list[int]) -> None:
    raw, expected = body
    whole, _, _ = sse([raw])
    assert units_only(whole) == expected
    units, s, c = sse(split_at(raw, cuts))
    assert units_only(units) == expected
    assert c["sse_events"] == len(expected)
    assert s.damage == set()
    ts = [t for t, _ in units]
    assert ts == sorted(ts)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)
_ws = st.sampled_from(["", " ", "\r\n", "\n  ", "\t"])


@settings(max_examples=200, deadline=None)
@given(values=st.lists(_json, max_size=6), cuts=_cuts, data=st.data())
def test_ndjson_any_split_yields_identical_units(
    values: list[Any], cuts: list[int], data: st.DataObject
) -> None:
    raw = b"".join(orjson.dumps(v) + data.draw(st.sampled_from([b"\n", b"\r\n", b"\n\n"])) for v in values)
    units, s, c = ndjson(split_at(raw, cuts))
    assert units_only(units) == values
    assert c["ndjson_lines"] == len(values) and c["ndjson_bad_lines"] == 0
    assert s.damage == set()


@settings(max_examples=200, deadline=None)
@given(values=st.lists(_json, max_size=6), cuts=_cuts, data=st.data())
def test_json_array_any_split_yields_identical_units(
    values: list[Any], cuts: list[int], data: st.DataObject
) -> None:
    text = data.draw(_ws) + "["
    for i, v in enumerate(values):
        if i:
            text += data.draw(_ws) + "," + data.draw(_ws)
        text += data.draw(_ws) + orjson.dumps(v).decode()
    text += data.draw(_ws) + "]" + data.draw(_ws)
    raw = text.encode()
    whole, _, _ = jarr([raw])
    assert units_only(whole) == values
    units, s, _ = jarr(split_at(raw, cuts))
    assert units_only(units) == values
    assert s.damage == set()


_noise = st.lists(
    st.sampled_from(
        [b"data:", b"event: e", b"id: 1", b": c", b"\r", b"\n", b"\r\n", b" ", b",", b"[", b"]", b"{", b"}",
         b'"', b"\\", b"1", b"tru", b"e", b"\xc3", b"\xa9", b"\xe2\x82\xac", b"\xff", b"\xef\xbb\xbf"]
    ),
    max_size=80,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(raw=_noise, cuts=_cuts, fmt=st.sampled_from(["sse", "ndjson", "json-array"]))
def test_any_body_any_split_yields_identical_units_and_damage(raw: bytes, cuts: list[int], fmt: str) -> None:
    """Arbitrary (also malformed) bodies: how the bytes are cut into feeds never changes the result."""
    c1: Counter = Counter()
    s1 = make_splitter(fmt, c1)
    whole = units_only(feed_all(s1, [raw]))
    c2: Counter = Counter()
    s2 = make_splitter(fmt, c2)
    assert units_only(feed_all(s2, split_at(raw, cuts))) == whole
    assert s2.damage == s1.damage
    assert c2 == c1
