"""The peers benchmark runs end to end on tiny data: every installed contender at every epoch
count reports sane figures; a peer that is not installed is skipped, not an error.

Only shapes and sane values are checked, never wall-clock figures.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from helpers import positive, run_script

pytestmark = pytest.mark.slow  # a benchmark smoke run

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "peers.py"
MODULES = {"oocml": "oocml", "oocml_ordered": "oocml", "daskml": "dask_ml", "river": "river",
           "vw": "vowpalwabbit"}
INSTALLED = [name for name, module in MODULES.items() if importlib.util.find_spec(module)]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One run on 40k rows in 4 files (30k to train, 10k held out), 1 and 2 epochs."""
    out = tmp_path_factory.mktemp("peers") / "peers.json"
    run = run_script(BENCH, "--rows", "40_000", "--files", "4", "--epochs", "1", "2",
                     "--json", str(out), "--markdown")
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text()), run.stdout


@pytest.mark.parametrize("name", list(MODULES))
def test_contender_reports_sane_figures(tiny_run, name):
    if name not in INSTALLED:
        pytest.skip(f"{MODULES[name]} is not installed")
    result, _ = tiny_run
    runs = [r for r in result["results"] if r["contender"] == name]
    assert [r["epochs"] for r in runs] == [1, 2]
    for r in runs:
        assert "error" not in r, r
        for key in ("fit_s", "rows_per_s", "peak_mb", "fit_peak_mb"):
            assert positive(r[key]), (name, key, r)
        assert r["fit_peak_mb"] <= r["peak_mb"] < 16_000, r
        assert 0.6 < r["accuracy"] <= 1, r
        assert r["rows_per_s"] == pytest.approx(30_000 * r["epochs"] / r["fit_s"])
        if name == "vw":
            assert 0 < r["convert_s"] <= r["fit_s"], r


def test_shape_skips_and_tables(tiny_run):
    result, stdout = tiny_run
    assert (result["rows"], result["train_rows"], result["holdout_rows"]) == (40_000, 30_000, 10_000)
    assert sorted(result["skipped"]) == sorted(set(MODULES) - set(INSTALLED))
    assert result["versions"]["oocml"] and "oocml_git" in result["versions"]
    assert "holdout accuracy" in stdout
    assert "| contender | epochs | fit s |" in stdout  # the markdown version
    for name in result["skipped"]:
        assert "skipped" in stdout, name


def test_a_peer_that_does_not_import_is_skipped_with_one_line(tmp_path):
    shadow = tmp_path / "shadow" / "vowpalwabbit"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no VW here')\n")
    out = tmp_path / "peers.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(shadow.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
    run = run_script(BENCH, "--rows", "20_000", "--files", "2", "--epochs", "1", "--only", "oocml",
                     "vw", "--json", str(out), env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert list(result["skipped"]) == ["vw"] and "no VW here" in result["skipped"]["vw"]
    assert [r["contender"] for r in result["results"]] == ["oocml"]
    assert sum("skipped" in line for line in run.stdout.splitlines()) == 1
