"""The display-filter language of the TUI (and the REST API): a small Wireshark-like expression language
compiled to a parameterized DuckDB ``WHERE`` clause.

    agent == claude-cli && ttft > 2s        model ~ "sonnet" || status >= 500
    tool == Bash                            insight                      cost > 0.10

Grammar (``and``/``or``/``not`` work as words too)::

    expr    := or
    or      := and (("||" | "or") and)*
    and     := not (("&&" | "and") not)*
    not     := ("!" | "not") not | primary
    primary := "(" expr ")" | FIELD [OP VALUE]          # a bare FIELD is a truthy test
    OP      := == | != | > | >= | < | <= | ~ | !~       # ~ is a case-insensitive regex (a substring works)

Fields are small classes (``TextField``, ``DurationField``, ``MoneyField`` …) that parse their own values
(``2s``, ``500ms``, ``$0.10``, ``10k``), generate their SQL and their help text, so the help shown by
``?`` can never drift from what the compiler accepts. A field names its column per *entity* (``calls``,
``turns``, ``sessions``, ``insights``); used on an entity that lacks the column, the test is lifted
through a relation — a turn matches ``status >= 500`` when any of its calls does. Values always travel as
parameters, never as SQL text. The module imports nothing from the UI.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

ENTITIES = ("calls", "turns", "sessions", "insights")

# How one entity reaches another: (alias, SQL with ``{q}`` = outer qualifier and ``{pred}`` = the test on
# the alias). Uncorrelated ``IN`` subqueries, because DuckDB turns them into one hash semi-join where a
# correlated ``list_contains`` would rescan; ``IS NOT NULL`` and ``coalesce`` keep ``!`` two-valued.
RELATIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("calls", "turns"): ("t", "{q}.turn_id IN (SELECT t.turn_id FROM turns t WHERE {pred})"),
    ("calls", "sessions"): ("s", "{q}.session_id IN (SELECT s.session_id FROM sessions s WHERE {pred})"),
    ("calls", "insights"): ("i", "{q}.call_id IN (SELECT unnest(i.call_ids) FROM insights i WHERE {pred})"),
    ("turns", "calls"): ("c", ("{q}.turn_id IN (SELECT c.turn_id FROM calls c WHERE c.turn_id IS NOT NULL "
                               "AND {pred})")),
    ("turns", "sessions"): ("s", "{q}.session_id IN (SELECT s.session_id FROM sessions s WHERE {pred})"),
    ("turns", "insights"): ("i", ("{q}.turn_id IN (SELECT i.turn_id FROM insights i WHERE i.turn_id IS NOT NULL "
                                  "AND {pred})")),
    ("sessions", "calls"): ("c", ("{q}.session_id IN (SELECT c.session_id FROM calls c "
                                  "WHERE c.session_id IS NOT NULL AND {pred})")),
    ("sessions", "turns"): ("t", "{q}.session_id IN (SELECT t.session_id FROM turns t WHERE {pred})"),
    ("sessions", "insights"): ("i", ("{q}.session_id IN (SELECT i.session_id FROM insights i "
                                     "WHERE i.session_id IS NOT NULL AND {pred})")),
    ("insights", "calls"): ("c", ("{q}.insight_id IN (SELECT x.insight_id FROM (SELECT insight_id, unnest(call_ids) "
                                  "AS cid FROM insights) x JOIN calls c ON c.call_id = x.cid WHERE {pred})")),
    ("insights", "turns"): ("t", "{q}.turn_id IN (SELECT t.turn_id FROM turns t WHERE {pred})"),
    ("insights", "sessions"): ("s", "{q}.session_id IN (SELECT s.session_id FROM sessions s WHERE {pred})"),
}

COMPARISONS = ("==", "!=", ">=", "<=", ">", "<", "~", "!~")
_SQL_OP = {"==": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


class FilterError(ValueError):
    """A filter that cannot be used; ``pos``/``end`` locate the culprit in the text (for the UI's caret)."""

    def __init__(self, message: str, pos: int = 0, end: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.end = end if end is not None else pos + 1


@dataclass(frozen=True, slots=True)
class Compiled:
    """A WHERE predicate and its parameters, ready for ``conn.execute(f"... WHERE {sql}", params)``."""

    sql: str
    params: tuple[Any, ...] = ()

    def and_(self, other: Compiled | None) -> Compiled:
        if other is None:
            return self
        return Compiled(f"({self.sql}) AND ({other.sql})", self.params + other.params)


TRUE = Compiled("TRUE")


# --- fields -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Col:
    """A field's column on one entity: an SQL template over ``{q}`` and whether it is a ``VARCHAR[]``
    (then a comparison means "any element matches")."""

    sql: str
    is_list: bool = False
    truthy: str | None = None  # overrides the type's default truthy test


@dataclass(frozen=True)
class Field:
    """Base field: a name, aliases, one-line help, and its column per entity (first = home entity)."""

    name: str
    help: str
    cols: Mapping[str, Col]
    aliases: tuple[str, ...] = ()
    values: tuple[str, ...] = ()  # completion hints
    kind: ClassVar[str] = "value"
    ops: ClassVar[tuple[str, ...]] = ("==", "!=")
    unit_help: ClassVar[str] = ""

    def parse_value(self, op: str, raw: str, quoted: bool) -> Any:
        return raw

    def columns(self, value: Any) -> Mapping[str, Col]:
        return self.cols

    def compare(self, expr: str, op: str, value: Any, is_list: bool) -> tuple[str, list[Any]]:
        return f"{expr} {_SQL_OP[op]} ?", [value]

    def truthy(self, col: Col, expr: str) -> tuple[str, list[Any]]:
        if col.truthy:
            return col.truthy.replace("{e}", expr), []
        if col.is_list:
            return f"coalesce(len({expr}), 0) > 0", []
        return f"{expr} IS NOT NULL", []

    def help_line(self, width: int = 24) -> str:
        names = " | ".join((self.name,) + self.aliases)
        return f"{names:<{width}} {self.kind:<9} {self.help}"


@dataclass(frozen=True)
class TextField(Field):
    kind = "text"
    ops = ("==", "!=", "~", "!~")
    unit_help = "== and != ignore case and accept * as a wildcard; ~ is a case-insensitive regex"

    def parse_value(self, op: str, raw: str, quoted: bool) -> Any:
        if op in ("~", "!~"):
            try:
                re.compile(raw)
            except re.error as exc:
                raise ValueError(f"bad regex {raw!r}: {exc}") from None
        return raw

    def compare(self, expr: str, op: str, value: Any, is_list: bool) -> tuple[str, list[Any]]:
        target = "hv" if is_list else expr
        if op in ("~", "!~"):
            sql = f"coalesce(regexp_matches({target}, ?, 'i'), false)"
        elif "*" in value:
            value = value.replace("%", r"\%").replace("_", r"\_").replace("*", "%")
            sql = f"coalesce({target} ILIKE ? ESCAPE '\\', false)"
        else:
            sql = f"coalesce(lower({target}) = lower(?), false)"
        if is_list:  # any element: list_filter is ~10x faster than EXISTS over unnest in DuckDB
            sql = f"(len(list_filter({expr}, lambda hv: {sql})) > 0)"
        if op in ("!=", "!~"):
            sql = f"NOT {sql}"
        return sql, [value]

    def truthy(self, col: Col, expr: str) -> tuple[str, list[Any]]:
        if col.truthy or col.is_list:
            return super().truthy(col, expr)
        return f"coalesce({expr}, '') <> ''", []


_NUM_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))\s*([a-zA-Z$%]*)$")


