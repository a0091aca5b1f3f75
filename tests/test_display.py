"""The HTML a notebook shows for models and chains: the words and numbers a user looks for,
for every kind of model (old files, searches, updates), and never an exception."""

from __future__ import annotations

from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline

import oocml

OLD = Path(__file__).parent / "data" / "oocml-0.1"


def test_a_trained_model_shows_its_training_lineage_and_evaluation(binary_dir):
    session = oocml.Session(progress=False)
    model = session.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard EPOCHS 3 "
                        "HOLDOUT 0.2 AS m")
    page = model._repr_html_()
    assert f"{model.report.rows_seen:,} in 3 epoch(s)" in page
    assert f"{model.report.holdout_score:.4f} (best epoch {model.report.best_epoch})" in page
    assert page.count("<circle") == 3  # one dot per epoch on the learning curve
    assert "Lineage" in page and str(binary_dir) in page and "Latest evaluation" not in page
    model.evaluate(dd.read_parquet(binary_dir))
    accuracy = model.last_evaluation.set_index("metric").value["accuracy"]
    assert "Latest evaluation" in model._repr_html_()
    assert f"{accuracy:.4g}" in model._repr_html_()
    assert repr(model).startswith("<oocml.Model SGDClassifier") and len(repr(model)) < 120


def test_a_search_shows_its_leaderboard(binary_dir):
    model = oocml.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y TUNE (alpha IN (0.0001, 0.01))")
    page = model._repr_html_()
    assert "TUNE leaderboard" in page and "alpha" in page and "best_score" in page


def test_old_files_hand_built_models_and_bare_chains_show_what_they_can():
    for name in ("classifier", "regressor", "tuned"):
        page = oocml.load_model(OLD / f"{name}.oocml")._repr_html_()
        assert "oocml.Model" in page and "Fitted pipeline" in page
    bare = oocml.Model(Pipeline([("model", GaussianNB())]), features=["a"], target="y",
                       task="classification")  # unfitted, no report, no plan
    page = bare._repr_html_()
    assert "GaussianNB" in page and "0 in 0 epoch(s)" in page
    chain = pd.DataFrame({"a": np.arange(3.0), "s": ["x", "y", "z"]}).ml
    page = chain.select(["a"])._repr_html_()
    assert "<th>partitions</th><td>1</td>" in page and "a float64, s" in page
    assert "(none: features as they are)" in page
    assert repr(chain.where("a > 1").scale()) == (
        "<oocml.Chain scale standard where a > 1 on 1 partition(s)>")


def test_a_section_that_fails_says_so_instead_of_raising(binary_dir):
    model = oocml.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y")
    model.report = None  # as broken as a model can get
    page = model._repr_html_()
    assert "not available" in page and "Fitted pipeline" in page
