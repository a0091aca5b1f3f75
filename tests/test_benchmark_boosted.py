"""The boosted-trees benchmark (boosted.py) runs its three parts end to end on tiny data and
writes every figure it promises.

Only shapes and sane values are checked, never wall-clock figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import positive, run_script

pytestmark = pytest.mark.slow  # a benchmark smoke run

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "boosted.py"
ACCURACY = ["xgb_ordinal", "xgb_onehot", "hgb_all", "hgb_sample", "sgd"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One run of every part: 5% of the flights, 20k and 40k rows, 5 rounds; JSON and stdout."""
    tmp = tmp_path_factory.mktemp("boosted")
    out, data = tmp / "result.json", tmp / "data"
    run = run_script(BENCH, "--rows", "20_000", "40_000", "--speed-rows", "20_000",
                     "--rounds", "5", "--flights-fraction", "0.05", "--data", str(data),
                     "--json", str(out), timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text()), run.stdout, data


def test_accuracy_contenders(tiny_run):
    result, stdout, data = tiny_run
    accuracy = result["accuracy"]
    assert sorted(accuracy["contenders"]) == sorted(ACCURACY)
    assert accuracy["rounds_depth"] == [5, 8] and accuracy["flights_fraction"] == 0.05
    for name, figures in accuracy["contenders"].items():
        assert "error" not in figures, (name, figures)
        for key in ("fit_s", "rows", "peak_rss_mb", "peak_anon_mb"):
            assert positive(figures[key]), (name, key, figures)
        assert 0.5 < figures["roc_auc"] <= 1, (name, figures)
        assert figures["peak_anon_mb"] <= figures["peak_rss_mb"] < 16_000, (name, figures)
        if "evaluate_roc_auc" in figures:  # oocml's own metric agrees with scikit-learn's
            assert abs(figures["evaluate_roc_auc"] - figures["roc_auc"]) < 0.01, (name, figures)
    rows = {name: figures["rows"] for name, figures in accuracy["contenders"].items()}
    assert rows["xgb_ordinal"] == rows["xgb_onehot"] == rows["hgb_all"] == rows["sgd"]
    assert abs(rows["hgb_sample"] - rows["hgb_all"] / 10) <= 1
    folder = Path(accuracy["folder"])
    assert sorted(p.name for p in (folder / "train").iterdir()) == [
        f"part-{i:05d}.parquet" for i in range(8)]
    assert (folder / "test.parquet").is_file() and (folder / "_oocml_bench.json").is_file()
    assert "ROC AUC" in stdout and "oocml xgboost, ordinal (native)" in stdout


def test_memory_per_size(tiny_run):
    result, stdout, _ = tiny_run
    memory = result["memory"]
    assert [r["rows"] for r in memory["runs"]] == [20_000, 40_000]
    assert memory["rounds_depth"] == [5, 6]
    for r in memory["runs"]:
        assert "error" not in r, r
        for key in ("fit_s", "stats_s", "matrix_s", "boost_s", "peak_rss_mb", "peak_anon_mb",
                    "page_cache_mb", "block_cache_mb", "page_bytes_per_row"):
            assert positive(r[key]), (key, r)
        assert r["rounds"] == 5 and len(r["matrix_passes_s"]) == 3
        assert r["matrix_s"] + r["boost_s"] < r["fit_s"]
        assert 10 < r["page_bytes_per_row"] < 200, r  # 20 features of 1-4 bytes and row pointers
    assert memory["fitted_on_rows"] == [20_000, 40_000]
    assert "anon_fixed_mb" in memory and "anon_bytes_per_row" in memory
    assert "page B/row" in stdout and "bytes a row" in stdout


def test_speed_runs(tiny_run):
    result, stdout, data = tiny_run
    speed = result["speed"]
    assert speed["rows"] == 20_000 and len(speed["runs"]) == 2
    for run in speed["runs"]:
        assert "error" not in run, run
        assert positive(run["ratio"])
        assert run["oocml"]["rows"] == run["inmemory"]["rows"] == 20_000
        assert run["oocml"]["rounds"] == run["inmemory"]["rounds"] == 5
        for key in ("fit_s", "matrix_s", "boost_s", "peak_rss_mb", "peak_anon_mb"):
            assert positive(run["oocml"][key]) and positive(run["inmemory"][key]), key
        assert positive(run["inmemory"]["read_s"])
    assert positive(speed["best_ratio"]) and "best oocml / best in-memory" in stdout
    assert (data / "20000x20-1-float64" / "_oocml_bench.json").is_file()  # scaled_sgd.py's layout


def test_machine_and_versions(tiny_run):
    result, stdout, _ = tiny_run
    assert result["machine"]["cpus"] >= 1 and "other_cpu_share" in result["machine"]
    versions = result["versions"]
    for package in ("oocml", "scikit-learn", "pandas", "pyarrow"):
        assert versions[package], package
    assert versions["xgboost-cpu"] or versions["xgboost"]  # either wheel
    assert "other processes used" in stdout


def test_data_is_reused(tiny_run, tmp_path):
    """A second run on the same folder writes nothing: the markers match."""
    _, _, data = tiny_run
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*.parquet")}
    out = tmp_path / "again.json"
    run = run_script(BENCH, "--part", "memory", "--rows", "20_000", "--rounds", "2", "--data",
                     str(data), "--json", str(out), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "generated" not in run.stdout
    assert {p: p.stat().st_mtime_ns for p in data.rglob("*.parquet")} == before
    assert json.loads(out.read_text())["memory"]["runs"][0]["rounds"] == 2


def test_refuses_a_folder_of_foreign_files(tmp_path):
    foreign = tmp_path / "flights-0.05"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not ours")
    run = run_script(BENCH, "--part", "accuracy", "--flights-fraction", "0.05", "--data",
                     str(tmp_path), timeout=300)
    assert run.returncode == 2 and "did not write" in run.stderr
    assert (foreign / "notes.txt").read_text() == "not ours"