@dataclass(frozen=True)
class NumberField(Field):
    kind = "number"
    ops = ("==", "!=", ">", ">=", "<", "<=")
    unit_help = "numbers accept k and M (10k = 10000)"
    _units: Mapping[str, float] = field(default_factory=lambda: {"": 1, "k": 1e3, "m": 1e6})

    def parse_value(self, op: str, raw: str, quoted: bool) -> Any:
        text = raw.strip()
        prefix = ""
        if text.startswith("$"):
            prefix, text = "$", text[1:]
        m = _NUM_RE.match(text)
        unit = m.group(2).lower() if m else None
        if prefix == "$" and unit == "":
            unit = "$"
        if m is None or unit not in self._units:
            raise ValueError(f"{self.name} needs {self.value_hint()}, not {raw!r}")
        return float(m.group(1)) * self._units[unit]

    def value_hint(self) -> str:
        return "a number like 1200 or 10k"

    def compare(self, expr: str, op: str, value: Any, is_list: bool) -> tuple[str, list[Any]]:
        if op == "!=":
            return f"{expr} IS DISTINCT FROM ?", [value]
        return f"coalesce({expr} {_SQL_OP[op]} ?, false)", [value]

    def truthy(self, col: Col, expr: str) -> tuple[str, list[Any]]:
        if col.truthy:
            return super().truthy(col, expr)
        return f"coalesce({expr}, 0) > 0", []


