"""Pipeline statistics: summed counters, queue gauges, per-worker load and health (capture-and-http.md §11).

Processes send full snapshots of their counters (``Stats``), so the total is simply the main process's
own counters plus the latest snapshot of every other process, and gauges (``flows_active``) sum right.
``pipeline_snapshot`` builds the ``GET /api/pipeline`` object of interfaces.md §7.2:

    {health, reasons[], counters: {stage: {name: value}}, queues: [{name, depth, capacity, high_water,
     blocked_s, dropped}], workers: [{index, pid, alive, segments, load, …}], sampled_at}

Health compares with the previous sample (``HealthTracker``): **critical** if a loss counter grew or a
queue is ≥ 95 % full, **warning** if a damage counter grew or a queue is ≥ 90 % full, else **ok**. The
queue-fullness rule applies only to lossy sources: a file replay blocks on full queues by design
(backpressure), losing nothing (docs/engine-decisions.md).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from heron_core.counters import by_stage

CRITICAL_COUNTERS = (
    "packets_dropped_overload", "packets_dropped_kernel", "zmq_batches_malformed", "zmq_batches_dropped",
    "ebpf_events_lost", "flush_errors", "store_rows_failed", "read_errors",
)
WARNING_COUNTERS = (
    "tcp_gaps_skipped", "parse_errors", "unpaired_responses", "exchanges_damaged", "calls_late", "h2_skipped",
)
QUEUE_CRITICAL = 0.95
QUEUE_WARNING = 0.90


class HealthTracker:
    """Remembers the previous sample's counters so health reflects what happened since then."""

    def __init__(self) -> None:
        self.prev: Counter = Counter()

    def assess(self, totals: Counter, queues: list[dict[str, Any]], lossy: bool) -> tuple[str, list[str]]:
        critical: list[str] = []
        warning: list[str] = []
        for name in CRITICAL_COUNTERS:
            d = totals.get(name, 0) - self.prev.get(name, 0)
            if d > 0:
                critical.append(f"{name} +{d}")
        for name in WARNING_COUNTERS:
            d = totals.get(name, 0) - self.prev.get(name, 0)
            if d > 0:
                warning.append(f"{name} +{d}")
        if lossy:
            for q in queues:
                cap = q.get("capacity") or 0
                if cap <= 0:
                    continue
                fill = q.get("depth", 0) / cap
                if fill >= QUEUE_CRITICAL:
                    critical.append(f"queue {q['name']} {fill:.0%} full")
                elif fill >= QUEUE_WARNING:
                    warning.append(f"queue {q['name']} {fill:.0%} full")
        self.prev = Counter({k: v for k, v in totals.items() if k in CRITICAL_COUNTERS or k in WARNING_COUNTERS})
        if critical:
            return "critical", critical + warning
        if warning:
            return "warning", warning
        return "ok", []


class PipelineStats:
    """Latest ``Stats`` of every process, merged into totals and the snapshot. Written by the main
    thread, read by others (the API server): readers take copies with C-level (GIL-atomic) calls."""

    def __init__(self, workers: int, worker_capacity: int, assembler_capacity: int) -> None:
        self.workers = workers
        self.counters: dict[tuple[str, int], dict[str, int]] = {}
        self.queues: dict[tuple[str, int], dict[str, dict[str, float]]] = {}
        self.load: dict[tuple[str, int], dict[str, float]] = {}
        self.pids: dict[tuple[str, int], int] = {}
        self.capacity = {f"worker-{i}": worker_capacity for i in range(workers)}
        self.capacity["assembler"] = assembler_capacity
        self.main_high_water = 0

    def update(self, st: Any) -> None:
        key = (st.role, st.index)
        self.counters[key] = st.counters
        self.queues[key] = st.queues
        self.load[key] = st.load
        self.pids[key] = st.pid

    def totals(self, main: Counter) -> Counter:
        total = Counter(main)
        for snap in list(self.counters.values()):  # snapshots are replaced whole, never mutated
            total.update(snap)
        return total

    def fold_into(self, main: Counter) -> None:
        """At the end of a run: add every process's final counters to the main counters, once."""
        for snap in self.counters.values():
            main.update(snap)
        self.counters.clear()

    def queue_rows(self, depths: dict[str, int]) -> list[dict[str, Any]]:
        rows = []
        for name, cap in self.capacity.items():
            hw = 0.0
            blocked = 0.0
            dropped = 0.0
            for g in list(self.queues.values()):
                q = g.get(name)
                if q:
                    hw = max(hw, q.get("high_water", 0))
                    blocked += q.get("blocked_s", 0.0)
                    dropped += q.get("dropped", 0)
            depth = depths.get(name, 0)
            if name == "assembler":
                hw = max(hw, self.main_high_water)
            rows.append({"name": name, "depth": depth, "capacity": cap, "high_water": int(max(hw, depth)),
                         "blocked_s": round(blocked, 3), "dropped": int(dropped)})
        return rows

    def worker_rows(self, alive: dict[int, bool], depths: dict[str, int]) -> list[dict[str, Any]]:
        rows = []
        for i in range(self.workers):
            load = self.load.get(("worker", i), {})
            blocked = self.queues.get(("worker", i), {}).get("assembler", {}).get("blocked_s", 0.0)
            wall = load.get("wall_s") or 0.0
            busy = max(0.0, load.get("busy_s", 0.0) - blocked)
            rows.append({
                "index": i,
                "pid": self.pids.get(("worker", i)),
                "alive": alive.get(i, False),
                "segments": int(load.get("segments", 0)),
                "messages": int(load.get("messages", 0)),
                "busy_s": round(busy, 3),
                "cpu_s": load.get("cpu_s", 0.0),
                "load": round(busy / wall, 3) if wall else 0.0,
                "queue_depth": depths.get(f"worker-{i}", 0),
            })
        return rows


def snapshot(
    totals: Counter, queues: list[dict[str, Any]], workers: list[dict[str, Any]], tracker: HealthTracker,
    lossy: bool,
) -> dict[str, Any]:
    """The ``GET /api/pipeline`` object from already merged figures."""
    health, reasons = tracker.assess(totals, queues, lossy)
    return {
        "health": health,
        "reasons": reasons,
        "counters": by_stage(totals),
        "queues": queues,
        "workers": workers,
        "sampled_at": time.time(),
    }
