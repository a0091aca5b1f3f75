"""The layouts benchmark runs end to end on tiny data: every layout (local S3 server included)
is written, fitted in a child and reported with the same rows.

Only shapes and sane values are checked, never wall-clock figures.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from helpers import load_module, positive, run_script

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "layouts.py"
LAYOUTS = ["files20", "one_rowgroup", "rowgroups_1m", "csv", "csv_gz", "s3"]
ROWS, FEATURES = 40_000, 4

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("moto", "s3fs")),
    reason="the s3 layout needs moto[server] and s3fs")]  # a benchmark smoke run


def bench(*args: str):
    """Run the benchmark script in a fresh interpreter."""
    return run_script(BENCH, *args, timeout=600)


def load_bench_module():
    """The benchmark script imported as a module, for its helpers."""
    return load_module(BENCH, "layouts_benchmark")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One benchmark run of every layout on 40k rows x 4 features: its JSON, stdout and folder."""
    tmp = tmp_path_factory.mktemp("layouts")
    out, data = tmp / "result.json", tmp / "data"
    run = bench("--rows", f"{ROWS:_}", "--features", str(FEATURES), "--data", str(data),
                "--json", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text()), run.stdout, data


def test_every_layout_reports_every_figure_on_the_same_rows(tiny_run):
    result, stdout, _ = tiny_run
    twins = {"csv": "csv CACHE OFF", "csv_gz": "csv_gz CACHE OFF"}  # text parsed by every pass
    assert list(result["layouts"]) == [n for layout in LAYOUTS
                                       for n in (layout, twins.get(layout)) if n]
    for name, figures in result["layouts"].items():
        assert "error" not in figures, (name, figures)
        for key in ("fit_s", "rows_per_s", "stats_seconds", "train_seconds", "fit_peak_rss_mb",
                    "peak_rss_mb", "baseline_rss_mb", "fit_over_files20", "bytes"):
            assert positive(figures[key]), (name, key, figures)
        assert figures["rows"] == ROWS, (name, figures)
        assert 0.8 < figures["accuracy"] <= 1, (name, figures)
        assert figures["fit_peak_rss_mb"] <= figures["peak_rss_mb"] < 16_000, (name, figures)
        assert len(figures["runs"]) == 1
        assert f"| {name} |" in stdout
    assert result["layouts"]["files20"]["fit_over_files20"] == 1
    for name, twin in twins.items():  # the same rows, the same model, parsed once or not
        layouts = result["layouts"]
        assert layouts[name]["accuracy"] == layouts[twin]["accuracy"]
        assert layouts[name]["info"]["passes"] == 1 and layouts[twin]["info"]["passes"] == 2
        assert positive(layouts[name]["parse_once_speedup"])
        assert f"{name}: parsed once, the fit is" in stdout
    assert "| layout |" in stdout and "vs 20 files" in stdout


def test_layouts_hold_what_their_names_say(tiny_run):
    layouts = tiny_run[0]["layouts"]
    assert layouts["files20"]["files"] == 20 and layouts["files20"]["row_groups"] == 20
    assert layouts["one_rowgroup"]["files"] == 1 and layouts["one_rowgroup"]["row_groups"] == 1
    assert layouts["rowgroups_1m"]["row_groups"] == 1  # 40k rows: one group of at most 1M
    assert layouts["csv_gz"]["bytes"] < layouts["csv"]["bytes"]
    assert layouts["s3"]["source"].startswith("s3://")
    assert layouts["csv_gz"]["source"].endswith(".csv.gz")
    # The same objects in the same partitions as the local files: the same model.
    assert layouts["s3"]["accuracy"] == pytest.approx(layouts["files20"]["accuracy"], abs=1e-12)


def test_every_layout_holds_the_same_rows_in_order(tiny_run):
    import pandas as pd
    import pyarrow.parquet as pq

    _, _, data = tiny_run
    layouts = load_bench_module()
    anchor = pq.read_table(layouts.layout_path(data, "files20")).to_pandas()
    for name in ("one_rowgroup", "rowgroups_1m"):
        frame = pq.read_table(layouts.layout_path(data, name)).to_pandas()
        pd.testing.assert_frame_equal(frame, anchor, check_exact=True)
    for name in ("csv", "csv_gz"):
        frame = pd.read_csv(layouts.layout_path(data, name))
        pd.testing.assert_frame_equal(frame, anchor, check_exact=True)


def test_machine_versions_and_a_reusable_folder(tiny_run):
    result, stdout, data = tiny_run
    assert result["data"]["rows"] == ROWS and result["data"]["features"] == FEATURES
    assert result["machine"]["cpus"] >= 1 and "other_cpu_share" in result["machine"]
    for package in ("oocml", "dask", "pandas", "pyarrow"):
        assert result["versions"][package], package
    assert "wrote layout csv_gz" in stdout and "page cache" in stdout
    layouts = load_bench_module()
    files = sorted(p for p in data.rglob("*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in files}
    layouts.ensure_layouts(data, ROWS, FEATURES, LAYOUTS, owned=False)  # same shape: reused
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert json.loads((data / layouts.MARKER).read_text())["layouts"] == sorted(
        n for n in LAYOUTS if n != "s3")


def test_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine.csv").write_text("a,b\n1,2\n")
    run = bench("--rows", "1000", "--only", "files20", "--data", str(tmp_path))
    assert run.returncode == 2 and "did not write" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.csv"]