@dataclass(frozen=True)
class DurationField(NumberField):
    kind = "duration"
    unit_help = "durations: 500ms, 2s, 1.5m, 1h (a bare number is milliseconds)"
    _units: Mapping[str, float] = field(
        default_factory=lambda: {"": 1, "ms": 1, "s": 1e3, "sec": 1e3, "m": 6e4, "min": 6e4, "h": 3.6e6}
    )

    def value_hint(self) -> str:
        return "a duration like 500ms, 2s or 1.5m"


@dataclass(frozen=True)
class MoneyField(NumberField):
    kind = "money"
    unit_help = "money in USD: 0.10 or $0.10"
    _units: Mapping[str, float] = field(default_factory=lambda: {"": 1, "$": 1, "usd": 1})

    def value_hint(self) -> str:
        return "an amount in USD like 0.10 or $0.10"


_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


@dataclass(frozen=True)
class BoolField(Field):
    kind = "bool"
    unit_help = "booleans: true/false (yes/no); a bare name means true"

    def parse_value(self, op: str, raw: str, quoted: bool) -> Any:
        try:
            return _BOOLS[raw.lower()]
        except KeyError:
            raise ValueError(f"{self.name} is true or false, not {raw!r}") from None

    def compare(self, expr: str, op: str, value: Any, is_list: bool) -> tuple[str, list[Any]]:
        sql = f"coalesce({expr}, false) = ?"
        return (f"NOT ({sql})" if op == "!=" else sql), [value]

    def truthy(self, col: Col, expr: str) -> tuple[str, list[Any]]:
        if col.truthy:
            return super().truthy(col, expr)
        return f"coalesce({expr}, false)", []


_TURN_STATUSES = ("complete", "incomplete", "partial", "in_progress")


@dataclass(frozen=True)
class StatusField(NumberField):
    """HTTP status for numbers (``status >= 500``), turn status for words (``status == incomplete``):
    both readings are what a user typing ``status`` in that view means, and they cannot be confused."""

    kind = "status"
    ops = ("==", "!=", ">", ">=", "<", "<=", "~", "!~")
    unit_help = "status: a number is the HTTP status, a word the turn status"
    turn_cols: Mapping[str, Col] = field(default_factory=dict)

    def parse_value(self, op: str, raw: str, quoted: bool) -> Any:
        if re.fullmatch(r"\d+", raw.strip()):
            if op in ("~", "!~"):
                raise ValueError("use ==, >=, … with an HTTP status")
            return int(raw)
        if op not in ("==", "!=", "~", "!~"):
            raise ValueError(f"{op} needs an HTTP status number, not {raw!r}")
        return raw

    def columns(self, value: Any) -> Mapping[str, Col]:
        return self.cols if isinstance(value, int) or value is None else self.turn_cols

    def compare(self, expr: str, op: str, value: Any, is_list: bool) -> tuple[str, list[Any]]:
        if isinstance(value, int):
            return super().compare(expr, op, value, is_list)
        return TextField.compare(self, expr, op, value, is_list)  # type: ignore[arg-type]


def _c(**cols: str | Col) -> dict[str, Col]:
    return {k: v if isinstance(v, Col) else Col(v) for k, v in cols.items()}


