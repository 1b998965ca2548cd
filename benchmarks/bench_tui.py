"""TUI responsiveness on a 100k-call store: first paint, filter apply, page scroll.

Builds the store straight into DuckDB (``tests/tui/storegen.synth_rows``: 100k calls, 20k turns, 2k
sessions, ~1k insights — pushing a 1 GB capture through the engine would measure the engine), then
drives the real app headless (``App.run_test``) and times what a user waits for:

* first paint — app start until the first page of the Turns list is on screen (target ≤ 1 s);
* filter apply — from enter until the filtered count and first page are swapped in (target ≤ 300 ms),
  for the documented example filters on the Turns and Calls views;
* page scroll — page-down until every visible row is available (cache or fetch) and drawn, i.e. its
  line strips rendered (target ≤ 50 ms); sequential pages at a fast key-repeat pace (prefetched) and
  jumps to the far end and back (``End``/``Home``: a page read from the other end of the order);

and the raw query costs behind them. Prints numbers only; the tests assert behaviour, not timings.

    python benchmarks/bench_tui.py [--calls 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from heron_core.query.lists import SPECS, ListQuery, compile_for
from heron_core.query.sparks import compute as sparks
from heron_core.store.db import open_store
from heron_tui.app import AppOptions, HeronApp
from tests.tui.storegen import synth_rows

FILTERS = ["agent == claude-cli && ttft > 2s", 'model ~ "sonnet" || status >= 500', "tool == Bash", "insight",
           "cost > 0.10"]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


async def until(cond, timeout: float = 30.0, step: float = 0.001) -> None:
    deadline = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > deadline:
            raise TimeoutError
        await asyncio.sleep(step)


def paint(table) -> None:
    """Render every visible line of the list, as the compositor does for a frame (strips from the page
    cache). Timing this instead of ``pilot.pause()`` matters: the pilot waits until the whole process is
    idle, background prefetch included, which is not what the user waits for."""
    for y in range(table.size.height):
        table.render_line(y)


def visible_ready(table) -> bool:
    top = int(table.scroll_offset.y)
    rows = min(table.row_count, top + table.size.height - 1)
    return all(table.row_at(i) is not None and (i // 100) in table._fresh for i in range(top, rows))


async def run_app(store, repeat: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"first_paint": [], "filter": [], "page": [], "jump": []}
    for _ in range(repeat):
        t0 = time.perf_counter()
        app = HeronApp(store, None, AppOptions(source_label="bench", metrics=False))
        async with app.run_test(size=(160, 50)) as pilot:
            await until(lambda app=app: app._main is not None and app.list_view().table.row_at(0) is not None)
            paint(app.list_view().table)
            out["first_paint"].append(time.perf_counter() - t0)
            await app.wait_idle(60)
            for view in ("turns", "calls"):
                app.action_view(view)
                await app.wait_idle(60)
                for text in FILTERS + [""]:
                    lv = app.list_view()
                    t = time.perf_counter()
                    app._apply_filter(text)
                    gen = lv._gen
                    await until(lambda lv=lv, gen=gen: lv._applied_gen == gen and not lv.busy)
                    paint(lv.table)
                    out["filter"].append(time.perf_counter() - t)
                    await pilot.pause()
            table = app.list_view().table
            table.focus()
            for _ in range(30):
                t = time.perf_counter()
                table.action_page(1)
                await until(lambda table=table: visible_ready(table))
                paint(table)
                out["page"].append(time.perf_counter() - t)
                await asyncio.sleep(0.05)  # a fast key repeat: prefetch gets this much time
            for target in ("last", "first", "last"):
                t = time.perf_counter()
                getattr(table, f"action_{target}")()
                await until(lambda table=table: visible_ready(table))
                paint(table)
                out["jump"].append(time.perf_counter() - t)
                await pilot.pause()
    return out


def raw_queries(store) -> None:
    cur = store.conn.cursor()
    for name in ("turns", "calls"):
        q = ListQuery(SPECS[name])
        n = q.count(cur)
        for label, off in (("page at 0", 0), ("page at middle", n // 2), ("page at end", n - 100)):
            t = time.perf_counter()
            q.fetch(cur, off, 100)
            print(f"  {name:6} {label:16} {ms(time.perf_counter() - t)}")
        worst = 0.0
        for text in FILTERS:
            fq = ListQuery(SPECS[name], compile_for(name, text))
            t = time.perf_counter()
            fq.count(cur)
            fq.fetch(cur, 0, 100)
            worst = max(worst, time.perf_counter() - t)
        print(f"  {name:6} {'worst filter':16} {ms(worst)}  (count + first page)")
    t = time.perf_counter()
    sparks(cur)
    print(f"  sparklines (8 series × 60 buckets) {ms(time.perf_counter() - t)}")


def summary(label: str, values: list[float], target: float) -> None:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    verdict = "ok" if values[-1] <= target else ("p95 ok" if p95 <= target else "OVER")
    print(f"  {label:14} median {ms(statistics.median(values))}  p95 {ms(p95)}  max {ms(values[-1])}"
          f"   target {ms(target)}  {verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    store = open_store(None)
    t = time.perf_counter()
    synth_rows(store.conn, args.calls)
    counts = {k: store.conn.execute(f"SELECT count(*) FROM {k}").fetchone()[0]
              for k in ("calls", "turns", "sessions", "insights")}
    print(f"store: {counts} built in {time.perf_counter() - t:.2f}s")
    print("raw queries:")
    raw_queries(store)
    print(f"app (headless, 160×50, {args.repeat} runs):")
    res = asyncio.run(run_app(store, args.repeat))
    summary("first paint", res["first_paint"], 1.0)
    summary("filter apply", res["filter"], 0.3)
    summary("page scroll", res["page"], 0.05)
    summary("jump (End/Home)", res["jump"], 0.05)


if __name__ == "__main__":
    main()
