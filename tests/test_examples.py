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