_CALL_ERR = "(coalesce({e}.status_code, 0) >= 400 OR {e}.finish IN ('error', 'aborted'))"
_TURN_ERR = "({e}.error IS NOT NULL OR {e}.finish IN ('error', 'aborted'))"
_AGENTS = ("claude-cli", "codex-cli", "gemini-cli", "opencode", "openclaw", "hermes", "generic")
_FINISH = ("stop", "length", "tool_use", "content_filter", "error", "aborted")
_WIRE = ("anthropic", "openai-chat", "openai-responses", "gemini", "ollama", "openai-completions")
_INSIGHTS = ("planner_loop", "retry_storm", "model_substitution", "rate_limit_pressure", "stalled_tool",
             "context_growth")

FIELDS: tuple[Field, ...] = (
    TextField("agent", "agent profile (claude-cli, codex-cli, generic, …)",
              _c(calls="{q}.agent_kind", turns="{q}.agent_kind", sessions="{q}.agent_kind"),
              ("agent_kind",), _AGENTS),
    TextField("model", "served model (turns, sessions: any model used)",
              _c(calls="{q}.model", turns=Col("{q}.models", True), sessions=Col("{q}.models", True))),
    TextField("requested", "model named in the request", _c(calls="{q}.model_requested"), ("model_requested",)),
    TextField("wire", "wire API", _c(calls="{q}.wire_api", turns="{q}.wire_api"), ("api", "wire_api"), _WIRE),
    TextField("provider", "provider from the host (openai, anthropic, …)", _c(calls="{q}.provider")),
    TextField("server", "server ip:port", _c(calls="{q}.server", turns="{q}.server", sessions="{q}.server"),
              ("service",)),
    TextField("host", "Host header", _c(calls="{q}.host")),
    TextField("path", "HTTP path", _c(calls="{q}.path")),
    TextField("method", "HTTP method", _c(calls="{q}.method")),
    TextField("client", "client IP", _c(calls="{q}.client_ip", turns="{q}.client_ip", sessions="{q}.client_ip"),
              ("client_ip",)),
    TextField("process", "process name (eBPF)", _c(calls="{q}.process_comm"), ("comm",)),
    NumberField("pid", "process id (eBPF)", _c(calls="{q}.process_pid"), ("process_pid",)),
    TextField("exe", "process executable path (eBPF)", _c(calls="{q}.process_exe"), ("process_exe",)),
    TextField("source", "capture source id", _c(calls="{q}.source_id", turns="{q}.source_id",
                                                sessions="{q}.source_id", insights="{q}.source_id"),
              ("source_id",)),
    TextField("session", "session id", _c(calls="{q}.session_id", turns="{q}.session_id",
                                          sessions="{q}.session_id", insights="{q}.session_id"),
              ("session_id",)),
    TextField("turn", "turn id", _c(calls="{q}.turn_id", turns="{q}.turn_id", insights="{q}.turn_id"), ("turn_id",)),
    TextField("call", "call id", _c(calls="{q}.call_id"), ("call_id", "id")),
    StatusField("status", "HTTP status (calls) or turn status: complete, incomplete, partial",
                _c(calls="{q}.status_code"), values=_TURN_STATUSES,
                turn_cols=_c(turns="{q}.status")),
    TextField("finish", "normalized finish (stop, length, tool_use, error, aborted, …)",
              _c(calls="{q}.finish", turns="{q}.finish"), values=_FINISH),
    BoolField("ok", "2xx and not error/aborted", _c(calls="{q}.ok")),
    TextField("error", "errored (bare); or match the error JSON text",
              _c(calls=Col("CAST({q}.error AS VARCHAR)", truthy=_CALL_ERR.replace("{e}", "{q}")),
                 turns=Col("CAST({q}.error AS VARCHAR)", truthy=_TURN_ERR.replace("{e}", "{q}")))),
    BoolField("stream", "streamed response", _c(calls="{q}.is_stream"), ("is_stream",)),
    BoolField("auxiliary", "auxiliary call (titles, summaries, …)", _c(calls="{q}.is_auxiliary"), ("aux",)),
    BoolField("damaged", "damaged exchange (gap, truncated)", _c(calls="{q}.damaged")),
    TextField("subagent", "sub-agent name", _c(calls="{q}.subagent", turns=Col("{q}.subagents", True),
                                               sessions=Col("{q}.subagents", True))),
    TextField("tool", "a tool call with this name",
              _c(calls=Col("json_extract_string({q}.tool_calls, '$[*].name')", True),
                 turns=Col("{q}.tool_names", True))),
    NumberField("tools", "number of tool calls", _c(calls="{q}.tool_call_count", turns="{q}.tool_call_count",
                                                    sessions="{q}.tool_call_count")),
    NumberField("tool_errors", "tool results that were errors",
                _c(turns="{q}.tool_error_count", sessions="{q}.tool_error_count")),
    TextField("insight", "has an insight (bare), or one of this kind", _c(
        insights="{q}.kind", turns=Col("{q}.insight_kinds", True, truthy="coalesce({q}.insight_count, 0) > 0")),
        ("kind",), _INSIGHTS),
    TextField("severity", "insight severity (info, warning, critical)", _c(insights="{q}.severity"),
              values=("info", "warning", "critical")),
    TextField("summary", "insight summary text", _c(insights="{q}.summary")),
    DurationField("ttft", "time to first token (turns: of the opening call)",
                  _c(calls="{q}.ttft_ms", turns="{q}.first_response_ms")),
    DurationField("e2e", "call end-to-end latency", _c(calls="{q}.e2e_ms"), ("latency",)),
    DurationField("tpot", "time per output token", _c(calls="{q}.tpot_ms")),
    DurationField("duration", "call e2e, turn or session duration",
                  _c(calls="{q}.e2e_ms", turns="{q}.duration_ms",
                     sessions="(({q}.last_end - {q}.first_start) * 1000)")),
    NumberField("tokens", "total tokens", _c(calls="{q}.total_tokens", turns="{q}.total_tokens",
                                             sessions="{q}.total_tokens")),
    NumberField("input", "input tokens incl. cache", _c(calls="{q}.input_total_tokens",
                                                        turns="{q}.input_total_tokens",
                                                        sessions="{q}.input_total_tokens"), ("tokens_in",)),
    NumberField("output", "output tokens", _c(calls="{q}.output_tokens", turns="{q}.output_tokens",
                                              sessions="{q}.output_tokens"), ("tokens_out",)),
    NumberField("cache_read", "cache-read tokens", _c(calls="{q}.cache_read_tokens", turns="{q}.cache_read_tokens",
                                                      sessions="{q}.cache_read_tokens")),
    NumberField("reasoning", "reasoning tokens", _c(calls="{q}.reasoning_tokens", turns="{q}.reasoning_tokens",
                                                    sessions="{q}.reasoning_tokens")),
    MoneyField("cost", "cost in USD", _c(calls="{q}.cost_usd", turns="{q}.cost_usd", sessions="{q}.cost_usd")),
    NumberField("calls", "member calls", _c(turns="{q}.call_count", sessions="{q}.call_count")),
    NumberField("turns", "turns in the session", _c(sessions="{q}.turn_count")),
    NumberField("attempt", "retry attempt (1 = first); turns: retries", _c(calls="{q}.attempt",
                                                                           turns="{q}.retry_count"), ("retry",)),
    TextField("text", "user input preview", _c(calls="{q}.input_preview", turns="{q}.user_input_preview",
                                               sessions="{q}.first_user_input_preview"), ("input_text", "prompt")),
    TextField("answer", "output / final answer preview",
              _c(calls="{q}.output_preview", turns="{q}.final_answer_preview"), ("output_text",)),
)

