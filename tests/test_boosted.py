"""Boosted trees out-of-core (TRAIN xgboost): the same prepared blocks through XGBoost's external
memory, on real files, through both faces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import oocml
from oocml.errors import DataError, ParameterError, TrainingInterrupted

pytest.importorskip("xgboost")


def _booster_bytes(model) -> bytes:
    return bytes(model.estimator.get_booster().save_raw("ubj"))


@pytest.fixture(scope="module")
def shops(tmp_path_factory) -> Path:
    """30,000 rows in 3 files: numbers with missing values, a categorical column with missing
    values, and a three-class string label that both move."""
    folder = tmp_path_factory.mktemp("shops")
    rng = np.random.default_rng(7)
    n = 30_000
    frame = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                          "shop": rng.choice(list("abcdefgh"), n)})
    frame.loc[rng.random(n) < 0.1, "z"] = np.nan
    frame.loc[rng.random(n) < 0.05, "shop"] = None
    score = frame.x + frame.shop.map({"a": 2, "b": -2, "c": 1}).fillna(0) + frame.z.fillna(0)
    frame["y"] = np.where(score > 0.5, "hi", np.where(score < -0.5, "lo", "mid"))
    frame["v"] = score + rng.normal(scale=0.1, size=n)
    for i in range(3):
        frame.iloc[i * 10_000:(i + 1) * 10_000].to_parquet(folder / f"part-{i}.parquet")
    return folder


TRAIN = ("TRAIN xgboost ON '{folder}' PREDICT y FEATURES x, z, shop ENCODE ordinal "
         "WITH (n_estimators = 40, max_depth = 4) HOLDOUT 0.2 EARLY STOP PATIENCE 5")


def test_both_faces_train_the_same_trees_run_after_run(shops):
    via_sql = oocml.sql(TRAIN.format(folder=shops))
    chain = dd.read_parquet(shops).ml.select(["x", "z", "shop"]).encode("ordinal")
    via_accessor = chain.fit_incremental("xgboost", target="y", n_estimators=40, max_depth=4,
                                         holdout=0.2, patience=5)
    again = oocml.sql(TRAIN.format(folder=shops))
    assert _booster_bytes(via_sql) == _booster_bytes(via_accessor) == _booster_bytes(again)
    assert via_sql.report == via_accessor.report.__class__(**{
        **via_accessor.report.__dict__, "stats_seconds": via_sql.report.stats_seconds,
        "train_seconds": via_sql.report.train_seconds,
        "history": via_sql.report.history})  # the same but for the seconds


def test_strings_missing_values_and_native_categories(shops):
    """No IMPUTE: NaN goes to XGBoost; ENCODE ordinal makes categorical features, a missing or
    unseen category included; the labels predicted are the strings trained on."""
    model = oocml.sql(TRAIN.format(folder=shops))
    assert model.classes == ["hi", "lo", "mid"]
    assert model.estimator.get_booster().feature_types == ["q", "q", "c"]
    test = pd.DataFrame({"x": [3.0, -3.0, 0.0, 0.0], "z": [np.nan, 0.0, 0.0, 0.0],
                         "shop": ["a", "b", "zzz-unseen", None]})
    assert model.predict(test).tolist()[:2] == ["hi", "lo"]
    assert model.predict_proba(test).shape == (4, 3)
    frame = pd.read_parquet(shops)
    metrics = model.evaluate(frame).set_index("metric")["value"]
    assert metrics["accuracy"] > 0.95 and metrics["roc_auc"] > 0.99


def test_early_stopping_keeps_the_best_round_and_the_history_scores_every_round(shops):
    model = oocml.sql(TRAIN.format(folder=shops).replace("n_estimators = 40", "n_estimators = 400")
                      .replace("max_depth = 4", "max_depth = 6, learning_rate = 0.5"))
    report = model.report
    assert report.stopped_early and report.epochs == report.best_epoch + 5 < 400
    history = model.history_
    assert len(history) == report.epochs and history["holdout_score"].notna().all()
    assert report.holdout_score == history["holdout_score"][report.best_epoch - 1]
    assert model.estimator.get_booster().best_iteration == report.best_epoch - 1
    curve = model.describe().set_index("property")["value"]
    assert "learning curve" in curve.index and f"epoch {report.best_epoch}" in curve.index


def test_the_source_is_read_once_per_matrix_and_the_cache_serves_the_other_passes(shops):
    cached = oocml.sql(TRAIN.format(folder=shops))
    assert cached.report.passes == 3 and cached.report.cached_epochs == 3  # stats, train, holdout
    uncached = oocml.sql(TRAIN.format(folder=shops) + " CACHE OFF")
    assert uncached.report.passes == 1 + 3 + 2 and uncached.report.cached_epochs == 0
    assert _booster_bytes(cached) == _booster_bytes(uncached)  # the same trees either way


def test_a_regressor_without_holdout_and_the_page_folder_is_removed(shops, tmp_path):
    model = dd.read_parquet(shops).ml.select(["x", "z"]).fit_incremental(
        "xgboost_regressor", target="v", n_estimators=60, cache=str(tmp_path / "kept"))
    assert model.report.holdout is None and model.report.passes == 2
    assert model.score(pd.read_parquet(shops)) > 0.3
    assert not list((tmp_path / "kept").glob("oocml-boost-*"))  # pages gone; blocks kept


def test_a_text_source_is_parsed_once(shops, tmp_path):
    frame = pd.read_parquet(shops)
    frame.to_csv(tmp_path / "shops.csv", index=False)
    model = oocml.sql(TRAIN.format(folder=tmp_path / "shops.csv"))
    assert model.report.parsed_once and model.report.passes == 1
    assert _booster_bytes(model) == _booster_bytes(oocml.sql(TRAIN.format(folder=shops)))


def test_weights_are_importances_by_encoded_feature(shops):
    session = oocml.Session()
    session.sql(TRAIN.format(folder=shops).replace("ENCODE ordinal", "ENCODE onehot") + " AS m")
    weights = session.sql("SHOW WEIGHTS m").set_index("feature")
    assert list(weights.columns) == ["gain", "cover", "weight"]
    assert {"x", "z", "shop=a", "shop=b"} <= set(weights.index)
    assert weights["gain"].is_monotonic_decreasing and weights.loc["shop=h", "weight"] == 0
    with pytest.raises(ParameterError, match="importances"):
        session.catalog.get("m").weights(original_units=True)


def test_save_load_and_describe(shops, tmp_path):
    session = oocml.Session(tmp_path / "store")
    model = session.sql(TRAIN.format(folder=shops) + " AS trees")
    loaded = oocml.Session(tmp_path / "store").catalog.get("trees")
    frame = pd.read_parquet(shops).head(500)
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    assert loaded.predict(frame).tolist() == model.predict(frame).tolist()
    assert loaded.report == model.report
    table = session.sql("DESCRIBE trees").set_index("property")["value"]
    assert table["algorithm"] == "BoostedTreesClassifier"


def test_explain_says_what_xgboost_holds_and_its_python_runs(shops):
    from helpers import equivalent_python

    explained = oocml.sql("EXPLAIN " + TRAIN.format(folder=shops))
    assert "training matrix (XGBoost's external memory): three passes" in explained
    assert "labels held whole: 24,000 training rows x 4 bytes" in explained
    assert "page cache" in explained and "rounds:     40 (n_estimators)" in explained
    namespace: dict = {}
    exec(equivalent_python(explained), namespace)
    assert _booster_bytes(namespace["model"]) == _booster_bytes(oocml.sql(TRAIN.format(folder=shops)))


@pytest.mark.parametrize("clause, match", [
    ("EPOCHS 3", "does not take EPOCHS 3.*n_estimators"),
    ("SHUFFLE", "does not take SHUFFLE"),
    ("PARALLEL", "does not take PARALLEL"),
    ("CHECKPOINT 'c.ckpt'", "does not take CHECKPOINT"),
    ("WITH (max_dpeth = 3)", "no parameter 'max_dpeth' \\(did you mean 'max_depth'"),
    ("WITH (max_depth = -3)", "max_depth should be greater equal to 0"),
    ("WITH (objective = 'nonsense')", "Unknown objective function"),
])
def test_what_trees_cannot_take_is_refused_before_any_read(tmp_path, clause, match):
    missing = tmp_path / "no-such-data"  # refused before the source is even listed
    with pytest.raises(ParameterError, match=match):
        oocml.sql(f"TRAIN xgboost ON '{missing}' PREDICT y {clause}")


def test_a_page_cache_too_large_for_the_disk_is_refused_before_training(shops, monkeypatch):
    from oocml.engine import boosted

    monkeypatch.setattr(boosted, "PAGE_BYTES", (1 << 40, 0))
    with pytest.raises(ParameterError, match=r"page cache needs about [\d,]+ MB.*CACHE 'folder'"):
        oocml.sql(TRAIN.format(folder=shops))


def test_ctrl_c_while_the_matrix_builds_stops_the_fit(shops, monkeypatch):
    """XGBoost swallows a KeyboardInterrupt raised in its DataIter; it must come through."""
    from oocml.engine import boosted

    real = boosted.pass_blocks

    def interrupted(*args, **kwargs):
        for k, block in enumerate(real(*args, **kwargs)):
            if k == 1:
                raise KeyboardInterrupt
            yield block

    monkeypatch.setattr(boosted, "pass_blocks", interrupted)
    with pytest.raises(TrainingInterrupted, match="training interrupted"):
        oocml.sql(TRAIN.format(folder=shops))


def test_without_xgboost_the_algorithm_names_the_extra(tmp_path):
    script = ("import sys; sys.modules['xgboost'] = None\n"
              "import oocml\n"
              "try:\n"
              "    oocml.sql(\"TRAIN xgboost ON 'nowhere' PREDICT y\")\n"
              "except oocml.OocmlError as error:\n"
              "    print(type(error).__name__, error)\n"
              "print(oocml.sql('SHOW ALGORITHMS').set_index('name').loc['xgboost', 'estimator'])\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    assert 'MissingPackageError BoostedTreesClassifier needs XGBoost, which is not installed: ' \
           'pip install "oocml[xgboost]"' in out
    assert "(not installed)" in out


@pytest.mark.slow
def test_on_a_cluster_the_workers_prepare_the_blocks_and_the_trees_are_the_same(shops, client):
    local = oocml.sql(TRAIN.format(folder=shops) + " CACHE OFF")
    on_cluster = oocml.sql(TRAIN.format(folder=shops))
    assert _booster_bytes(on_cluster) == _booster_bytes(local)


TUNED = ("TRAIN xgboost ON '{folder}' PREDICT y FEATURES x, z, shop ENCODE ordinal "
         "WITH (n_estimators = 27, subsample = 0.8) "
         "TUNE (max_depth IN (1, 3, 5), learning_rate IN (0.05, 0.5, 1.0)) HOLDOUT 0.2")


def test_tune_halves_candidates_by_rounds_and_the_winner_is_its_own_solo_fit(shops):
    """Nine candidates grow to 3, then 9, then 27 rounds, the best third going on each time;
    both faces agree, and the winner's trees are, bit for bit, those it grows alone (its
    sampling's random state carried across rungs)."""
    tuned = oocml.sql(TUNED.format(folder=shops))
    report = tuned.report
    rounds = sorted({t["best_epoch"] for t in report.search})
    assert rounds == [3, 9, 27]
    assert [t["reason"] for t in report.search].count("halved") == 8
    assert sum(t["dropped_after"] == 3 for t in report.search) == 6
    winner = report.search[report.best_candidate]
    assert winner["reason"] is None and len(winner["scores"]) == 3
    assert report.holdout_score == max(t["best_score"] for t in report.search if t["best_epoch"] == 27)
    assert len(report.history) == 27 and report.best_params == winner["params"]
    params = tuned.estimator.get_params()
    assert {k: params[k] for k in winner["params"]} == winner["params"]

    chain = dd.read_parquet(shops).ml.select(["x", "z", "shop"]).encode("ordinal")
    accessor = chain.fit_incremental("xgboost", target="y", n_estimators=27, subsample=0.8,
                                     holdout=0.2, search={"max_depth": [1, 3, 5],
                                                          "learning_rate": [0.05, 0.5, 1.0]})
    solo = chain.fit_incremental("xgboost", target="y", n_estimators=27, subsample=0.8,
                                 holdout=0.2, **winner["params"])
    assert _booster_bytes(accessor) == _booster_bytes(tuned) == _booster_bytes(solo)
    assert [e["holdout_score"] for e in solo.report.history] == \
        [e["holdout_score"] for e in report.history]


