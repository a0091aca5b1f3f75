"""TUNE / search=: candidates trained on the same blocks and halved by holdout score, each
equal to itself trained alone, the same from both faces and on any scheduler."""

from __future__ import annotations

import os

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import oocml
from oocml.engine.search import threads_help
from oocml.errors import OocmlError

GRID = {"alpha": [1e-5, 1e-4, 1e-3, 1e-2], "loss": ["hinge", "log_loss"]}  # 8 candidates
TUNE = "TUNE (alpha IN (1e-5, 1e-4, 1e-3, 1e-2), loss IN ('hinge', 'log_loss'))"


def _coef(model: oocml.Model) -> np.ndarray:
    return np.concatenate([model.estimator.coef_.ravel(), model.estimator.intercept_.ravel()])


@pytest.fixture(scope="module")
def searched(binary_dir):
    data = dd.read_parquet(binary_dir)
    return data.ml.scale().fit_incremental("sgd", target="y", epochs=3, shuffle=True,
                                           search=GRID)


def test_successive_halving_schedule(searched):
    """8 candidates, a third kept after each epoch: 8 -> 3 -> 1, each seeing only its rungs."""
    assert [h["candidates"] for h in searched.report.history] == [8, 3, 1]
    results = searched.search_results_
    assert len(results) == 8 and set(results["param_loss"]) == {"hinge", "log_loss"}
    dropped = results["dropped_after_epoch"].value_counts(dropna=False).to_dict()
    assert dropped[1] == 5 and dropped[2] == 2 and results["dropped_after_epoch"].isna().sum() == 1
    per_epoch = searched.report.history[0]["rows"]
    assert sorted(results["rows_seen"]) == [per_epoch] * 5 + [2 * per_epoch] * 2 + [3 * per_epoch]
    assert results["score_epoch_1"].notna().all() and results["score_epoch_2"].notna().sum() == 3
    # the survivors of a rung were the best of it
    first = results.sort_values("score_epoch_1", ascending=False)
    assert set(first.index[:3]) == set(results.index[results["score_epoch_2"].notna()])
    winner = results[results["rank"] == 1].iloc[0]
    assert winner["params"] == searched.report.best_params
    assert searched.report.holdout == 0.2  # TUNE's default holdout


def test_each_candidate_is_the_candidate_trained_alone(searched, binary_dir):
    data = dd.read_parquet(binary_dir)
    best = searched.report.best_params
    alone = data.ml.scale().fit_incremental("sgd", target="y", epochs=3, shuffle=True,
                                            holdout=0.2, **best)
    np.testing.assert_array_equal(_coef(alone), _coef(searched))
    results = searched.search_results_
    for k in (0, 5):  # any candidate's first rung is its one-epoch fit's holdout score
        params = results.loc[k, "params"]
        one = data.ml.scale().fit_incremental("sgd", target="y", epochs=1, shuffle=True,
                                              holdout=0.2, **params)
        assert results.loc[k, "score_epoch_1"] == one.report.holdout_score


def test_the_language_gives_the_accessor_model(searched, binary_dir):
    model = oocml.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard {TUNE} "
                      "EPOCHS 3 SHUFFLE AS best")
    np.testing.assert_array_equal(_coef(model), _coef(searched))
    pd.testing.assert_frame_equal(model.search_results_, searched.search_results_)


def test_random_search_from_both_faces(binary_dir):
    data = dd.read_parquet(binary_dir)
    fits = [data.ml.scale().fit_incremental(
        "sgd", target="y", epochs=2, penalty="elasticnet", n_candidates=5, reduction_factor=2,
        search={"alpha": stats.loguniform(1e-6, 1e-2), "l1_ratio": stats.uniform(0, 1)})
        for _ in range(2)]
    statement = oocml.sql(
        f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard WITH (penalty = 'elasticnet') "
        "TUNE (alpha LOGUNIFORM(1e-6, 1e-2), l1_ratio UNIFORM(0, 1)) TRIALS 5 HALVING 2 "
        "EPOCHS 2")
    for model in (fits[1], statement):
        np.testing.assert_array_equal(_coef(model), _coef(fits[0]))
        assert model.search_results_["params"].tolist() == fits[0].search_results_["params"].tolist()
    alphas = fits[0].search_results_["param_alpha"]
    assert len(set(alphas)) == 5 and alphas.between(1e-6, 1e-2).all()
    assert [h["candidates"] for h in statement.report.history] == [5, 3]


