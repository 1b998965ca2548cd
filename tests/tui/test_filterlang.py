"""The display-filter language: parsing, SQL generation, errors with positions, help and completion,
and every documented example executed on every entity of a real store."""

from __future__ import annotations

import pytest

from heron_core.query import filterlang as fl
from heron_core.query.filterlang import FilterError, compile_filter, parse

EXAMPLES = ["agent == claude-cli && ttft > 2s", 'model ~ "sonnet" || status >= 500', "tool == Bash",
            "insight", "cost > 0.10"]


def sql(text: str, entity: str = "calls") -> fl.Compiled:
    c = compile_filter(text, entity)
    assert c is not None
    return c


@pytest.mark.parametrize("text", EXAMPLES + list(fl.EXAMPLES))
def test_examples_parse(text):
    assert isinstance(parse(text), fl.Node)


def test_values_are_parameters_never_sql():
    c = sql("text ~ \"'; DROP TABLE calls; --\"")
    assert "DROP" not in c.sql
    assert c.params == ("'; DROP TABLE calls; --",)


def test_duration_money_and_number_units():
    assert sql("ttft > 2s").params == (2000.0,)
    assert sql("ttft > 500ms").params == (500.0,)
    assert sql("duration > 1.5m", "turns").params == (90000.0,)
    assert sql("e2e < 1h").params == (3.6e6,)
    assert sql("cost > 0.10").params == (0.1,)
    assert sql("cost > $0.10").params == (0.1,)
    assert sql("tokens >= 10k").params == (10000.0,)
    assert sql("tokens >= 1.5M").params == (1.5e6,)


def test_operator_precedence_and_grouping():
    n = parse("a1 || b1 && c1".replace("a1", "ok").replace("b1", "stream").replace("c1", "damaged"))
    assert isinstance(n, fl.BoolOp) and n.op == "OR"
    assert isinstance(n.items[1], fl.BoolOp) and n.items[1].op == "AND"
    n = parse("(ok || stream) && !damaged")
    assert n.op == "AND" and isinstance(n.items[1], fl.Not)
    n = parse("not ok and stream or damaged")
    assert n.op == "OR"


def test_words_and_aliases():
    assert sql("agent_kind == generic").sql == sql("agent == generic").sql
    assert sql("model = x").sql == sql("model == x").sql  # a single = is accepted
    assert "regexp_matches" in sql("model ~ sonnet").sql
    assert "ILIKE" in sql("model == claude*").sql and sql("model == claude*").params == ("claude%",)


def test_entity_columns_and_relations():
    assert "turns.first_response_ms" in sql("ttft > 1s", "turns").sql  # native on turns
    assert "calls.ttft_ms" in sql("ttft > 1s", "calls").sql
    # a call field used on turns: any member call
    t = sql("status >= 500", "turns").sql
    assert "turns.turn_id IN (SELECT c.turn_id FROM calls c" in t
    # status: numbers are HTTP, words are the turn status
    assert "turns.status" in sql("status == incomplete", "turns").sql
    assert "calls.turn_id IN (SELECT t.turn_id FROM turns t" in sql("status == incomplete", "calls").sql
    # list columns use any-element tests
    assert "list_filter(turns.tool_names" in sql("tool == Bash", "turns").sql
    assert "json_extract_string(calls.tool_calls" in sql("tool == Bash", "calls").sql
    assert sql("insight", "turns").sql == "coalesce(turns.insight_count, 0) > 0"
    assert "calls.call_id IN (SELECT unnest(i.call_ids) FROM insights i" in sql("insight", "calls").sql


@pytest.mark.parametrize("text,pos,needle", [
    ("agent ==", 8, "expected a value"),
    ("agnt == x", 0, "did you mean 'agent'"),
    ("ttft > fast", 7, "duration"),
    ("(ok", 3, "missing ')'"),
    ("model > 3", 6, "does not apply"),
    ("agent == a b", 11, "missing && or ||"),
    ("text ~ '('", 7, "bad regex"),
    ('text ~ "abc', 7, "unterminated"),
    ("ok == maybe", 6, "true or false"),
    ("status > incomplete", 9, "HTTP status number"),
    ("", 0, "empty"),
    ("ok &&", 5, "expected a field name"),
])
def test_errors_have_positions(text, pos, needle):
    with pytest.raises(FilterError) as info:
        parse(text)
    assert needle in info.value.message
    assert info.value.pos == pos
    assert info.value.end >= info.value.pos


