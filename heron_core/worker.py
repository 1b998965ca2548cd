"""The decode worker: segments in, finished exchanges and calls out.

One ``DecodeWorker`` owns a TCP reassembler whose per-flow handlers are HTTP connections, and it is the
``ExchangeSink`` of all of them: finished exchanges are wire-decoded, classified, their bodies capped and
compressed, and the result is handed to ``emit``. It keeps no reference to what it emitted, so the same
object runs in the main process (``--workers 0``) or in a worker process fed by connection hash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from .agents import classify_call, request_session_id
from .assemble.tools import first_text_keys
from .bodies import body_rows, make_compressor
from .config import Config
from .http.connection import HttpConnection
from .messages import CallStarted, ExchangeFinished
from .pricing import Pricer
from .records import Call, EndOfSource, Exchange, FlowInfo, Heartbeat, Segment, Watermark
from .redact import Redactor
from .tcp.reassembly import TcpReassembler
from .wire.decode import decode_call
from .wire.detect import Detection, detect

Emit = Callable[[Any], None]

DETECT_KEEP_BYTES = 8 * 1024 * 1024
"""Request bytes whose parsed detection a worker keeps between request and response (see __init__)."""


class DecodeWorker:
    """Reassembly → HTTP → wire decoding → body encoding for every flow it is given."""

    def __init__(self, cfg: Config, redactor: Redactor, emit: Emit, counters: Counter | None = None) -> None:
        self.cfg = cfg
        self.redactor = redactor
        self.emit = emit
        self.counters = counters if counters is not None else Counter()
        self.compressor = make_compressor()
        self.pricer = Pricer(self.counters)
        self.reassembler = TcpReassembler(self._new_flow, self.counters, cfg)
        # Detection of each request in flight (exchange id → Detection or None), from request_complete to
        # exchange_done: the request is parsed once. The HTTP stage calls exchange_done exactly once per
        # exchange that had request_complete, so entries never outlive their exchange. A parsed request
        # is a few times its body's size, so only DETECT_KEEP_BYTES of bodies are kept at a time; the
        # requests beyond that (many calls in flight at once) are parsed again when they finish.
        self._detected: dict[str, tuple[Detection | None, int]] = {}
        self._detected_bytes = 0
        # Bound once: the per-segment call is the hot path.
        self.segment = self.reassembler.segment

    def _new_flow(self, flow: FlowInfo) -> HttpConnection:
        return HttpConnection(flow, self, self.counters, self.cfg, self.redactor)

    # --- input ---------------------------------------------------------------------------------------

    def handle(self, item: Segment | Heartbeat | EndOfSource) -> None:
        """Feed one reader item (segments should go straight to ``self.segment`` in hot loops)."""
        if type(item) is Segment:
            self.segment(item)
        elif type(item) is Heartbeat:
            self.reassembler.watermark(item.source_id, item.ts_us)
            self.emit(Watermark(item.source_id, item.ts_us))
        elif type(item) is EndOfSource:
            self.reassembler.end_source(item.source_id)
            self.emit(item)

    # --- ExchangeSink ---------------------------------------------------------------------------------

    def request_complete(self, ex: Exchange) -> None:
        det = detect(ex)
        size = len(ex.request_body) if det is not None else 0
        if self._detected_bytes + size <= DETECT_KEEP_BYTES:
            self._detected[ex.exchange_id] = (det, size)
            self._detected_bytes += size
        if det is not None:
            try:
                session = request_session_id(ex, det.wire_api, det.operation, det.req)
            except Exception:  # classification must never stop the pipeline
                self.counters["extract_errors"] += 1
                session = None
            self.emit(CallStarted(ex.source_id, ex.exchange_id, ex.request_start or 0, det.wire_api, session))

    def exchange_done(self, ex: Exchange) -> None:
        kept = self._detected.pop(ex.exchange_id, None)
        if kept is None:  # request cut short (no request_complete) or over the budget: detect now
            call = decode_call(ex, self.counters)
        else:
            self._detected_bytes -= kept[1]
            call = decode_call(ex, self.counters, kept[0])
        if call is not None and self.cfg.cost_enabled:
            self.pricer.price(call, ex)
        if call is not None:
            classify_call(call, ex, self.counters)
        bodies = body_rows(ex, call, self.cfg, self.compressor)
        # The bodies now live (capped, compressed) in the body rows; don't ship them twice.
        ex.request_body = b""
        ex.response_body = b""
        ex.stream_units = []
        if call is not None:
            for_assembler(call)
        self.emit(ExchangeFinished(ex, call, bodies))


def for_assembler(call: Call) -> None:
    """Drop the engine-internal fields that only the stages above (wire decoding, classification,
    pricing, body rows) read, before the call goes to the assembler — in a worker process, through a
    pickle. The parsed request and the first user text are ~60 KB each for an agent call and were half
    of all bytes sent to the main process; the assembler needs only the text's hash and length
    (``first_text_keys``). Kept: the ``x_`` fields the assembler reads (tool results, turn flags, parent
    hint, tentative flag, output fingerprint)."""
    call.x_first_user_keys = first_text_keys(call)
    call.x_first_user_text = None
    call.x_request = None
    call.x_response_object = None
    call.x_tool_definitions = []
    call.x_reasoning = None
    call.x_system_text = None
    call.x_envelope = None
