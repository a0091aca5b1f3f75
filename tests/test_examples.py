"""The examples run end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dask.dataframe as dd

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py"), "--rows", "100000",
                             "--workdir", str(tmp_path)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "accuracy" in result.stdout
    assert len(dd.read_parquet(tmp_path / "predictions")) == 25_000
    assert (tmp_path / "model.oocml").is_file()


def test_penguins_out_of_core_matches_sklearn_in_memory(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / "penguins.py"), "--workdir",
                             str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("held-out accuracy"))
    ours, theirs = (float(x.split()[-1]) for x in line.split(":", 1)[1].split(","))
    assert ours > 0.95 and abs(ours - theirs) <= 0.01
    predicted = dd.read_parquet(tmp_path / "penguins" / "predicted").compute()
    assert len(predicted) == 86 and set(predicted["prediction"]) <= {"Adelie", "Chinstrap", "Gentoo"}
