"""Tunables: every number the spec calls a default, under its dotted key, overridable from TOML.

One ``Config`` object is built at start (defaults, then ``--config FILE``) and passed to every stage
that needs it; nothing reads a global.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


@dataclass(slots=True)
class Config:
    # capture (capture-and-http.md §1)
    capture_snaplen: int = 262144
    capture_buffer_bytes: int = 32 * MiB
    capture_heartbeat_s: float = 1.0
    pipeline_batch_segments: int = 256
    pipeline_worker_queue: int = 1024
    pipeline_assembler_queue: int = 8192
    pipeline_live_wait_s: float = 1.0  # a live source's reader waits this long for a busy worker before dropping
    tcp_ooo_max_bytes: int = 4 * MiB
    tcp_ooo_worker_max_bytes: int = 256 * MiB
    tcp_gap_timeout_s: float = 2.0
    tcp_idle_timeout_s: float = 300.0
    tcp_pending_timeout_s: float = 1800.0
    http_max_head_bytes: int = 65536
    http_max_body_bytes: int = 64 * MiB
    # storage (interfaces.md §4)
    store_body_cap: int = 4 * MiB
    store_other_body_cap: int = 64 * 1024
    # redaction (interfaces.md §5)
    redaction_enabled: bool = True
    redaction_extra_patterns: list[str] = field(default_factory=list)
    # turns and folding (agents-and-turns.md §1)
    turn_grace_s: float = 1.0
    turn_idle_timeout_s: float = 600.0
    fold_wait_s: float = 1.0
    fold_start_window_s: float = 2.0
    fold_end_tolerance_s: float = 0.010
    fold_mirror_tolerance_s: float = 0.001
    fold_same_host: bool = True  # a proxy's inner leg leaves from its outer leg's server (docs/turns.md)
    subagent_min_prompt_chars: int = 20
    insight_loop_repeats: int = 3
    insight_retry_gap_s: float = 120.0
    insight_stall_info_s: float = 120.0
    insight_stall_warn_s: float = 600.0
    insight_context_jump_tokens: int = 50000
    insight_rate_limit_share: float = 0.10
    insight_model_aliases: dict[str, str] = field(default_factory=dict)
    # metrics (metrics.md §1)
    metrics_max_buckets: int = 10000
    cost_enabled: bool = True

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> "Config":
        """Defaults, then the TOML file (dotted keys or nested tables), then keyword overrides."""
        cfg = cls()
        if path is not None:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
            for key, value in _flatten(data).items():
                cfg.set(key, value)
        for key, value in overrides.items():
            cfg.set(key, value)
        return cfg

    def set(self, dotted_key: str, value: Any) -> None:
        """Set a tunable by its spec key (``tcp.gap_timeout_s``) or attribute name."""
        name = dotted_key.replace(".", "_")
        known = {f.name for f in fields(self)}
        if name not in known:
            raise ValueError(f"unknown tunable {dotted_key!r}")
        setattr(self, name, value)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key not in ("insight.model_aliases",):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out
