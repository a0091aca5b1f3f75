"""The daily-UPDATE benchmark (daily.py) runs end to end on tiny data and prints every table.

Only shapes and sane values are checked, never wall-clock figures, nor whether the targets
are met: at this size the ratios and accuracies say nothing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import load_module, positive, run_script

pytestmark = pytest.mark.slow  # a benchmark smoke run

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "daily.py"
DAYS, ROWS = 4, 2000
PHASES = ["list", "load", "open", "stats", "train", "save", "other"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Both parts on 4 days of 2,000 rows, one cost round, and the drifting accuracy case."""
    tmp = tmp_path_factory.mktemp("daily")
    out, data = tmp / "daily.json", tmp / "data"
    run = run_script(BENCH, "--rows-per-day", str(ROWS), "--accuracy-rows-per-day", str(ROWS),
                     "--test-rows", "1000", "--days", str(DAYS), "--repeat", "1",
                     "--drift", "0.5", "--data", str(data), "--json", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text()), run.stdout, data


def test_prints_both_tables(tiny_run):
    _, stdout, _ = tiny_run
    assert stdout.startswith("load average before the run: ")
    assert "\ncost: one new day of 2,000 rows x 10 float64" in stdout
    assert "round  statement  wall s" in stdout
    assert "round 1 (UPDATE first): UPDATE / TRAIN = " in stdout and "; in CPU time " in stdout
    for case in ("same task every day", "drift 0.5"):
        assert f"\naccuracy ({case}): {DAYS} days of 2,000 rows; held out: 1,000 " in stdout
    assert stdout.count("\npath ") == 2
    assert stdout.count("updates - one TRAIN: ") == 2
    assert f"TRAIN day 1 + {DAYS - 1} x UPDATE ... NEW" in stdout
    assert "other processes used " in stdout


def test_cost_round_times_update_and_fresh_train(tiny_run):
    cost = tiny_run[0]["cost"]
    assert cost["rows_per_day"] == ROWS and cost["days"] == DAYS and len(cost["rounds"]) == 1
    run = cost["rounds"][0]
    assert run["prepare"]["rows_seen"] == (DAYS - 1) * ROWS  # days 1..3, before day 4 appears
    assert run["prepare"]["files"] == DAYS - 1
    update, train = run["UPDATE"], run["TRAIN"]
    assert update["statement"].startswith("UPDATE daily ON '") and update["statement"].endswith(
        "/events' NEW")
    assert train["statement"].startswith("TRAIN sgd ON '") and f"/events/day={DAYS}' " in train[
        "statement"] and train["statement"].endswith("SCALE standard AS fresh")
    for r in (update, train):
        assert "error" not in r, r
        assert r["rows_seen"] == ROWS and r["files"] == 1  # the new day only
        assert positive(r["wall_s"]) and positive(r["cpu_s"]) and list(r["phases"]) == PHASES
        assert all(math.isfinite(v) for v in r["phases"].values())
        assert sum(r["phases"].values()) == pytest.approx(r["wall_s"])
        assert r["baseline_rss_mb"] <= r["fit_peak_rss_mb"] <= r["peak_rss_mb"] < 16_000
    assert update["lineage_steps"] == 2 and train["lineage_steps"] == 1
    assert 0 < update["score"] <= 1 and update["score_kind"] == "progressive"
    assert positive(run["ratio"]) and run["ratio"] == pytest.approx(
        update["wall_s"] / train["wall_s"])
    assert run["within"] == (run["ratio"] <= 1.2)
    assert positive(run["cpu_ratio"]) and positive(cost["best_ratio"])
    assert cost["geometric_mean_ratio"] == pytest.approx(run["ratio"])  # one round
    assert run["first"] == "UPDATE"  # round 1; every other round starts with TRAIN
    assert cost["best_ratio"] == pytest.approx(update["wall_s"] / train["wall_s"])  # one round


@pytest.mark.parametrize("case", ["same", "drift"])
def test_accuracy_of_successive_updates_against_one_train(tiny_run, case):
    result = tiny_run[0]["accuracy"][case]
    assert result["drift"] == (0.5 if case == "drift" else 0.0)
    updates, once = result["updates"], result["once"]
    assert "error" not in updates and "error" not in once, (updates, once)
    assert [s["day"] for s in updates["steps"]] == list(range(1, DAYS + 1))
    assert all(s["rows_seen"] == ROWS and s["files"] == 1 for s in updates["steps"])
    assert updates["versions"] == DAYS  # one TRAIN and DAYS - 1 updates in the lineage
    assert once["rows_seen"] == DAYS * ROWS
    for r in (updates, once):
        assert 0.5 < r["accuracy"] <= 1 and positive(r["seconds"]) and positive(r["peak_rss_mb"])
    assert result["difference"] == pytest.approx(updates["accuracy"] - once["accuracy"], abs=1e-4)
    if case == "drift":  # printed without a target
        assert result["target"] is None and result["within"] is None
    else:
        assert result["within"] == (abs(result["difference"]) <= 0.005)
    assert once["in_day_order"]  # the same stream of days as the updates


def test_days_on_disk_and_reused(tiny_run):
    _, _, data = tiny_run
    bench = load_module(BENCH, "daily_benchmark")
    folder = bench.ensure_days(data, ROWS, 10, DAYS, 1, 0)
    assert sorted(p.name for p in (folder / "days").iterdir()) == [
        f"day={k}" for k in range(1, DAYS + 1)]
    assert not list(folder.glob("_work-*"))  # each round's work folder is removed
    marker = folder / "_oocml_bench.json"
    before = marker.stat().st_mtime_ns
    assert bench.ensure_days(data, ROWS, 10, DAYS, 1, 0) == folder
    assert marker.stat().st_mtime_ns == before


def test_machine_and_versions(tiny_run):
    result = tiny_run[0]
    assert result["machine"]["cpus"] >= 1 and "other_cpu_share" in result["machine"]
    assert len(result["machine"]["load_averages_at_start"]) == 3
    for package in ("oocml", "dask", "scikit-learn", "pandas", "pyarrow"):
        assert result["versions"][package], package
    assert "oocml_git" in result["versions"]


def test_refuses_a_folder_it_did_not_write(tmp_path):
    foreign = tmp_path / f"daily-{ROWS}x10-{DAYS}d-1f" / "days"
    foreign.mkdir(parents=True)
    (foreign / "mine.parquet").write_bytes(b"not ours")
    run = run_script(BENCH, "--part", "cost", "--rows-per-day", str(ROWS), "--days", str(DAYS),
                     "--data", str(tmp_path))
    assert run.returncode == 2 and "did not write" in run.stderr
    assert (foreign / "mine.parquet").read_bytes() == b"not ours"
