"""The rules benchmark runs end to end on tiny sizes and reports every rule it promises.

Only shapes and sane values are checked, never wall-clock figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import positive, run_script

pytestmark = pytest.mark.slow  # a benchmark smoke run

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "rules.py"
RULES = {
    "block size": "oocml/blocks.py: BLOCK_BYTES",
    "gathering rows": "oocml/blocks.py: apply_rows",
    "gathering rows, oocml's batch": "oocml/blocks.py: apply_rows",
    "scaling rows in one pass": "oocml/blocks.py: standardized_rows",
    "confusion counts, 2 classes": "oocml/metrics.py: confusion_counts",
    "confusion counts, 5 classes": "oocml/metrics.py: confusion_counts",
    "column labels": "oocml/partitions.py: frame.columns = pd.Index(..., dtype=object)",
    "finiteness checks": "oocml/engine/stream.py: finiteness_checks",
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One ``--quick`` run: its JSON and stdout."""
    out = tmp_path_factory.mktemp("rules") / "rules.json"
    run = run_script(BENCH, "--quick", "--json", str(out), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text()), run.stdout


def test_every_rule_has_positive_timings(quick_run):
    result, _ = quick_run
    rules = {r["rule"]: r for r in result["rules"]}
    assert list(rules) == list(RULES)
    for name, code in RULES.items():
        r = rules[name]
        assert r["code"] == code
        assert positive(r["ours_s"]) and positive(r["alternative_s"]), r
        assert r["ratio"] == pytest.approx(r["alternative_s"] / r["ours_s"])


def test_both_sides_compute_the_same_numbers(quick_run):
    rules = {r["rule"]: r for r in quick_run[0]["rules"]}
    for name in ("gathering rows", "gathering rows, oocml's batch", "scaling rows in one pass",
                 "confusion counts, 2 classes",
                 "confusion counts, 5 classes"):
        assert rules[name]["same_numbers"] is True, name
    assert positive(rules["gathering rows"]["alternative_c_ordered_s"])


def test_notes_machine_and_versions(quick_run):
    result, stdout = quick_run
    rules = {r["rule"]: r for r in result["rules"]}
    assert rules["column labels"]["to_pandas_column_dtype"]
    assert rules["finiteness checks"]["checks_share_of_pass"] < 1  # of the checked pass
    assert result["quick"] is True and result["repeat"] >= 1
    assert result["machine"]["cpus"] >= 1 and len(result["machine"]["load_average"]) == 3
    for package in ("oocml", "numpy", "pandas", "pyarrow", "scikit-learn"):
        assert result["versions"][package], package
    assert "oocml_git" in result["versions"]
    assert "| rule | ours ms | alternative ms | ratio |" in stdout
    for name in RULES:
        assert f"| {name} |" in stdout
