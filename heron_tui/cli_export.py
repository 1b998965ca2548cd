"""``heron export calls|turns|sessions|sft|otlp`` (interfaces.md §6).

Every export shares the same record filters (interfaces.md §6.0), so their options are declared once
here as ``Annotated`` aliases and each command adds only what is its own (``--scope`` for SFT,
``--endpoint`` for OTLP). A bad filter value is a usage error (exit 2); a missing or locked database
an input error (exit 1); the ``exported N, skipped M`` summary goes to stderr so stdout stays JSONL.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from heron_tui.cli import export_app, fail, read_store

DbOpt = Annotated[Path, typer.Option("--db", help="DuckDB file")]
OutOpt = Annotated[Optional[Path], typer.Option("-o", "--output", help="output file (default stdout)")]
SinceOpt = Annotated[Optional[str], typer.Option("--since", help="from this time (ISO 8601 or epoch s)")]
UntilOpt = Annotated[Optional[str], typer.Option("--until", help="before this time (ISO 8601 or epoch s)")]
SourceOpt = Annotated[Optional[str], typer.Option("--source-id")]
AgentOpt = Annotated[Optional[str], typer.Option("--agent-kind")]
SessionOpt = Annotated[Optional[str], typer.Option("--session")]
TurnOpt = Annotated[Optional[str], typer.Option("--turn")]
ModelOpt = Annotated[Optional[str], typer.Option("--model")]
WireApiOpt = Annotated[Optional[str], typer.Option("--wire-api")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="at most this many records")]
TurnStatusOpt = Annotated[Optional[str],
                          typer.Option("--status", help="turn status: complete, incomplete, partial")]


def _filter_kwargs(since, until, source_id, agent_kind, session, turn, model, wire_api, status, limit
                   ) -> dict[str, Any]:
    return dict(since=since, until=until, source_id=source_id, agent_kind=agent_kind, session=session,
                turn=turn, model=model, wire_api=wire_api, status=status, limit=limit)


def _filters(make: Callable[[], Any]) -> Any:
    """Build and check a filter object; a bad value is a usage error (exit 2)."""
    try:
        filters = make()
        check = getattr(filters, "validate", None) or getattr(filters, "where", None)
        if check is not None:
            check()
        return filters
    except ValueError as exc:
        fail("filter", str(exc), 2)


@contextmanager
def _output(path: Optional[Path]) -> Iterator[Any]:
    if path is None:
        yield sys.stdout.buffer
        return
    with open(path, "wb") as fh:
        yield fh


def _export_records(db: Path, output: Optional[Path], filters: Any, export: Callable[..., int]) -> None:
    """Shared body of ``export calls|turns|sessions``: stream JSONL, summary on stderr."""
    with read_store(db) as store, _output(output) as out:
        try:
            n = export(store.conn, out, filters)
        except ValueError as exc:  # a filter value the query could not use (bad time, bad status)
            fail("filter", str(exc), 2)
    typer.echo(f"exported {n}, skipped 0", err=True)


@export_app.command("calls")
def export_calls_cmd(
    db: DbOpt, output: OutOpt = None, since: SinceOpt = None, until: UntilOpt = None,
    source_id: SourceOpt = None, agent_kind: AgentOpt = None, session: SessionOpt = None, turn: TurnOpt = None,
    model: ModelOpt = None, wire_api: WireApiOpt = None,
    status: Annotated[Optional[str], typer.Option("--status", help="HTTP status, e.g. 429 or 5xx")] = None,
    limit: LimitOpt = None,
) -> None:
    """Export LLM calls as JSONL (interfaces.md §6.1)."""
    from heron_core.export.calls import CallFilters, export_calls

    kw = _filter_kwargs(since, until, source_id, agent_kind, session, turn, model, wire_api, status, limit)
    _export_records(db, output, _filters(lambda: CallFilters(**kw)), export_calls)


@export_app.command("turns")
def export_turns_cmd(
    db: DbOpt, output: OutOpt = None, since: SinceOpt = None, until: UntilOpt = None,
    source_id: SourceOpt = None, agent_kind: AgentOpt = None, session: SessionOpt = None, turn: TurnOpt = None,
    model: ModelOpt = None, wire_api: WireApiOpt = None, status: TurnStatusOpt = None, limit: LimitOpt = None,
) -> None:
    """Export turns as JSONL (interfaces.md §6.2)."""
    from heron_core.export.turns import TurnFilters, export_turns

    kw = _filter_kwargs(since, until, source_id, agent_kind, session, turn, model, wire_api, status, limit)
    _export_records(db, output, _filters(lambda: TurnFilters(**kw)), export_turns)


@export_app.command("sessions")
def export_sessions_cmd(
    db: DbOpt, output: OutOpt = None, since: SinceOpt = None, until: UntilOpt = None,
    source_id: SourceOpt = None, agent_kind: AgentOpt = None, session: SessionOpt = None, turn: TurnOpt = None,
    model: ModelOpt = None, wire_api: WireApiOpt = None,
    status: Annotated[Optional[str], typer.Option("--status", help="session state: active, idle")] = None,
    limit: LimitOpt = None,
) -> None:
    """Export sessions as JSONL (interfaces.md §6.3); state is idle for a finished database."""
    from heron_core.export.sessions import SessionFilters, export_sessions

    kw = _filter_kwargs(since, until, source_id, agent_kind, session, turn, model, wire_api, status, limit)
    _export_records(db, output, _filters(lambda: SessionFilters(**kw)), export_sessions)


@export_app.command("sft")
def export_sft_cmd(
    db: DbOpt, output: OutOpt = None, since: SinceOpt = None, until: UntilOpt = None,
    source_id: SourceOpt = None, agent_kind: AgentOpt = None, session: SessionOpt = None, turn: TurnOpt = None,
    model: ModelOpt = None, wire_api: WireApiOpt = None, status: TurnStatusOpt = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="at most this many turns")] = None,
    scope: Annotated[str, typer.Option("--scope", help="turn or session")] = "turn",
    include_incomplete: Annotated[bool, typer.Option("--include-incomplete")] = False,
    include_subagents: Annotated[bool, typer.Option("--include-subagents")] = False,
    report: Annotated[Optional[Path],
                      typer.Option("--report", help="write {turn_id, session_id, reason} of skips")] = None,
) -> None:
    """Export agent trajectories as SFT JSONL (interfaces.md §6.4)."""
    from heron_core.export.calls import CallFilters
    from heron_core.export.sft import SCOPES, export_sft

    if scope not in SCOPES:
        fail("--scope", f"invalid scope {scope!r}: use turn or session", 2)
    kw = _filter_kwargs(since, until, source_id, agent_kind, session, turn, model, wire_api, status, limit)
    filters = _filters(lambda: CallFilters(**kw))
    with read_store(db) as store, _output(output) as out, _output(report) if report else _null() as rep:
        try:
            result = export_sft(store.conn, out, filters=filters, scope=scope,
                                include_incomplete=include_incomplete, include_subagents=include_subagents,
                                report=rep)
        except ValueError as exc:  # a filter value the query could not use (bad time, bad status)
            fail("filter", str(exc), 2)
    typer.echo(result.summary(), err=True)


@contextmanager
def _null() -> Iterator[None]:
    yield None


@export_app.command("otlp")
def export_otlp_cmd(
    db: DbOpt, output: OutOpt = None, since: SinceOpt = None, until: UntilOpt = None,
    source_id: SourceOpt = None, agent_kind: AgentOpt = None, session: SessionOpt = None, turn: TurnOpt = None,
    model: ModelOpt = None, wire_api: WireApiOpt = None,
    status: Annotated[Optional[str], typer.Option(
        "--status", help="turn status: complete, incomplete, partial (turns only)")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="at most this many requests (lines)")] = None,
    content: Annotated[bool, typer.Option(
        "--content", help="add messages and tool arguments/results (redacted)")] = False,
    endpoint: Annotated[Optional[str], typer.Option(
        "--endpoint", help="POST to URL/v1/traces instead of writing JSON lines")] = None,
) -> None:
    """Export turns and calls as OpenTelemetry traces, OTLP/JSON (interfaces.md §6.5)."""
    from heron_core.export.otlp import OtlpFilters, OtlpPostError, export_otlp, post_otlp

    if endpoint is not None and output is not None:
        fail("--endpoint", "give --endpoint URL or -o FILE, not both", 2)
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        fail("--endpoint", f"not an http(s) URL: {endpoint!r}", 2)
    kw = _filter_kwargs(since, until, source_id, agent_kind, session, turn, model, wire_api, status, limit)
    filters = _filters(lambda: OtlpFilters(**kw))
    with read_store(db) as store:
        if endpoint is not None:
            try:
                result = post_otlp(store.conn, endpoint, filters, content=content)
            except OtlpPostError as exc:
                fail("--endpoint", str(exc))
        else:
            with _output(output) as out:
                result = export_otlp(store.conn, out, filters, content=content)
    typer.echo(result.summary(), err=True)
