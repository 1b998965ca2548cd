"""Messages from the decode workers to the assembler (capture-and-http.md §3).

Everything here pickles cheaply: a finished exchange travels without its bodies (they are already
capped and compressed into body rows by the worker) and without its stream units.
"""

from __future__ import annotations

from typing import NamedTuple

from .records import Call, Exchange


class CallStarted(NamedTuple):
    """A request was fully read and detected as an LLM call (turn assembly tracks calls in flight)."""

    source_id: str
    call_id: str
    request_start_us: int
    wire_api: str
    session_id: str | None = None  # known when the request alone decides it (headers, metadata, anchor)


class ExchangeFinished(NamedTuple):
    """An exchange is final; ``call`` is its decoded LLM call or None; ``bodies`` are store rows."""

    exchange: Exchange
    call: Call | None
    bodies: list
