"""The scaled-SGD benchmark (scaled_sgd.py) runs end to end on tiny data and writes every figure it promises.

Only shapes and sane values are checked, never wall-clock figures.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from helpers import load_module, positive, run_script

pytestmark = pytest.mark.slow  # a benchmark smoke run

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "scaled_sgd.py"
HAS_DASKML = importlib.util.find_spec("dask_ml") is not None
CONTENDERS = ["oocml", "oocml_parallel", "oocml_checkpoint"] + (["daskml"] if HAS_DASKML else [])


def bench(*args: str, env: dict | None = None):
    """Run the benchmark script in a fresh interpreter."""
    return run_script(BENCH, *args, timeout=900, env=env)


def load_bench_module():
    """The benchmark script imported as a module, for its helpers."""
    return load_module(BENCH, "scaled_sgd_benchmark")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One benchmark run on 20k rows in 4 files: its JSON, stdout and data folder."""
    tmp = tmp_path_factory.mktemp("bench")
    out, data = tmp / "result.json", tmp / "data"
    args = ["--rows", "20_000", "--files", "4", "--features", "5", "--data", str(data),
            "--json", str(out)]
    if not HAS_DASKML:
        args += ["--only", "oocml", "oocml_parallel", "oocml_checkpoint"]
    run = bench(*args)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text()), run.stdout, data


def test_contenders_report_every_figure(tiny_run):
    result, _, _ = tiny_run
    assert sorted(result["contenders"]) == sorted(CONTENDERS)
    for name in CONTENDERS:
        figures = result["contenders"][name]
        assert "error" not in figures, figures
        for key in ("fit_s", "predict_score_s", "peak_rss_mb", "baseline_rss_mb",
                    "fit_peak_rss_mb"):
            assert positive(figures[key]), (name, key, figures)
        assert 0.8 < figures["accuracy"] <= 1, (name, figures)
        assert (figures["baseline_rss_mb"] <= figures["fit_peak_rss_mb"]
                <= figures["peak_rss_mb"] < 16_000), (name, figures)
        if name != "daskml":
            assert positive(figures["predict_into_s"]) and figures["coef_dtype"] == "float64"
        assert len(figures["runs"]) == 1


def test_oocml_reports_its_passes(tiny_run):
    info = tiny_run[0]["contenders"]["oocml"]["info"]
    assert info.get("rows", 20_000) == 20_000
    for key in ("stats_seconds", "train_seconds"):
        if key in info:
            assert info[key] >= 0


def test_ceilings_machine_and_versions(tiny_run):
    result, _, _ = tiny_run
    assert positive(result["ceilings"]["read_rows_per_s_one_core"])
    assert positive(result["ceilings"]["partial_fit_rows_per_s"])
    assert positive(result["ceilings"]["partial_fit_file_blocks_rows_per_s"])
    assert positive(result["comparisons"]["predict_into_rows_per_s"])
    assert "PREDICT ... INTO parquet" in tiny_run[1]
    assert result["data"] == {"rows": 20_000, "files": 4, "features": 5, "dtype": "float64",
                              "folder": result["data"]["folder"]}
    assert result["machine"]["cpus"] >= 1
    for package in ("oocml", "dask", "scikit-learn", "pandas", "pyarrow"):
        assert result["versions"][package], package
    assert "oocml_git" in result["versions"]


@pytest.mark.skipif(not HAS_DASKML, reason="dask-ml is not installed")
def test_comparisons_with_daskml(tiny_run):
    result, stdout, _ = tiny_run
    c = result["comparisons"]
    assert positive(c["fit_ratio_daskml_over_oocml"])
    assert positive(c["predict_score_ratio_daskml_over_oocml"])
    assert abs(c["accuracy_difference_oocml_minus_daskml"]) < 0.05
    assert positive(c["daskml_fit_over_partial_fit_ceiling"])
    assert "dask-ml / oocml: fit" in stdout and "pyarrow read" in stdout


def test_parallel_against_sequential(tiny_run):
    result, stdout, _ = tiny_run
    c = result["comparisons"]
    assert positive(c["parallel_fit_speedup"]) and positive(c["parallel_train_speedup"])
    assert abs(c["accuracy_difference_parallel_minus_sequential"]) < 0.05
    assert result["contenders"]["oocml_parallel"]["info"]["workers"] >= 1
    assert "PARALLEL (strategy='average'" in stdout
    assert c["checkpoint_every_partition_overhead"] > -1 and "checkpoint after every" in stdout
    checkpointed = result["contenders"]["oocml_checkpoint"]
    assert checkpointed["accuracy"] == result["contenders"]["oocml"]["accuracy"]  # same model


def test_on_a_local_cluster(tiny_run, tmp_path):
    _, _, data = tiny_run
    out = tmp_path / "cluster.json"
    run = bench("--rows", "20_000", "--files", "4", "--features", "5", "--data", str(data),
                "--only", "oocml", "oocml_parallel", "--cluster", "2", "--json", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["cluster_workers"] == 2
    assert result["contenders"]["oocml_parallel"]["info"]["workers"] == 2  # the cluster's threads
    local = tiny_run[0]["contenders"]["oocml"]["accuracy"]
    assert result["contenders"]["oocml"]["accuracy"] == local  # same model on the cluster


def test_scaling_table(tmp_path):
    out = tmp_path / "scaling.json"
    run = bench("--scaling", "10_000", "20_000", "--features", "5", "--only", "oocml",
                "--data", str(tmp_path / "data"), "--json", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(out.read_text())["scaling"]
    assert [(r["rows"], r["files"], r["contender"]) for r in rows] == [
        (10_000, 1, "oocml"), (20_000, 1, "oocml")]
    for r in rows:
        assert positive(r["fit_s"]) and positive(r["fit_peak_rss_mb"]) and r["accuracy"] > 0.8
    assert "fit peak MB" in run.stdout and "20,000" in run.stdout


def test_data_folder_holds_parquet_and_a_reusable_marker(tiny_run):
    _, stdout, data = tiny_run
    names = sorted(p.name for p in data.iterdir())
    assert names == ["_oocml_bench.json"] + [f"part-{i:05d}.parquet" for i in range(4)]
    bench = load_bench_module()
    assert bench.ensure_data(data, 20_000, 4, 5, "float64") is False  # same shape: reused
    assert "page cache" in stdout


def test_refuses_a_folder_of_foreign_parquet(tmp_path):
    (tmp_path / "mine.parquet").write_bytes(b"not ours")
    run = bench("--rows", "1000", "--files", "1", "--only", "oocml", "--data", str(tmp_path))
    assert run.returncode == 2 and "did not write" in run.stderr
    assert (tmp_path / "mine.parquet").read_bytes() == b"not ours"


def test_missing_daskml_is_a_one_line_error(tmp_path):
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "dask_ml.py").write_text('raise ImportError("hidden by the test")\n')
    path = os.pathsep.join(filter(None, [str(stub), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    run = bench("--rows", "1000", "--files", "1", "--data", str(tmp_path / "data"), env=env)
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1 and "--only oocml" in run.stderr
    assert not (tmp_path / "data").exists()
