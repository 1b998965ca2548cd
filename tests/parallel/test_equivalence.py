"""``--workers 0, 1, 2, 4`` give the same records: same ids, same rows in every table, same counters.

The single-process engine is the reference; the parallel engine splits flows over worker processes
and merges their output through the watermark merger, so any dependence on arrival order, on which
worker saw what, or on lost/duplicated messages shows up here as a row difference. Every testdata
capture and every synth scenario is checked.
"""

from __future__ import annotations

import difflib

import pytest

from testdata.synth.__main__ import main as synth_main

from .helpers import CAPTURES, ROOT, VOLATILE_COUNTERS, run_engine

WORKERS = (1, 2, 4)
SCENARIOS = ("clean_mix", "faults_mix", "linktypes", "agent_sessions")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, list[str]]:
    tmp = tmp_path_factory.mktemp("synth")
    groups = {"captures": CAPTURES}
    for name in SCENARIOS:
        out = tmp / f"{name}.pcap"
        assert synth_main(["scenario", name, "-o", str(out), "--seed", "7"]) == 0
        files = sorted(str(p) for p in tmp.glob(f"{name}*.pcap"))
        assert files, name
        groups[name] = files
    return groups


def _diff(a: list[str], b: list[str]) -> str:
    return "\n".join(list(difflib.unified_diff(a, b, "workers=0", "parallel", lineterm="", n=0))[:20])


@pytest.mark.parametrize("group", ["captures", *SCENARIOS])
def test_same_output_for_every_worker_count(inputs, group):
    paths = inputs[group]
    ref, ref_counters, ref_result = run_engine(paths, 0)
    assert ref["calls"], f"{group}: the reference run found no calls"
    for n in WORKERS:
        got, counters, result = run_engine(paths, n)
        for table in ref:
            assert got[table] == ref[table], f"{group} workers={n} table {table}:\n{_diff(ref[table], got[table])}"
        assert [(f.path, f.source_id, f.status, f.packets) for f in result.files] == \
            [(f.path, f.source_id, f.status, f.packets) for f in ref_result.files]
        keys = (set(ref_counters) | set(counters)) - VOLATILE_COUNTERS
        diff = {k: (ref_counters.get(k, 0), counters.get(k, 0)) for k in keys
                if ref_counters.get(k, 0) != counters.get(k, 0)}
        assert not diff, f"{group} workers={n}: counters differ (workers=0, parallel): {diff}"


def test_failed_file_is_reported_like_single_process(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture file at all")
    paths = [str(bad), CAPTURES[0]]
    _ref, _c0, r0 = run_engine(paths, 0)
    _got, _c1, r1 = run_engine(paths, 2)
    assert [(f.status, f.error) for f in r1.files] == [(f.status, f.error) for f in r0.files]
    assert r1.failed and r1.files[0].status == "failed" and r1.files[1].status == "ok"


def test_root_is_repository():
    assert (ROOT / "heron_core").is_dir()
