"""The VALIDATE benchmark (validate.py) runs end to end on tiny data: its table and ratios print
and are finite (never compared with a target: at this size they say nothing)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import positive, run_script

pytestmark = pytest.mark.slow  # a benchmark smoke run

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "validate.py"


def test_validate_benchmark_runs_on_tiny_data(tmp_path):
    run = run_script(BENCH, "--rows", "20_000", "--files", "2", "--repeat", "1",
                     "--data", str(tmp_path), "--json", str(tmp_path / "v.json"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "20,000 rows x 20 float64 in 2 files" in run.stdout
    for name in ("statistics", "statistics, no sample", "VALIDATE"):
        assert re.search(rf"\n\s+1  {re.escape(name)}\s+\d+\.\d\d", run.stdout), name
    ratio = float(re.search(r"VALIDATE / statistics = ([\d.]+)x", run.stdout).group(1))
    assert positive(ratio)
    (found,) = json.loads((tmp_path / "v.json").read_text())["rounds"]
    assert found["statistics"]["rows"] == found["statistics, no sample"]["rows"] == 20_000
