"""End-to-end accuracy: the engine's exported calls against ground truth, field by field.

Two kinds of truth (tests/e2e/accuracy.py explains the matching and the fields):

* testdata/captures: real SDK/CLI traffic answered by the mock LLM server, with the mock's truth files.
  They are clean loopback captures, so every call must be found and every asserted field must be right.
* testdata/synth scenarios generated here with fixed seeds. clean_mix, agent_sessions and every link-type
  variant are clean: 100 %. faults_mix carries reordering, retransmits, drops, snaplen cuts, RSTs, missing
  responses and a cut file: the product bar there is 97 % per field (interfaces/README acceptance bar).

The thresholds are deliberately the product's, so these tests fail as soon as accuracy regresses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.accuracy import Report, evaluate, format_report, match_calls, run_engine, score
from tests.e2e.expectations import load_expectations

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "testdata" / "captures"
MOCK_CAPTURES = sorted(p.stem for p in CAPTURES.glob("*.pcap"))
LINK_KINDS = ("ethernet", "vlan", "qinq", "mpls", "sll", "sll2", "null", "raw")
SEED = 1

CLEAN_BAR = 1.0
FAULT_BAR = 0.97  # "≥ 97 % with faults": damaged exchanges can't be exact for every field


def _synth(out_dir: Path, scenario: str, stem: str, seed: int = SEED, *extra: str, ext: str = ".pcap") -> None:
    pcap, truth = out_dir / f"{stem}{ext}", out_dir / f"{stem}.truth.jsonl"
    subprocess.run(
        [sys.executable, "-m", "testdata.synth", "scenario", scenario, "-o", str(pcap), "--truth", str(truth),
         "--seed", str(seed), *extra],
        cwd=ROOT, check=True, capture_output=True,
    )


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("synth")
    _synth(d, "clean_mix", "clean")
    _synth(d, "faults_mix", "faults")
    _synth(d, "agent_sessions", "agents")
    _synth(d, "linktypes", "lt")  # writes lt-<kind>.pcap / lt-<kind>.truth.jsonl
    _synth(d, "clean_mix", "clean-ng", 2, "--ns", ext=".pcapng")  # pcapng reader, ns timestamps
    return d


def assert_bar(rep: Report, bar: float, title: str) -> None:
    assert rep.calls_expected > 0, f"{title}: the truth lists no calls"
    text = format_report(rep, title)
    assert rep.calls_found / rep.calls_expected >= bar, text
    low = {f: rep.accuracy(f) for f in rep.field_names() if rep.accuracy(f) < bar}
    assert not low, f"fields under {bar:.1%}: {low}\n{text}"
    assert not rep.unexpected, f"calls no truth record accounts for\n{text}"


# --- (a) mock-server captures ------------------------------------------------------------------------


def test_mock_truth_files_carry_the_spec_corrections() -> None:
    """The committed truth files were corrected where the mock contradicted the spec (see the script);
    a regenerated capture or a reverted file must not bring the old expectations back unnoticed."""
    r = subprocess.run([sys.executable, "testdata/correct_mock_truth.py", "--check"], cwd=ROOT,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", MOCK_CAPTURES)
def test_mock_capture_is_exact(name: str) -> None:
    rep = evaluate(CAPTURES / f"{name}.pcap", CAPTURES / f"{name}.truth.jsonl")
    assert_bar(rep, CLEAN_BAR, name)


# --- (b) synthesized captures ------------------------------------------------------------------------


@pytest.mark.parametrize("stem", ["clean", "agents"])
def test_clean_synth_is_exact(synth_dir: Path, stem: str) -> None:
    rep = evaluate(synth_dir / f"{stem}.pcap", synth_dir / f"{stem}.truth.jsonl")
    assert_bar(rep, CLEAN_BAR, stem)


def test_pcapng_nanosecond_capture_is_exact(synth_dir: Path) -> None:
    rep = evaluate(synth_dir / "clean-ng.pcapng", synth_dir / "clean-ng.truth.jsonl")
    assert_bar(rep, CLEAN_BAR, "clean_mix pcapng --ns")


@pytest.mark.parametrize("kind", LINK_KINDS)
def test_every_link_type_is_exact(synth_dir: Path, kind: str) -> None:
    rep = evaluate(synth_dir / f"lt-{kind}.pcap", synth_dir / f"lt-{kind}.truth.jsonl")
    assert_bar(rep, CLEAN_BAR, f"linktypes {kind}")


def test_faults_mix_meets_the_fault_bar(synth_dir: Path) -> None:
    rep = evaluate(synth_dir / "faults.pcap", synth_dir / "faults.truth.jsonl")
    assert_bar(rep, FAULT_BAR, "faults_mix")


def test_faults_mix_undamaged_calls_are_exact(synth_dir: Path) -> None:
    """Within a faulted capture, the exchanges truth fully asserts (complete, undamaged — benign faults
    like reordering, retransmits and duplicates only) must still be exact."""
    truth = synth_dir / "faults.truth.jsonl"
    exps = [e for e, rec in zip(load_expectations(truth), _records(truth)) if rec["asserted"]]
    pairs, _ = match_calls(exps, run_engine(synth_dir / "faults.pcap"))
    rep = score(pairs, [])
    assert_bar(rep, CLEAN_BAR, "faults_mix (asserted records)")


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- the harness itself can fail ----------------------------------------------------------------------


def test_harness_reports_a_wrong_field_and_a_missing_call(synth_dir: Path, tmp_path: Path) -> None:
    recs = _records(synth_dir / "lt-ethernet.truth.jsonl")
    recs[0]["model_requested"] = "not-the-model"
    recs[1]["client_port"] = 1  # no such connection: the call cannot be found
    bad = tmp_path / "bad.truth.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in recs))
    rep = evaluate(synth_dir / "lt-ethernet.pcap", bad)
    fields = {(m.field, m.expected) for m in rep.mismatches}
    assert ("model_requested", "not-the-model") in fields
    assert ("found", True) in fields
    assert rep.calls_found == rep.calls_expected - 1
    # the call the bogus record no longer claims is now unaccounted for
    assert len(rep.unexpected) == 1


def test_parallel_engine_is_as_accurate(synth_dir: Path) -> None:
    """README.md §1 rule 1: any worker count gives the same records, so the same accuracy."""
    rep = evaluate(synth_dir / "faults.pcap", synth_dir / "faults.truth.jsonl", workers=2)
    assert_bar(rep, FAULT_BAR, "faults_mix --workers 2")
    single = evaluate(synth_dir / "faults.pcap", synth_dir / "faults.truth.jsonl")
    assert rep.mismatches == single.mismatches, format_report(rep, "faults_mix --workers 2")
