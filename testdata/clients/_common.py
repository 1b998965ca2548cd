"""Fake credentials and small helpers shared by the client scripts.

The keys below are FAKE. They only look like real keys so that redaction code has something to find.
"""
from __future__ import annotations

import json
import sys
import time
import traceback

ANTHROPIC_KEY = "sk-ant-api03-" + ("FAKEmockKey0" * 8)[:86] + "-FAKEAA"
OPENAI_KEY = "sk-proj-" + ("MockFakeKey0notReal1" * 8)[:156]
OPENAI_KEY_2 = "sk-proj-" + ("SecondFakeKey9mock8" * 9)[:156]
GEMINI_KEY = "AIza" + ("SyFAKE0mock1KEY2not3real4567890ABCDEF")[:35]
LITELLM_MASTER_KEY = "sk-litellm-" + "FAKEmaster0" * 3

assert len(GEMINI_KEY) == 39

WEATHER_TOOL_SCHEMA = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City name, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
}
TIME_TOOL_SCHEMA = {
    "type": "object",
    "properties": {"timezone": {"type": "string", "description": "IANA timezone"}},
    "required": ["timezone"],
}


def run_tool(name: str, args: dict | str) -> str:
    """Deterministic local 'tool execution'."""
    if isinstance(args, str):
        try:
            args = json.loads(args or "{}")
        except ValueError:
            args = {"raw": args}
    if name == "get_weather":
        loc = args.get("location", "?")
        return json.dumps({"location": loc, "temperature_c": 18 if loc == "Paris" else 23, "sky": "clear"})
    if name == "get_time":
        return json.dumps({"timezone": args.get("timezone"), "time": "12:00"})
    return json.dumps({"ok": True, "tool": name, "args": args})


_results = []


def step(label: str):
    """Decorator-ish context: run fn, print the outcome, never raise."""
    def deco(fn):
        t0 = time.time()
        try:
            out = fn()
            _results.append((label, "ok"))
            print(f"[client] {label}: ok {str(out)[:100]!r} ({time.time() - t0:.2f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 -- errors are expected in some scenarios
            _results.append((label, type(e).__name__))
            print(f"[client] {label}: {type(e).__name__}: {str(e)[:120]}", flush=True)
            if "-v" in sys.argv:
                traceback.print_exc()
        return fn
    return deco


def base_url() -> str:
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    if not args:
        sys.exit("usage: script.py BASE_URL   (e.g. http://127.0.0.1:18101)")
    return args[0].rstrip("/")