def test_empty_filter_compiles_to_none():
    assert compile_filter("", "turns") is None
    assert compile_filter("   ", "calls") is None
    with pytest.raises(ValueError):
        compile_filter("ok", "nope")


def test_help_is_generated_from_the_fields():
    text = fl.help_text()
    for f in fl.FIELDS:
        assert f.name in text and f.help in text
    for e in EXAMPLES:
        assert e in text
    assert "500ms" in text and "$0.10" in text  # units come from the field classes


def test_completions():
    assert fl.completions("ag") == ("ag", ["agent"])
    assert fl.completions("agent == cl") == ("cl", ["claude-cli"])
    prefix, cands = fl.completions("model ~ x && tt")
    assert prefix == "tt" and cands == ["ttft"]
    assert fl.completions("model ~ so")[1] == []  # no value hints for models
    assert "insight" in fl.completions("(")[1]


@pytest.mark.parametrize("entity", fl.ENTITIES)
@pytest.mark.parametrize("text", EXAMPLES + list(fl.EXAMPLES) + [
    "!(status >= 500)", "!insight && !(tool == bash)", "error", "error ~ overloaded", "subagent",
    "severity == warning", "text ~ parser", "answer ~ done", "model == claude*", "requested ~ gpt",
    "turns > 2", "calls >= 3", "tools > 0", "retry > 1", "auxiliary == false", "source == bench"])
def test_every_filter_runs_on_every_entity(synth_store, entity, text):
    c = sql(text, entity)
    n = synth_store.conn.cursor().execute(f"SELECT count(*) FROM {entity} WHERE {c.sql}", list(c.params)).fetchone()[0]
    assert n >= 0


def test_results_match_a_python_reading(synth_store):
    cur = synth_store.conn.cursor()
    rows = cur.execute("SELECT agent_kind, ttft_ms, status_code, model, cost_usd, tool_calls FROM calls").fetchall()

    def count(text):
        c = sql(text, "calls")
        return cur.execute(f"SELECT count(*) FROM calls WHERE {c.sql}", list(c.params)).fetchone()[0]

    assert count("agent == claude-cli && ttft > 2s") == sum(
        1 for a, t, *_ in rows if a == "claude-cli" and t is not None and t > 2000)
    assert count('model ~ "sonnet" || status >= 500') == sum(
        1 for _, _, s, m, *_ in rows if "sonnet" in m or s >= 500)
    assert count("cost > 0.10") == sum(1 for r in rows if r[4] is not None and r[4] > 0.1)
    assert count("tool == Bash") == sum(1 for r in rows if '"name":"Bash"' in r[5])
    assert count("!(tool == Bash)") == len(rows) - count("tool == Bash")
    # turns: a turn has an insight; sessions: via insights
    t = sql("insight", "turns")
    assert cur.execute(f"SELECT count(*) FROM turns WHERE {t.sql}").fetchone()[0] == \
        cur.execute("SELECT count(DISTINCT turn_id) FROM insights").fetchone()[0]


def test_negation_is_two_valued_through_relations(synth_store):
    """NOT over an IN subquery must not turn NULLs into 'no row' (calls without a turn exist)."""
    cur = synth_store.conn.cursor()
    total = cur.execute("SELECT count(*) FROM turns").fetchone()[0]
    a, b = sql("status >= 500", "turns"), sql("!(status >= 500)", "turns")
    na = cur.execute(f"SELECT count(*) FROM turns WHERE {a.sql}", list(a.params)).fetchone()[0]
    nb = cur.execute(f"SELECT count(*) FROM turns WHERE {b.sql}", list(b.params)).fetchone()[0]
    assert na + nb == total and na > 0