def test_patience_per_candidate(binary_dir):
    data = dd.read_parquet(binary_dir)
    model = data.ml.scale().fit_incremental(
        "sgd", target="y", epochs=6, shuffle=True, holdout=0.3, patience=1,
        search={"alpha": [1e-4, 1e-1]}, reduction_factor=2)
    results = model.search_results_
    winner = results[results["rank"] == 1].iloc[0]
    assert model.report.best_epoch <= 6
    if winner["stopped"] == "patience":  # kept its best epoch's model
        assert winner["dropped_after_epoch"] < 6
    alone = data.ml.scale().fit_incremental("sgd", target="y", epochs=6, shuffle=True,
                                            holdout=0.3, patience=1, **winner["params"])
    np.testing.assert_array_equal(_coef(alone), _coef(model))


# A parameter each registry algorithm can be tuned on, and the steps its data needs.
ALGORITHMS = {
    "sgd": ("alpha", (1e-4, 1e-2), "SCALE standard"),
    "sgd_regressor": ("alpha", (1e-4, 1e-2), "SCALE standard"),
    "passive_aggressive": ("eta0", (0.1, 1.0), "SCALE standard"),
    "passive_aggressive_regressor": ("eta0", (0.1, 1.0), "SCALE standard"),
    "perceptron": ("alpha", (1e-4, 1e-2), "SCALE standard"),
    "mlp": ("alpha", (1e-4, 1e-2), "SCALE standard"),
    "mlp_regressor": ("alpha", (1e-4, 1e-2), "SCALE standard"),
    "naive_bayes": ("var_smoothing", (1e-9, 1e-3), ""),
    "multinomial_nb": ("alpha", (0.5, 1.0), "SCALE minmax"),
    "bernoulli_nb": ("alpha", (0.5, 1.0), "SCALE standard"),
    "minibatch_kmeans": ("n_clusters", (2, 3), "SCALE standard"),
}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_registry_algorithm(algorithm, binary_dir, regression_dir, tmp_path):
    """With ENCODE and IMPUTE too: a text column with missing values, numbers with NaN."""
    name, values, scale = ALGORITHMS[algorithm]
    regression = algorithm.endswith("regressor")
    frame = pd.read_parquet(regression_dir if regression else binary_dir)
    rng = np.random.default_rng(0)
    frame["city"] = rng.choice(["paris", "rome", None], size=len(frame))
    frame.loc[rng.random(len(frame)) < 0.05, "x1"] = np.nan
    frame.to_parquet(tmp_path / "data.parquet")
    source = tmp_path / "data.parquet"
    target = "" if algorithm == "minibatch_kmeans" else "PREDICT y"
    if algorithm == "minibatch_kmeans":
        frame.drop(columns="y").to_parquet(source)
    literal = ", ".join(repr(v) for v in values)
    model = oocml.sql(f"TRAIN {algorithm} ON '{source}' {target} IMPUTE mean {scale} "
                      f"ENCODE onehot TUNE ({name} IN ({literal})) EPOCHS 2 SHUFFLE")
    best = model.report.best_params
    steps = f"IMPUTE mean {scale} ENCODE onehot"
    alone = oocml.sql(f"TRAIN {algorithm} ON '{source}' {target} {steps} "
                      f"WITH ({name} = {best[name]!r}) HOLDOUT 0.2 EPOCHS 2 SHUFFLE")
    data = dd.read_parquet(source)
    np.testing.assert_array_equal(alone.predict(data).compute(), model.predict(data).compute())
    assert len(model.search_results_) == 2
    # threads only where they are faster (benchmarks/gil.py): not for the MLPs
    assert model.report.workers == (os.cpu_count() if threads_help(model.estimator) else 1)


