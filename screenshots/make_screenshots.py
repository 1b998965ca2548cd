"""Regenerate the SVG screenshots of heron-tui in this folder (README material).

Runs the real app headless on the bundled demo capture — the same progressive path as
``heron-tui --demo``: the file is read by the loader thread while the UI polls — waits until it is
loaded, then saves one screenshot per view plus a filtered list, the filter help, the help screen and an
80×24 16-colour terminal. Live mode is shown with the demo replayed in real time
(``heron-tui --demo --replay-speed 4``: the engine's live pipeline, event-time turn assembly, in-progress
turns), stopped at the same event time each run so the picture is repeatable.

    python screenshots/make_screenshots.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

os.environ.setdefault("TZ", "UTC")
time.tzset()

from heron_core.capture.sources import SourceSpec
from heron_core.config import Config
from heron_core.store.db import open_store
from heron_tui.app import AppOptions, HeronApp
from heron_tui.live import PipelineRun
from heron_tui.loader import Loader
from heron_tui.tui_cli import demo_path

SHOTS = [
    # (file, size, theme, keys)
    ("tui-01-turns.svg", (130, 36), "dark", ["1"]),
    ("tui-02-sessions.svg", (130, 36), "dark", ["2"]),
    ("tui-03-calls.svg", (130, 36), "dark", ["3"]),
    ("tui-04-insights.svg", (130, 36), "dark", ["4"]),
    ("tui-05-services.svg", (130, 36), "dark", ["5"]),
    ("tui-06-pipeline.svg", (130, 36), "dark", ["6"]),
    ("tui-07-filter.svg", (130, 36), "dark", ["3", "slash", *'model ~ "gpt" && (status >= 400 || ttft > 2s)', "enter"]),
    ("tui-08-filter-help.svg", (110, 40), "dark", ["slash", *"tool == Bash && ", "question_mark"]),
    ("tui-09-help.svg", (110, 44), "dark", ["question_mark"]),
    ("tui-10-turns-light.svg", (130, 36), "light", ["1"]),
    ("tui-11-calls-80x24-16-colours.svg", (80, 24), "16", ["3"]),
]


async def shoot(name: str, size: tuple[int, int], theme: str, keys: list[str]) -> None:
    store = open_store(None)
    os.chdir(HERE.parent)  # the pipeline view shows the path: keep it relative to the repository
    path = os.path.relpath(demo_path(), HERE.parent)
    loader = Loader(store, Config(), [path], ["demo"])
    app = HeronApp(store, loader, AppOptions(source_label="demo.pcap", theme=theme, metrics=size[1] >= 32))
    async with app.run_test(size=size) as pilot:
        await app.wait_idle(60)
        await pilot.pause(4.5)  # let the "loaded" notification fade
        app.filterbar.input.cursor_blink = False
        for key in keys:
            await pilot.press(key)
            await app.wait_idle(60)
        await pilot.pause(0.3)
        app.save_screenshot(str(HERE / name))
    store.close()
    print(f"wrote {HERE / name}")


LIVE_SHOTS = [
    # (file, size, keys, event seconds into the capture)
    ("tui-12-live-turns.svg", (130, 36), ["1", "f"], 47.0),
    ("tui-13-live-pipeline.svg", (130, 36), ["6"], 47.0),
]
LIVE_SPEED = 4.0


async def shoot_live(name: str, size: tuple[int, int], keys: list[str], at_s: float) -> None:
    """The demo replayed in real time; the screenshot is taken when event time reaches ``at_s``."""
    store = open_store(None)
    os.chdir(HERE.parent)  # the pipeline view shows the path: keep it relative to the repository
    path = os.path.relpath(demo_path(), HERE.parent)
    spec = SourceSpec("files", paths=[path], source_ids=["demo"], replay_speed=LIVE_SPEED)
    run = PipelineRun(store, Config(), spec, workers=0)
    run.open()
    app = HeronApp(store, run, AppOptions(source_label="demo.pcap ×4 (live replay)", metrics=True, poll_s=0.2))
    async with app.run_test(size=size) as pilot:
        app.filterbar.input.cursor_blink = False
        for key in keys:
            await pilot.press(key)
        first = None
        while True:
            wm = run.state.watermark
            first = first or wm
            if wm is not None and wm - first >= at_s:
                break
            await asyncio.sleep(0.05)
        await pilot.pause(0.5)  # a poll of the lists and the status at that event time
        app.save_screenshot(str(HERE / name))
    run.stop(30)
    store.close()
    print(f"wrote {HERE / name}")


def main() -> None:
    for shot in SHOTS:
        asyncio.run(shoot(*shot))
    for shot in LIVE_SHOTS:
        asyncio.run(shoot_live(*shot))


if __name__ == "__main__":
    main()