def test_tune_with_patience_stops_candidates_and_cuts_the_winner_at_its_best_round(shops):
    model = oocml.sql(TUNED.replace("27", "200").replace("HOLDOUT 0.2", "HOLDOUT 0.2 EARLY STOP "
                                                         "PATIENCE 3").format(folder=shops))
    reasons = {t["reason"] for t in model.report.search}
    assert "patience" in reasons
    stopped = [t for t in model.report.search if t["reason"] == "patience"]
    assert all(t["dropped_after"] == t["best_epoch"] + 3 for t in stopped)
    booster = model.estimator.get_booster()
    assert booster.best_iteration + 1 == model.report.best_epoch
    assert model.report.best_epoch < booster.num_boosted_rounds()
    held = pd.concat(pd.read_parquet(p) for p in sorted(shops.iterdir())).head(2000)
    X = model.pipeline[:-1].transform(held[model.features])
    served = model.estimator.predict_proba(X)
    best = booster.best_iteration + 1
    np.testing.assert_array_equal(served, model.estimator.predict_proba(X, iteration_range=(0, best)))
    assert not np.array_equal(served, model.estimator.predict_proba(
        X, iteration_range=(0, booster.num_boosted_rounds())))


def test_explain_shows_the_rungs_of_a_boosted_tune(shops):
    text = oocml.sql("EXPLAIN " + TUNED.format(folder=shops))
    assert "boosted in turn on the same two matrices" in text
    assert "rung 1: 9 candidate(s) grow to 3 of 27 rounds" in text
    assert "rung 3: 1 candidate(s) grow to 27 of 27 rounds" in text


def test_labels_that_do_not_fit_the_objective_are_refused_by_name(tmp_path):
    """Caught before any data is read where parameters show it, else when the data does:
    negative counts for Poisson, two classes for a multiclass objective; and an objective that
    needs positive labels is not refused on parameters alone."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=2_000)})
    frame["v"], frame["y"] = frame.x - 1, (frame.x > 0).astype(int)
    frame["rate"] = np.exp(frame.x)
    frame.to_parquet(tmp_path / "d.parquet")
    source = f"'{tmp_path / 'd.parquet'}'"
    with pytest.raises(DataError, match="label must be non-negative for Poisson"):
        oocml.sql(f"TRAIN xgboost_regressor ON {source} PREDICT v FEATURES x "
                  "WITH (objective = 'count:poisson', n_estimators = 3)")
    with pytest.raises(DataError, match="'multi:softprob' needs three classes or more"):
        oocml.sql(f"TRAIN xgboost ON {source} PREDICT y FEATURES x "
                  "WITH (objective = 'multi:softprob')")
    gamma = oocml.sql(f"TRAIN xgboost_regressor ON {source} PREDICT rate FEATURES x "
                      "WITH (objective = 'reg:gamma', n_estimators = 20)")
    assert gamma.score(frame) > 0.5
