"""Tool-result linking (agents-and-turns.md §11) and the spawn index used by sub-agent prompt matching (§7).

Every client tool call of a response becomes a ``tool_calls`` row with status ``pending``; the first
later call of the same session and agent that carries a result for its canonical id resolves it. Rows
are inserted once and then changed through ``update_rows`` (a None leaves a column as it is), so the
arguments are never kept in memory: a tool call is remembered by a signature hash, a short preview and,
for long string arguments, their SHA-1 (what a sub-agent's first prompt is compared with).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

from heron_core.config import Config
from heron_core.records import Call, ToolResult
from heron_core.wire.common import canonical_json, clean_text, preview, result_flag_from_output

from .state import Member, SessionState, ToolRec, to_us

TOOL_UPDATE_COLUMNS = (
    "turn_id",
    "result_call_id",
    "result_at",
    "wait_ms",
    "result_status",
    "result_bytes",
    "result_preview",
)
SPAWN_TOOLS = ("Task", "Agent")
RESULT_PREVIEW_CHARS = 300
ARGS_PREVIEW_CHARS = 200

_ERROR_PREFIXES = ("error:", "error ", "exception:", "fatal:", "traceback (most recent call last)")
_ERROR_PARTS = ("<tool_use_error>", "command not found", "no such file or directory", "permission denied")
_EXIT_RE = re.compile(r"exit(ed with)? (code|status):? [1-9]", re.IGNORECASE)


def result_is_error(res: ToolResult) -> bool:
    """§11 error test, best-effort: the wire flag, a JSON ``exit_code``/``metadata.exit_code`` ≠ 0, or the
    text heuristics on the first 2 KiB (case-insensitive). Output that merely quotes an error misfires."""
    if res.is_error_flag:
        return True
    text = res.content_text or ""
    if result_flag_from_output(text):
        return True
    low = text.lower()
    head = low.lstrip()
    if head.startswith(_ERROR_PREFIXES):
        return True
    if any(p in low for p in _ERROR_PARTS):
        return True
    return _EXIT_RE.search(text) is not None


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def first_text_keys(call: Call) -> tuple[tuple[str, int], ...]:
    """``(text_hash, length)`` of each form of the call's first user text that sub-agent prompt matching
    compares (§7): the cleaned text, then the stripped raw text, duplicates dropped.

    The decode worker computes these (``DecodeWorker``) and drops the text itself before the call is
    sent to the main process — an agent's first prompt is tens of KB, and the assembler only needs its
    hash and length. Calls built without a worker (tests) get them computed here from the text."""
    if call.x_first_user_keys is not None:
        return call.x_first_user_keys
    raw = call.x_first_user_text
    if not raw:
        return ()
    out: list[str] = []
    for t in (clean_text(raw), raw.strip()):
        if t and t not in out:
            out.append(t)
    return tuple((text_hash(t), len(t)) for t in out)


def _args_preview(arguments: Any) -> str:
    s = canonical_json(arguments)
    return s if len(s) <= ARGS_PREVIEW_CHARS else s[: ARGS_PREVIEW_CHARS - 1] + "…"


class ToolLinker:
    """Issues tool rows, resolves results, and indexes unresolved tool calls by their string arguments."""

    def __init__(self, cfg: Config, retain_us: int) -> None:
        self.cfg = cfg
        self.retain_us = retain_us
        # source -> text hash -> {(call_id, tool_call_id): rec}; unresolved tool calls only
        self._spawn: dict[str, dict[str, dict[tuple[str, str], ToolRec]]] = {}

    # --- issuing -------------------------------------------------------------------------------------

    def issue(self, call: Call, m: Member, session: SessionState | None) -> list[dict[str, Any]]:
        """Tool rows for ``call``'s response; the records go on the member (and the session's pending
        set when there is a session to resolve them in)."""
        rows: list[dict[str, Any]] = []
        issued_us = to_us(call.response_end) or m.end_us
        for seq, tc in enumerate(call.tool_calls):
            args = tc.arguments if isinstance(tc.arguments, dict) else {}
            canon = canonical_json(args)
            digest = hashlib.sha256(canon.encode("utf-8", "surrogatepass")).hexdigest()[:16]
            spawn = tuple(
                (text_hash(v.strip()), k) for k, v in sorted(args.items()) if isinstance(v, str) and v.strip()
            )
            st = args.get("subagent_type")
            rec = ToolRec(
                call.call_id,
                tc.id,
                call.source_id,
                m.session_id,
                m.subagent,
                m.agent_key,
                seq,
                tc.name,
                f"{tc.name}#{digest}",
                _args_preview(args),
                call.response_end,
                issued_us,
                spawn,
                st.strip() if isinstance(st, str) and st.strip() else None,
            )
            m.tools.append(rec)
            rows.append(
                {
                    "call_id": call.call_id,
                    "tool_call_id": tc.id,
                    "session_id": m.session_id,
                    "subagent": m.subagent,
                    "seq": seq,
                    "name": tc.name,
                    "arguments": args,
                    "args_hash": digest,
                    "issued_at": call.response_end,
                    "result_status": "pending",
                }
            )
            if session is not None:
                session.pending_tools[(m.agent_key, tc.id)] = rec
                idx = self._spawn.setdefault(call.source_id, {})
                for h, _ in spawn:
                    idx.setdefault(h, {})[(rec.call_id, rec.tool_call_id)] = rec
        return rows

    def _forget(self, session: SessionState, rec: ToolRec) -> None:
        session.pending_tools.pop((rec.agent_key, rec.tool_call_id), None)
        idx = self._spawn.get(rec.source_id)
        if idx is None:
            return
        for h, _ in rec.spawn:
            d = idx.get(h)
            if d is not None:
                d.pop((rec.call_id, rec.tool_call_id), None)
                if not d:
                    del idx[h]

    def unspawn(self, rec: ToolRec) -> None:
        """A tool call no longer spawns anything (missing): out of the prompt index, still resolvable."""
        idx = self._spawn.get(rec.source_id)
        for h, _ in rec.spawn if idx is not None else ():
            d = idx.get(h)  # type: ignore[union-attr]
            if d is not None:
                d.pop((rec.call_id, rec.tool_call_id), None)
                if not d:
                    del idx[h]  # type: ignore[union-attr]

    # --- resolving -----------------------------------------------------------------------------------

    def resolve(
        self, call: Call, session: SessionState, agent_key: str, now: float
    ) -> list[tuple[ToolRec, tuple]]:
        """Results carried by ``call`` for tool calls of the same session and agent: ``(rec, update row)``
        for each first occurrence."""
        out: list[tuple[ToolRec, tuple]] = []
        start_us = to_us(call.request_start)
        if start_us is None:
            return out
        for res in call.x_tool_results:
            rec = session.pending_tools.get((agent_key, res.tool_call_id))
            if rec is None or rec.issued_us > start_us or rec.issued_us + self.retain_us < now:
                continue
            err = result_is_error(res)
            rec.status = "error" if err else "ok"
            rec.result_call_id = call.call_id
            rec.result_at = call.request_start
            rec.wait_ms = (
                round((call.request_start - rec.issued_at) * 1000, 3) if rec.issued_at is not None else None
            )
            self._forget(session, rec)
            out.append(
                (
                    rec,
                    (
                        rec.call_id,
                        rec.tool_call_id,
                        rec.turn_id,
                        call.call_id,
                        call.request_start,
                        rec.wait_ms,
                        rec.status,
                        res.bytes,
                        preview(res.content_text, RESULT_PREVIEW_CHARS),
                    ),
                )
            )
        return out

    def expire(self, session: SessionState, now: float) -> Iterator[ToolRec]:
        """Unresolved tool calls older than the retention: forgotten (pending ones become missing)."""
        old = [r for r in session.pending_tools.values() if r.issued_us + self.retain_us < now]
        for rec in old:
            self._forget(session, rec)
            yield rec

    # --- sub-agent spawns (§7) -------------------------------------------------------------------------

    def find_spawn(
        self,
        source_id: str,
        h: str,
        start_us: int,
        *,
        same_session: str | None = None,
        other_than: str | None = None,
    ) -> ToolRec | None:
        """The latest unresolved tool call issued before ``start_us`` with a top-level string argument
        whose ``text_hash`` is ``h``: in ``same_session`` (a ``Task``/``Agent`` ``prompt``, the claude-cli
        rule) or in any session but ``other_than`` (the generic rule)."""
        d = self._spawn.get(source_id, {}).get(h)
        if not d:
            return None
        best: ToolRec | None = None
        for rec in d.values():
            if rec.status != "pending" or rec.issued_us > start_us:
                continue
            if same_session is not None:
                if (
                    rec.session_id != same_session
                    or rec.name not in SPAWN_TOOLS
                    or (h, "prompt") not in rec.spawn
                ):
                    continue
            elif rec.session_id is None or rec.session_id == other_than:
                continue
            if best is None or (rec.issued_us, rec.call_id, rec.seq) > (
                best.issued_us,
                best.call_id,
                best.seq,
            ):
                best = rec
        return best


def spawn_name(rec: ToolRec) -> str:
    """Sub-agent name from its spawning tool call: ``Task:<subagent_type>`` (or ``Agent:…``), else the
    tool's name (``delegate_task``, ``sessions_spawn`` …)."""
    if rec.name in SPAWN_TOOLS and rec.subagent_type:
        return f"{rec.name}:{rec.subagent_type}"
    return rec.name