_BY_NAME: dict[str, Field] = {n: f for f in FIELDS for n in (f.name,) + f.aliases}


def field_names() -> list[str]:
    """Primary field names, for completion."""
    return [f.name for f in FIELDS]


def get_field(name: str) -> Field | None:
    return _BY_NAME.get(name.lower())


# --- lexer ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # 'word' | 'string' | 'op' | '(' | ')' | 'eof'
    text: str
    pos: int
    end: int


_OPS = ("&&", "||", "==", "!=", ">=", "<=", "!~", "=", ">", "<", "~", "!", "&", "|")
_WORD_RE = re.compile(r"[^\s()&|!=<>~\"']+")


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append(Token(ch, ch, i, i + 1))
            i += 1
        elif ch in "\"'":
            j, buf = i + 1, []
            while j < n and text[j] != ch:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise FilterError("unterminated string", i, n)
            out.append(Token("string", "".join(buf), i, j + 1))
            i = j + 1
        else:
            for op in _OPS:
                if text.startswith(op, i):
                    norm = {"=": "==", "&": "&&", "|": "||"}.get(op, op)
                    out.append(Token("op", norm, i, i + len(op)))
                    i += len(op)
                    break
            else:
                m = _WORD_RE.match(text, i)
                assert m is not None  # any other character starts a word
                out.append(Token("word", m.group(), i, m.end()))
                i = m.end()
    out.append(Token("eof", "", n, n))
    return out


