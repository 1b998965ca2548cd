"""Pipeline-health counters (capture-and-http.md §11).

Each stage owns a ``collections.Counter`` (``c["tcp_retransmits"] += 1`` is the whole API, cheap in the
hot loop) and the engine sums them. ``STAGE_OF`` says which stage a counter belongs to, so the health
view and ``/api/pipeline`` can group them without every stage knowing the layout.
"""

from __future__ import annotations

from collections import Counter

Counters = Counter

_STAGES: dict[str, tuple[str, ...]] = {
    "reader": (
        "packets_read", "bytes_read", "packets_dropped_overload", "packets_dropped_kernel",
        "packets_truncated", "read_errors", "file_truncated", "heartbeats_emitted", "zmq_batches",
        "zmq_batches_malformed", "zmq_batches_dropped", "ebpf_events", "ebpf_events_lost",
        "ebpf_chunks_dropped", "ebpf_uprobes_attached", "ebpf_server_flows_skipped",
    ),
    "decode": (
        "packets_decoded", "not_ip", "not_tcp", "ip_fragments", "packets_malformed", "unsupported_linktype",
    ),
    "tcp": (
        "flows_created", "flows_active", "flows_closed", "flows_expired", "midstream_syncs",
        "bytes_skipped_unsynced", "tcp_retransmits", "tcp_ooo_segments", "tcp_ooo_bytes",
        "tcp_gaps_skipped", "tcp_gap_bytes",
    ),
    "http": (
        "requests", "responses", "interim_responses_skipped", "unpaired_responses", "exchanges_complete",
        "exchanges_aborted", "exchanges_no_response", "exchanges_damaged", "parse_errors", "decode_errors",
        "bodies_over_limit", "upgrades_skipped", "h2_skipped", "sse_events", "ndjson_lines", "ndjson_bad_lines",
    ),
    "wire": (
        "calls_detected", "detected_by_route", "detected_by_shape", "refined_by_response",
        "exchanges_not_llm", "extract_errors", "usage_missing", "usage_estimated", "calls_unpriced",
        "stream_orphan_deltas",
    ),
    "agents": (
        "calls_by_agent_kind", "calls_auxiliary", "calls_subagent", "session_unresolved",
        "tool_ids_canonicalized",
    ),
    "assembler": (
        "calls_received", "calls_late", "turns_finalized", "turns_amended", "turns_open", "sessions_active",
        "hops_folded", "insights_raised", "watermark_lag_s",
    ),
    "store": (
        "rows_written", "flushes", "flush_errors", "store_rows_failed", "flush_ms_p95", "db_bytes",
        "body_bytes_stored", "bodies_capped", "duplicates_skipped",
    ),
}

STAGE_OF: dict[str, str] = {name: stage for stage, names in _STAGES.items() for name in names}


def stage_of(name: str) -> str:
    """Stage of a counter; per-key counters like ``calls_detected.anthropic`` use their base name."""
    return STAGE_OF.get(name.split(".", 1)[0], "other")


def by_stage(counters: Counter) -> dict[str, dict[str, int]]:
    """Group a flat counter into ``{stage: {name: value}}`` for display."""
    out: dict[str, dict[str, int]] = {}
    for name, value in sorted(counters.items()):
        out.setdefault(stage_of(name), {})[name] = value
    return out
