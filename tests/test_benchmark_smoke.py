"""The benchmark runs end to end on tiny data and writes every figure it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "seed.py"


def test_seed_benchmark_on_tiny_data(tmp_path):
    out = tmp_path / "result.json"
    run = subprocess.run([sys.executable, str(BENCH), "--rows", "40_000", "--files", "4",
                          "--features", "5", "--data", str(tmp_path / "data"), "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    for name in ("oocml", "daskml"):
        figures = result["contenders"][name]
        assert set(figures) >= {"fit_s", "predict_score_s", "accuracy", "peak_rss_mb"}, figures
        assert 0.8 < figures["accuracy"] <= 1 and figures["peak_rss_mb"] > 0
    assert abs(result["ratios"]["accuracy_difference"]) < 0.05
    assert result["contenders"]["oocml"]["passes"] == 2
    assert result["ceilings"]["partial_fit_rows_per_s"] > 0
    assert "fit" in run.stdout and "faster" in run.stdout
    assert sorted(p.suffix for p in (tmp_path / "data").iterdir()) == [".parquet"] * 4
