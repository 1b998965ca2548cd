"""Shared pieces of the mock LLM server: scenarios, deterministic content, ids, the response plan and the
truth fold.

Everything here is random-free: ids, texts, tool arguments and token counts are derived from the request
bytes (and from how often the same request body has been seen), so a re-run of the same client script
produces the same content.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from email.utils import formatdate

SCENARIO_RE = re.compile(r"\[scenario:([^\]]+)\]")

# name -> one-line description (README and --list-scenarios print this table)
SCENARIOS = {
    "text": "default: a short deterministic text answer",
    "tools[:N]": "call a tool (first tool defined in the request, else get_weather) until the history holds N tool results (default 1), then answer with text",
    "parallel": "like tools but two tool calls in one response (OpenAI chat: interleaved argument deltas), preceded by a short text",
    "thinking": "reasoning first (Anthropic thinking block + signature, chat reasoning_content, Responses reasoning item, Gemini thought part, Ollama thinking)",
    "cache": "prompt-cache numbers in usage (Anthropic cache_read/cache_creation, OpenAI cached_tokens, Gemini cachedContentTokenCount)",
    "refusal": "a refusal (Anthropic stop_reason refusal, chat/Responses refusal field/part, Gemini finishReason SAFETY)",
    "blocked": "Gemini only: promptFeedback.blockReason=SAFETY, no candidates",
    "length": "truncated output, finish length/max_tokens/MAX_TOKENS (Responses: response.incomplete max_output_tokens)",
    "incomplete": "Responses: response.incomplete with incomplete_details.reason=max_output_tokens (= length elsewhere)",
    "failed": "Responses: stream ends with response.failed (error code server_error); other APIs: same as midstream_error",
    "midstream_error": "HTTP 200 stream that carries an error event/chunk/line after some text",
    "utf8": "multi-byte UTF-8 text; each streamed event is written as two HTTP chunks split inside a multi-byte character",
    "long": "a longer text answer (about 40 deltas)",
    "substitute": "the served model differs from the requested one (e.g. ...-mini)",
    "error400": "HTTP 400 invalid request error body of the provider",
    "error401": "HTTP 401 authentication error",
    "error429": "HTTP 429 rate limit, always (retry-after: 1)",
    "retry429[:N]": "HTTP 429 for the first N (default 2) attempts of an identical request body, then the normal answer",
    "error500": "HTTP 500 internal error",
    "error529": "HTTP 529 overloaded_error (Anthropic); 503 for the other APIs",
    "retry529[:N]": "like retry429 but 529/503",
    "cut": "close the connection (FIN) halfway through the stream/body",
    "reset": "abort the connection (RST) halfway through the stream/body",
    "gzip": "Content-Encoding: gzip on the response if the client accepts it (streams: sync-flushed per event)",
    "br": "Content-Encoding: br on the response if the client accepts it",
    "slow": "200 ms between stream events and 400 ms before the first byte",
}

DEFAULT_TOOL = ("get_weather", {
    "type": "object",
    "properties": {"location": {"type": "string", "description": "City name"}},
    "required": ["location"],
})

ARG_VALUES = {
    "location": ["Paris", "Tokyo", "Lima"],
    "city": ["Paris", "Tokyo", "Lima"],
    "query": ["mock query", "second query", "third query"],
    "command": ["echo hi", "echo there", "echo again"],
    "cmd": ["echo hi", "echo there", "echo again"],
    "path": ["/tmp/work/hello.txt", "/tmp/work/other.txt", "/tmp/work/third.txt"],
    "file_path": ["/tmp/work/hello.txt", "/tmp/work/other.txt", "/tmp/work/third.txt"],
    "pattern": ["TODO", "FIXME", "XXX"],
    "description": ["Print hi", "Print there", "Print again"],
    "expression": ["2+2", "3*7", "10/4"],
    "timezone": ["Europe/Paris", "Asia/Tokyo", "America/Lima"],
    "a": [2, 3, 5],
    "b": [3, 4, 7],
}

# preferred arguments for tools that real agents define
KNOWN_TOOLS = {
    "Bash": lambda i: {"command": ARG_VALUES["command"][i % 3], "description": ARG_VALUES["description"][i % 3]},
    "exec_command": lambda i: {"cmd": ARG_VALUES["cmd"][i % 3]},
    "shell": lambda i: {"command": ["bash", "-lc", ARG_VALUES["command"][i % 3]]},
    "shell_command": lambda i: {"command": ARG_VALUES["command"][i % 3]},
}
PREFERRED_TOOL_ORDER = ["Bash", "exec_command", "shell_command", "shell"]

TEXT_DEFAULT = "Hello from the mock LLM. This is a deterministic reply to: {q}"
TEXT_FINAL = "The tool returned: {r}. That completes the task."
TEXT_REFUSAL = "I'm sorry, but I can't help with that request."
TEXT_REASONING = ("The user asked something simple. I will answer briefly and deterministically, "
                  "without calling any external service.")
TEXT_REASONING_TOOL = "I need data from a tool before answering. I will call it with the obvious arguments."
TEXT_UTF8 = "Grüße aus dem Mock — 你好，世界 🌍🚀 naïve café ✓ ¿Qué tal? Ελληνικά Ωμέγα. 日本語のテキスト。"
TEXT_PARALLEL_PREAMBLE = "I'll run both lookups in parallel."
TEXT_LONG = ("Sentence {i} of a longer deterministic answer, used to exercise many stream events. ")

SUBSTITUTE = {"default": "-mini"}


def b62(data: bytes, n: int) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    num = int.from_bytes(hashlib.sha256(data).digest(), "big")
    out = []
    while len(out) < n:
        num, r = divmod(num, 62)
        out.append(alphabet[r])
        if num == 0:
            num = int.from_bytes(hashlib.sha256(data + bytes(len(out))).digest(), "big")
    return "".join(out)


class Ids:
    """Deterministic id factory for one response."""

    def __init__(self, seed: bytes):
        self.seed = seed
        self.n = 0

    def raw(self, tag: str) -> bytes:
        self.n += 1
        return hashlib.sha256(self.seed + b"|" + tag.encode() + b"|" + str(self.n).encode()).digest()

    def b62(self, tag: str, n: int) -> str:
        return b62(self.raw(tag), n)

    def hex(self, tag: str, n: int) -> str:
        h = hashlib.sha256(self.raw(tag)).hexdigest() * 2
        return h[:n]

    def b64(self, tag: str, nbytes: int) -> str:
        raw = b""
        while len(raw) < nbytes:
            raw += self.raw(tag)
        return base64.b64encode(raw[:nbytes]).decode()


def parse_scenarios(text: str) -> dict:
    out: dict = {}
    for m in SCENARIO_RE.finditer(text or ""):
        for item in m.group(1).split(","):
            item = item.strip()
            if not item:
                continue
            name, _, arg = item.partition(":")
            out[name.strip().lower()] = arg.strip() or None
    return out


def strip_markers(text: str) -> str:
    text = re.sub(r"<system-reminder>.*?(</system-reminder>|$)", "", text or "", flags=re.S)
    return re.sub(r"\s+", " ", SCENARIO_RE.sub("", text)).strip()


def ceil4(s: str) -> int:
    return math.ceil(len(s) / 4) if s else 0


def http_date(t: float | None = None) -> str:
    return formatdate(t if t is not None else time.time(), usegmt=True)


def iso_z(t: float, frac_digits: int = 0) -> str:
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    if frac_digits:
        frac = f"{t % 1:.{frac_digits}f}"[2:]
        return f"{base}.{frac}Z"
    return base + "Z"


def jdump(obj, pretty: bool = False, ascii: bool = False) -> str:
    if pretty:
        return json.dumps(obj, indent=2, ensure_ascii=ascii)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=ascii)


def split_text(text: str, words_per_piece: int = 2) -> list[str]:
    """Split text into stream deltas of a few words each; the pieces concatenate to the text."""
    if not text:
        return []
    parts = re.findall(r"\S+\s*|\s+", text)
    out = []
    for i in range(0, len(parts), words_per_piece):
        out.append("".join(parts[i:i + words_per_piece]))
    return out


def split_n(s: str, n: int) -> list[str]:
    """Split a string into n roughly equal non-empty pieces."""
    if not s:
        return []
    n = max(1, min(n, len(s)))
    step = math.ceil(len(s) / n)
    return [s[i:i + step] for i in range(0, len(s), step)]


def args_from_schema(name: str, schema: dict | None, i: int) -> dict:
    if name in KNOWN_TOOLS:
        return KNOWN_TOOLS[name](i)
    schema = schema or {}
    props = schema.get("properties") or {}
    req = schema.get("required") or list(props)[:2]
    out = {}
    for k in req:
        p = props.get(k) or {}
        t = str(p.get("type", "string")).lower()
        if k in ARG_VALUES:
            v = ARG_VALUES[k][i % 3]
            if t in ("integer", "number") and isinstance(v, str):
                v = i + 2
            out[k] = v
        elif "enum" in p and p["enum"]:
            out[k] = p["enum"][i % len(p["enum"])]
        elif t in ("integer", "number"):
            out[k] = i + 2
        elif t == "boolean":
            out[k] = True
        elif t == "array":
            out[k] = []
        elif t == "object":
            out[k] = {}
        else:
            out[k] = f"{k}-value-{i + 1}"
    return out


@dataclass
class ReqInfo:
    api: str
    model: str
    stream: bool
    user_text: str = ""
    tool_results: list = field(default_factory=list)
    last_is_tool_result: bool = False
    tools: list = field(default_factory=list)   # [(name, schema)]
    include_usage: bool = False
    body_len: int = 0
    extra: dict = field(default_factory=dict)


@dataclass
class Content:
    text: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: list = field(default_factory=list)   # [{"name", "arguments"(dict)}]
    kind: str = "stop"    # stop | length | tool | refusal | blocked
    input_total: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    output_tokens: int = 0      # including reasoning
    reasoning_tokens: int = 0


def pick_tools(info: ReqInfo, n: int) -> list:
    tools = list(info.tools) or [DEFAULT_TOOL]
    names = [t[0] for t in tools]
    for pref in PREFERRED_TOOL_ORDER:
        if pref in names:
            t = tools[names.index(pref)]
            return [t] * n
    if n > 1 and len(tools) >= n:
        return tools[:n]
    return [tools[0]] * n


def decide(info: ReqInfo, scen: dict) -> Content:
    c = Content()
    q = strip_markers(info.user_text)[:60] or "(empty prompt)"
    want_tools = "tools" in scen or "parallel" in scen
    try:
        steps = int(scen.get("tools") or 1)
    except ValueError:
        steps = 1
    if want_tools and len(info.tool_results) < steps and not info.extra.get("no_tools"):
        n = 2 if "parallel" in scen else 1
        chosen = pick_tools(info, n)
        base = len(info.tool_results)
        for j, (name, schema) in enumerate(chosen):
            c.tool_calls.append({"name": name, "arguments": args_from_schema(name, schema, base + j)})
        if "parallel" in scen:
            c.text = TEXT_PARALLEL_PREAMBLE
        c.kind = "tool"
        if "thinking" in scen:
            c.reasoning = TEXT_REASONING_TOOL
    elif info.last_is_tool_result and info.tool_results:
        r = strip_markers(" ".join(str(x) for x in info.tool_results[-2:]))[:160] or "(empty)"
        c.text = TEXT_FINAL.format(r=r)
    elif "refusal" in scen:
        c.refusal = TEXT_REFUSAL
        c.kind = "refusal"
    elif "blocked" in scen:
        c.kind = "blocked"
    elif "utf8" in scen:
        c.text = TEXT_UTF8
    elif "long" in scen:
        c.text = "".join(TEXT_LONG.format(i=i + 1) for i in range(12)).strip()
    else:
        c.text = TEXT_DEFAULT.format(q=q)
    if "thinking" in scen and not c.reasoning and c.kind not in ("refusal", "blocked"):
        c.reasoning = TEXT_REASONING
    if ("length" in scen or "incomplete" in scen) and c.kind == "stop":
        words = c.text.split(" ")
        c.text = " ".join(words[: max(3, len(words) // 2)])
        c.kind = "length"
    # tokens
    c.input_total = max(8, info.body_len // 4)
    if "cache" in scen:
        c.cache_read = (c.input_total * 6) // 10
        c.cache_creation = (c.input_total * 3) // 10
    c.reasoning_tokens = ceil4(c.reasoning)
    c.output_tokens = (ceil4(c.text) + ceil4(c.refusal) + c.reasoning_tokens
                       + sum(8 + ceil4(json.dumps(t["arguments"])) for t in c.tool_calls))
    if c.kind == "blocked":
        c.output_tokens = 0
    c.output_tokens = max(c.output_tokens, 1 if c.kind != "blocked" else 0)
    return c


def served_model(requested: str, scen: dict, table: dict) -> str:
    m = table.get(requested, requested)
    if "substitute" in scen:
        m = requested.split("-20")[0] + "-mini" if "-mini" not in requested else requested.replace("-mini", "-nano")
    return m


# --------------------------------------------------------------------------------------------------------
# Response plan and truth fold

@dataclass
class Plan:
    status: int
    reason: str
    headers: list                       # [(name, value)] without framing/encoding headers
    api: str
    info: ReqInfo | None = None
    stream: bool = False
    chunks: list = field(default_factory=list)   # [(bytes, ops)] ; non-stream: one element
    chunked: bool = False               # use Transfer-Encoding: chunked even for a non-stream body
    split_utf8: bool = False
    cut: str | None = None              # "fin" | "rst"
    cut_after: int | None = None        # number of chunks sent before the cut
    encoding: str | None = None
    first_delay: float = 0.04
    delay: float = 0.012
    usage_style: str = "inclusive"      # or "additive" / "ollama"
    extra_truth: dict = field(default_factory=dict)


def norm_usage(style: str, input_tokens: int | None, cache_read: int | None = 0, cache_creation: int = 0,
               output_tokens: int | None = None, reasoning_tokens: int | None = None,
               cache_1h: int | None = None, tool_use_prompt: int = 0) -> dict:
    """Normalized token fields as specified in wire-apis.md §2.3.

    ``cache_read`` / ``output_tokens`` are None when the usage object on the wire has no such field:
    "absent counts stay null; usage present with a zero stays 0" (only ``cache_creation_tokens`` is 0
    whenever usage was reported)."""
    if style == "additive":
        total_in = (input_tokens or 0) + (cache_read or 0) + (cache_creation or 0)
    else:
        total_in = (input_tokens or 0) + (tool_use_prompt or 0)
        cache_creation = 0
    return {
        "input_tokens": input_tokens,
        "cache_read_tokens": cache_read,
        "cache_creation_tokens": cache_creation or 0,
        "cache_creation_1h_tokens": cache_1h,
        "input_total_tokens": total_in,
        "output_tokens": output_tokens,
        "reasoning_tokens": reasoning_tokens,
        "total_tokens": total_in + (output_tokens or 0),
    }


FINISH_MAP = {
    "end_turn": "stop", "stop_sequence": "stop", "stop": "stop", "eos": "stop", "STOP": "stop", "completed": "stop",
    "max_tokens": "length", "length": "length", "model_context_window_exceeded": "length", "MAX_TOKENS": "length",
    "incomplete:max_output_tokens": "length",
    "refusal": "content_filter", "content_filter": "content_filter", "SAFETY": "content_filter",
    "RECITATION": "content_filter", "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter", "IMAGE_SAFETY": "content_filter", "incomplete:content_filter": "content_filter",
    "tool_use": "tool_use", "tool_calls": "tool_use", "function_call": "tool_use",
    "MALFORMED_FUNCTION_CALL": "error", "UNEXPECTED_TOOL_CALL": "error",
}


def fold_truth(plan: Plan, sent_chunks: int, cut: str | None) -> dict:
    """Fold the ops of the chunks that were completely sent into the ground-truth record."""
    t: dict = {"text": "", "reasoning": "", "refusal": "", "tool_calls": [], "usage_raw": None, "usage": None,
               "finish_reason_raw": None, "error": None, "complete": False, "model": None, "response_id": None}
    tools: dict = {}
    for data, ops in plan.chunks[:sent_chunks]:
        for op in ops:
            kind = op[0]
            if kind in ("text", "reasoning", "refusal"):
                t[kind] += op[1]
            elif kind == "tool":
                tools[op[1]] = {"id": op[2], "name": op[3], "args": ""}
            elif kind == "args":
                tools[op[1]]["args"] += op[2]
            elif kind == "usage":
                t["usage_raw"], t["usage"] = op[1], op[2]
            elif kind == "finish":
                t["finish_reason_raw"] = op[1]
            elif kind == "complete":
                t["complete"] = True
            elif kind == "error":
                t["error"] = op[1]
            elif kind == "model":
                t["model"] = op[1]
            elif kind == "id":
                t["response_id"] = op[1]
    for idx in sorted(tools):
        tc = tools[idx]
        try:
            args = json.loads(tc["args"]) if tc["args"] else {}
            if not isinstance(args, dict):
                args = {"value": args}
        except ValueError:
            args = {"_unparsed": tc["args"]}
        t["tool_calls"].append({"id": tc["id"], "name": tc["name"], "arguments": args})
    for k in ("text", "reasoning", "refusal"):
        if not t[k]:
            t[k] = None
    if cut:
        t["error"] = {"source": "network", "type": "reset" if cut == "rst" else "closed",
                      "message": "connection cut by mock server"}
        t["complete"] = False
        if plan.api == "openai-responses":
            t["finish_reason_raw"] = "cut"
    # expected normalized finish (wire-apis.md §2.2)
    raw = t["finish_reason_raw"]
    if plan.status >= 400 or (t["error"] and t["error"]["source"] in ("http", "stream")) or \
            (raw or "").startswith("failed"):
        fin = "error"
    elif not t["complete"]:
        fin = "aborted"
    elif t["tool_calls"]:
        fin = "tool_use"
    elif raw is not None and raw.startswith("blocked:"):
        fin = "content_filter"
    elif raw is not None and raw in FINISH_MAP:
        fin = FINISH_MAP[raw]
        if plan.api == "openai-responses" and raw == "completed" and t["text"] is None and t["refusal"] is None:
            fin = "other"
    else:
        fin = "other"
    if fin == "stop" and t["refusal"] and not t["text"]:
        fin = "content_filter"
    t["finish"] = fin
    return t
