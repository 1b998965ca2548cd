"""File sources: a capture file → ``Segment``/``Heartbeat`` records and a final ``EndOfSource``.

Event time (capture-and-http.md §2.6) is per source the largest packet timestamp seen so far; late
packets keep their own timestamps but never move it back. A ``Heartbeat(source_id, t)`` is emitted each
time event time has advanced ``capture.heartbeat_s`` past the previous heartbeat (the first packet sets
the reference), carrying the new event time ``t`` and placed *before* the segment of the packet that
crossed it: the workers' timers (gap timeout, flow expiry) that are due by ``t`` then fire before that
packet is processed, so e.g. a flow idle past its expiry is closed before a packet that would reuse its
4-tuple arrives. Every frame moves event time, also those that decode to no segment.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from heron_core.capture.decode import decode_span
from heron_core.capture.pcapfile import Frame, Span, read_spans
from heron_core.config import Config
from heron_core.records import EndOfSource, Heartbeat, Segment

SourceRecord = Segment | Heartbeat | EndOfSource


def open_file_source(
    path: str | os.PathLike[str], source_id: str, counters: Counter, cfg: Config
) -> Iterator[SourceRecord]:
    """Open a capture file as one source.

    Raises ``CaptureFileError`` here, when called, if the header cannot be read (nothing is yielded
    first); then yields segments and heartbeats in file order and ends with ``EndOfSource``.
    """
    return spans_to_records(read_spans(path, counters), source_id, counters, cfg)


def frames_to_records(
    frames: Iterable[Frame], source_id: str, counters: Counter, cfg: Config
) -> Iterator[SourceRecord]:
    """The same records from ``(ts_us, linktype, data, orig_len)`` frames (live captures, tests)."""
    spans = ((ts, lt, data, 0, len(data), orig) for ts, lt, data, orig in frames)
    return spans_to_records(spans, source_id, counters, cfg)


def spans_to_records(
    spans: Iterable[Span], source_id: str, counters: Counter, cfg: Config
) -> Iterator[SourceRecord]:
    """Decode the frames of one source and stamp heartbeats; ends with ``EndOfSource``.

    Takes an iterable rather than a path so several files read as one source (``--one-source``) can
    pass ``itertools.chain`` of their ``read_spans``. ``packets_decoded`` is counted in a local and
    added to the counters at each heartbeat and at the end (a ``Counter`` update per packet would cost
    a tenth of the loop).
    """
    hb_us = max(1, round(cfg.capture_heartbeat_s * 1_000_000))
    decode = decode_span
    decoded = 0
    it = iter(spans)
    try:
        for ts, linktype, buf, start, end, _orig_len in it:  # the first frame sets the reference time
            last_hb = ts
            seg = decode(source_id, ts, linktype, buf, start, end, counters)
            if seg is not None:
                decoded += 1
                yield seg
            break
        else:
            yield EndOfSource(source_id)
            return
        for ts, linktype, buf, start, end, _orig_len in it:
            # Event time is max(ts) so far; it only matters here once it is a heartbeat spacing past the
            # last heartbeat, and last_hb only grows, so this one comparison is the whole rule (a late
            # packet can never pass it).
            if ts - last_hb >= hb_us:
                last_hb = ts
                counters["heartbeats_emitted"] += 1
                counters["packets_decoded"] += decoded
                decoded = 0
                yield Heartbeat(source_id, ts)
            seg = decode(source_id, ts, linktype, buf, start, end, counters)
            if seg is not None:
                decoded += 1
                yield seg
    finally:
        counters["packets_decoded"] += decoded
        decoded = 0
    yield EndOfSource(source_id)


def source_id_for(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Source ids for files read in one run: the file name without its extension, made unique in
    order with ``-2``, ``-3`` … (``a/x.pcap``, ``b/x.pcapng`` → ``x``, ``x-2``)."""
    used: set[str] = set()
    out: list[str] = []
    for p in paths:
        base = Path(p).stem or Path(p).name or "source"
        sid = base
        n = 1
        while sid in used:
            n += 1
            sid = f"{base}-{n}"
        used.add(sid)
        out.append(sid)
    return out
