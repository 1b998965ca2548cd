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

from .bodies import body_rows, make_compressor
from .config import Config
from .http.connection import HttpConnection
from .messages import CallStarted, ExchangeFinished
from .pricing import Pricer
from .records import EndOfSource, Exchange, FlowInfo, Heartbeat, Segment, Watermark
from .redact import Redactor
from .tcp.reassembly import TcpReassembler
from .agents import classify_call, request_session_id
from .wire.decode import decode_call
from .wire.detect import detect

Emit = Callable[[Any], None]


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
        if det is not None:
            try:
                session = request_session_id(ex, det.wire_api, det.operation, det.req)
            except Exception:  # classification must never stop the pipeline
                self.counters["extract_errors"] += 1
                session = None
            self.emit(CallStarted(ex.source_id, ex.exchange_id, ex.request_start or 0, det.wire_api, session))

    def exchange_done(self, ex: Exchange) -> None:
        call = decode_call(ex, self.counters)
        if call is not None and self.cfg.cost_enabled:
            self.pricer.price(call, ex)
        if call is not None:
            classify_call(call, ex, self.counters)
        bodies = body_rows(ex, call, self.cfg, self.compressor)
        # The bodies now live (capped, compressed) in the body rows; don't ship them twice.
        ex.request_body = b""
        ex.response_body = b""
        ex.stream_units = []
        self.emit(ExchangeFinished(ex, call, bodies))