# --- AST and parser ---------------------------------------------------------------------------------


class Node:
    def to_sql(self, entity: str) -> Compiled:  # pragma: no cover - abstract
        raise NotImplementedError

    def fields(self) -> Iterator[Field]:
        return iter(())


@dataclass
class BoolOp(Node):
    op: str  # 'AND' | 'OR'
    items: list[Node]

    def to_sql(self, entity: str) -> Compiled:
        parts = [i.to_sql(entity) for i in self.items]
        return Compiled(f" {self.op} ".join(f"({p.sql})" for p in parts), tuple(x for p in parts for x in p.params))

    def fields(self) -> Iterator[Field]:
        for i in self.items:
            yield from i.fields()


@dataclass
class Not(Node):
    item: Node

    def to_sql(self, entity: str) -> Compiled:
        c = self.item.to_sql(entity)
        return Compiled(f"NOT ({c.sql})", c.params)

    def fields(self) -> Iterator[Field]:
        return self.item.fields()


@dataclass
class Test(Node):
    """``field op value``, or a truthy test when ``op`` is None."""

    field: Field
    op: str | None = None
    value: Any = None

    def fields(self) -> Iterator[Field]:
        yield self.field

    def to_sql(self, entity: str) -> Compiled:
        cols = self.field.columns(self.value)
        if entity in cols:
            return self._native(cols[entity], entity)
        for home in cols:
            rel = RELATIONS.get((entity, home))
            if rel:
                alias, template = rel
                inner = self._native(cols[home], alias)
                sql = template.replace("{q}", entity).replace("{pred}", f"({inner.sql})")
                return Compiled(f"coalesce({sql}, false)", inner.params)
        raise FilterError(f"{self.field.name} cannot be used on {entity}")

    def _native(self, col: Col, qualifier: str) -> Compiled:
        expr = col.sql.replace("{q}", qualifier)
        if self.op is None:
            sql, params = self.field.truthy(Col(expr, col.is_list, col.truthy and col.truthy.replace("{q}",
                                                                                                    qualifier)), expr)
        else:
            sql, params = self.field.compare(expr, self.op, self.value, col.is_list)
        return Compiled(sql, tuple(params))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def take(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.lower() in words

    def parse(self) -> Node:
        node = self.parse_or()
        if self.tok.kind != "eof":
            t = self.tok
            hint = " (missing && or ||?)" if t.kind in ("word", "(") else ""
            raise FilterError(f"unexpected {t.text!r}{hint}", t.pos, t.end)
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while (self.tok.kind == "op" and self.tok.text == "||") or self.is_word("or"):
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else BoolOp("OR", items)

    def parse_and(self) -> Node:
        items = [self.parse_not()]
        while (self.tok.kind == "op" and self.tok.text == "&&") or self.is_word("and"):
            self.take()
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else BoolOp("AND", items)

    def parse_not(self) -> Node:
        if (self.tok.kind == "op" and self.tok.text == "!") or self.is_word("not"):
            self.take()
            return Not(self.parse_not())
        return self.parse_primary()

    def parse_primary(self) -> Node:
        t = self.take()
        if t.kind == "(":
            node = self.parse_or()
            if self.tok.kind != ")":
                raise FilterError("missing ')'", self.tok.pos, self.tok.end)
            self.take()
            return node
        if t.kind == "eof":
            raise FilterError("expected a field name" if self.i > 1 else "empty filter", t.pos, t.end)
        if t.kind != "word":
            raise FilterError(f"expected a field name, found {t.text!r}", t.pos, t.end)
        fld = get_field(t.text)
        if fld is None:
            close = difflib.get_close_matches(t.text.lower(), list(_BY_NAME), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "; press ? for the list"
            raise FilterError(f"unknown field {t.text!r}{hint}", t.pos, t.end)
        if not (self.tok.kind == "op" and self.tok.text in COMPARISONS):
            return Test(fld)
        op_tok = self.take()
        if op_tok.text not in fld.ops:
            raise FilterError(f"{op_tok.text} does not apply to {fld.name} ({fld.kind}); use "
                              + " ".join(fld.ops), op_tok.pos, op_tok.end)
        v = self.take()
        if v.kind not in ("word", "string"):
            raise FilterError(f"expected a value after {op_tok.text}", v.pos, v.end)
        try:
            value = fld.parse_value(op_tok.text, v.text, v.kind == "string")
        except ValueError as exc:
            raise FilterError(str(exc), v.pos, v.end) from None
        return Test(fld, op_tok.text, value)


def parse(text: str) -> Node:
    """Parse a filter; raises ``FilterError`` with the position of the problem."""
    if not text.strip():
        raise FilterError("empty filter", 0, 0)
    return _Parser(text).parse()


def compile_filter(text: str | None, entity: str) -> Compiled | None:
    """Compile ``text`` to a predicate over ``entity`` (``calls``, ``turns``, ``sessions`` or
    ``insights``); None for an empty filter. Raises ``FilterError``."""
    if entity not in ENTITIES:
        raise ValueError(f"unknown entity {entity!r}")
    if text is None or not text.strip():
        return None
    return parse(text).to_sql(entity)


# --- help and completion ----------------------------------------------------------------------------

EXAMPLES = (
    "agent == claude-cli && ttft > 2s",
    'model ~ "sonnet" || status >= 500',
    "tool == Bash",
    "insight",
    "cost > 0.10",
    "!(finish == stop) && duration > 1m",
)


def help_text() -> str:
    """Plain-text help: syntax, value units, then one line per field (generated from ``FIELDS``)."""
    lines = [
        "Display filter: FIELD OP VALUE, joined with && || ! and parentheses (and/or/not work too).",
        "OP: == != > >= < <= ~ (regex, case-insensitive; a substring works) !~ ; a bare FIELD is a truthy test.",
        "Quote values with spaces: text ~ \"fix the bug\".  A view without the field matches when a related",
        "row does: in Turns, status >= 500 means any call of the turn.",
    ]
    seen = []
    for f in FIELDS:
        if f.unit_help and f.unit_help not in seen:
            seen.append(f.unit_help)
    lines += ["", "Values:"] + [f"  {u}" for u in seen]
    width = max(len(" | ".join((f.name,) + f.aliases)) for f in FIELDS)
    lines += ["", "Fields:"] + [f"  {f.help_line(width)}" for f in FIELDS]
    lines += ["", "Examples:"] + [f"  {e}" for e in EXAMPLES]
    return "\n".join(lines)


_FIELD_POS_RE = re.compile(r"(?:^|&&|\|\||[(!&|]|\b(?:and|or|not)\s)\s*([A-Za-z_][\w.]*)?$", re.IGNORECASE)
_VALUE_POS_RE = re.compile(r"([A-Za-z_][\w.]*)\s*(==|!=|=|~)\s*([^\s()&|!=<>~\"']*)$")


def completions(text_before_cursor: str) -> tuple[str, list[str]]:
    """``(prefix, candidates)`` for the word being typed: field names where a field is expected, known
    values after ``field ==``. Candidates are whole words that start with ``prefix``."""
    m = _VALUE_POS_RE.search(text_before_cursor)
    if m:
        fld = get_field(m.group(1))
        prefix = m.group(3)
        if fld is not None and fld.values:
            return prefix, [v for v in fld.values if v.startswith(prefix.lower()) and v != prefix]
        return prefix, []
    m = _FIELD_POS_RE.search(text_before_cursor)
    if m:
        prefix = m.group(1) or ""
        return prefix, [n for n in field_names() if n.startswith(prefix.lower()) and n != prefix]
    return "", []