@pytest.mark.parametrize("clause, message", [
    ("TUNE (alpa IN (1e-4, 1e-3))", "has no parameter 'alpa' (did you mean 'alpha'?)"),
    ("TUNE (alpha IN (-1.0, 1e-4))", "TUNE candidate {'alpha': -1.0}"),
    ("TUNE (alpha IN (1e-4), alpha IN (1e-3))", "names a parameter twice"),
    ("TUNE (alpha LOGUNIFORM(0, 1)) TRIALS 3", "needs low > 0"),
    ("TUNE (alpha UNIFORM(1, 1)) TRIALS 3", "needs low < high"),
    ("TUNE (alpha LOGUNIFORM(1e-6, 1))", "needs TRIALS n"),
    ("TUNE (alpha IN (1e-4, 1e-3)) TRIALS 5", "more candidates than the grid's 2"),
    ("TUNE (alpha IN (1e-4, 1e-3)) HALVING 1", "HALVING takes a whole number >= 2"),
    ("TUNE (alpha IN (1e-4, 1e-3)) PARALLEL", "PARALLEL (strategy='average') cannot be"),
    ("TUNE (alpha IN (1e-4, 1e-3)) CHECKPOINT 'c.ckpt'", "cannot CHECKPOINT or RESUME"),
    ("TUNE (alpha NORMAL(0, 1)) TRIALS 3", "unknown distribution 'NORMAL'"),
])
def test_bad_searches_are_refused_before_any_read(clause, message, tmp_path):
    """The source does not even exist: every check runs before any read."""
    with pytest.raises(OocmlError, match="at line 1, column .*" + _escaped(message)):
        oocml.sql(f"TRAIN sgd ON '{tmp_path / 'nothing'}' PREDICT y {clause}")


def _escaped(text: str) -> str:
    import re

    return re.escape(text)


def test_bad_searches_in_python(binary):
    with pytest.raises(OocmlError, match="search= takes a dict"):
        binary.ml.fit_incremental("sgd", target="y", search={})
    with pytest.raises(OocmlError, match="takes a list of values or a distribution"):
        binary.ml.fit_incremental("sgd", target="y", search={"alpha": stats.norm(0, 1)},
                                  n_candidates=2)
    with pytest.raises(OocmlError, match="has no values to try"):
        binary.ml.fit_incremental("sgd", target="y", search={"alpha": []})
    with pytest.raises(AttributeError, match="only set by a search"):
        _ = binary.ml.scale().fit_incremental("sgd", target="y").search_results_


@pytest.mark.slow
def test_on_a_local_cluster(client, binary_dir, searched):
    """The holdout passes run on the workers, the candidates on the client: the same model."""
    data = dd.read_parquet(binary_dir)
    model = data.ml.scale().fit_incremental("sgd", target="y", epochs=3, shuffle=True,
                                            search=GRID)
    np.testing.assert_array_equal(_coef(model), _coef(searched))
    pd.testing.assert_frame_equal(model.search_results_, searched.search_results_)


def test_explain_show_trials_describe_and_a_saved_model(binary_dir, tmp_path):
    session = oocml.Session(progress=False)
    statement = f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard {TUNE} EPOCHS 3 AS best"
    explained = session.sql(f"EXPLAIN {statement}")
    assert "  tune:       8 candidates, every point of the grid" in explained
    for epoch, live in ((1, 8), (2, 3), (3, 1)):
        assert f"    epoch {epoch}: {live} candidate(s) train on the epoch's 80% of rows" in explained
    assert "    candidate 7: alpha=0.01, loss='log_loss'" in explained
    model = session.sql(statement)
    trials = session.sql("SHOW TRIALS best")
    assert trials["rank"].tolist() == list(range(1, 9))
    assert {"candidate", "alpha", "loss", "score_epoch_1", "best_score", "rows_seen",
            "dropped_after_epoch", "stopped"} <= set(trials.columns)
    assert trials.iloc[0]["candidate"] == model.report.best_candidate
    described = session.sql("DESCRIBE best").set_index("property")["value"]
    assert described["search"].startswith("8 candidates, successive halving")
    assert described["rank 1"].startswith(", ".join(f"{k}={v!r}" for k, v in
                                                    model.report.best_params.items()))
    model.save(tmp_path / "best.skops")
    again = oocml.Session(progress=False)
    again.sql(f"LOAD MODEL best FROM '{tmp_path / 'best.skops'}'")
    pd.testing.assert_frame_equal(again.sql("SHOW TRIALS best"), trials)
    session.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y AS plain")
    with pytest.raises(OocmlError, match="was not trained with TUNE"):
        session.sql("SHOW TRIALS plain")
