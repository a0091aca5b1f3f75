"""Per-row explanations (PREDICT EXPLAIN / Model.explain) on data on disk, from both faces:
contributions plus baseline give the margin row by row (XGBoost's, the linear decision
function), the top k are the largest in order, dask partitions and pandas agree, and what
cannot be explained is refused by name."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import xgboost
from helpers import parquet_parts

import oocml
from oocml.errors import ColumnNotFoundError, DataError, OocmlSyntaxError, ParameterError
from oocml.evaluation import explanations
from oocml.evaluation.explanations import reference, top_features
from oocml.evaluation.inspection import feature_names

NUMERIC = ["x0", "x1", "x2", "x3"]
COLORS = ["red", "green", "blue", "gold"]


def _frame(rows: int, seed: int) -> pd.DataFrame:
    """Numeric features off mean 0 and scale 1, a string column, and three targets: binary,
    three string labels, a number."""
    rng = np.random.default_rng(seed)
    x = rng.normal([5.0, -2.0, 0.0, 30.0], [2.0, 0.5, 1.0, 8.0], (rows, 4))
    color = rng.choice(COLORS, rows, p=[0.4, 0.3, 0.2, 0.1])
    signal = (x[:, 0] - 5) / 2 + 2 * (x[:, 1] + 2) + (color == "red") - (x[:, 3] - 30) / 8
    frame = pd.DataFrame(x, columns=NUMERIC)
    frame["color"] = pd.Series(color, dtype="string")
    frame["y"] = (signal + rng.normal(0, 0.5, rows) > 0).astype(np.int64)
    frame["kind"] = pd.Series(np.array(["low", "mid", "high"])[np.digitize(signal, [-1, 1])],
                              dtype="string")
    # a margin of a few units: XGBoost sums in float32, whose rounding at 60 passes 1e-5
    frame["z"] = 0.3 * x[:, 0] - 0.4 * x[:, 1] + 0.1 * x[:, 2] * x[:, 3] + rng.normal(0, 0.01, rows)
    return frame


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return parquet_parts(tmp_path_factory.mktemp("explain"), _frame, 1_200)


@pytest.fixture(scope="module")
def raw(folder) -> pd.DataFrame:
    return pd.read_parquet(folder)


def _trees(folder, target: str, algorithm: str = "xgboost", **params):
    return dd.read_parquet(folder).ml.select(NUMERIC).fit_incremental(
        algorithm, target=target, n_estimators=params.pop("n_estimators", 15), max_depth=3,
        **params)


@pytest.fixture(scope="module")
def binary_trees(folder):
    return _trees(folder, "y")


@pytest.fixture(scope="module")
def multiclass_trees(folder):
    return _trees(folder, "kind")


@pytest.fixture(scope="module")
def regression_trees(folder):
    return _trees(folder, "z", "xgboost_regressor")


def _sgd(folder, target: str, scale: str | None = "standard", algorithm: str = "sgd",
         encode: bool = True, **params):
    chain = dd.read_parquet(folder).ml.select([*NUMERIC, "color"] if encode else NUMERIC)
    if encode:
        chain = chain.encode("onehot")
    if scale:
        chain = chain.scale(scale)
    return chain.fit_incremental(algorithm, target=target, epochs=2, **params)


def _total(explained: pd.DataFrame) -> np.ndarray:
    return (explained["baseline"] + explained.filter(like="contribution_").sum(axis=1)).to_numpy()


def _tree_margin(model, frame: pd.DataFrame) -> np.ndarray:
    """XGBoost's own margin of each row (for a multiclass model, of every class), on the trees
    its predictions use."""
    estimator = model.estimator
    X = model.pipeline[:-1].transform(frame[model.features])
    rounds = explanations._rounds(estimator)
    return estimator.get_booster().predict(xgboost.DMatrix(X), output_margin=True,
                                           iteration_range=rounds)


def _of_predicted(model, margins: np.ndarray, prediction: pd.Series) -> np.ndarray:
    """Each row's margin of the class it is predicted (multiclass), else the one margin."""
    if margins.ndim == 1:
        return margins
    where = pd.Index(model.classes).get_indexer(prediction.to_numpy())
    return margins[np.arange(len(margins)), where]


# -- boosted trees ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["binary_trees", "multiclass_trees", "regression_trees"])
def test_tree_contributions_add_up_to_xgboosts_margin(name, raw, request):
    model = request.getfixturevalue(name)
    explained = model.explain(raw, top=len(model.features))
    pd.testing.assert_series_equal(explained["prediction"], model.predict(raw),
                                   check_names=False)
    margin = _of_predicted(model, _tree_margin(model, raw), explained["prediction"])
    np.testing.assert_allclose(_total(explained), margin, rtol=0, atol=1e-5)
    assert explained["baseline"].nunique() <= len(model.classes or [0])  # one bias per class


def test_multiclass_explains_the_predicted_class(multiclass_trees, raw):
    explained = multiclass_trees.explain(raw, top=4)
    margins = _tree_margin(multiclass_trees, raw)
    assert set(explained["prediction"]) == {"high", "low", "mid"}
    assert explained["prediction"].dtype == "string"
    chosen = _of_predicted(multiclass_trees, margins, explained["prediction"])
    np.testing.assert_allclose(chosen, margins.max(axis=1))  # the predicted class: the largest


def test_top_k_are_the_largest_contributions_largest_first(binary_trees, raw):
    frame = raw.iloc[:500]
    top2 = binary_trees.explain(frame, top=2)
    assert list(top2.columns) == ["prediction", "baseline", "feature_1", "contribution_1",
                                  "feature_2", "contribution_2"]
    X = binary_trees.pipeline[:-1].transform(frame[binary_trees.features])
    raw_contribs = binary_trees.estimator.get_booster().predict(
        xgboost.DMatrix(X), pred_contribs=True)[:, :-1].astype(np.float64)
    order = np.argsort(-np.abs(raw_contribs), axis=1, kind="stable")[:, :2]
    names = np.asarray(feature_names(binary_trees))
    assert (top2["feature_1"].to_numpy() == names[order[:, 0]]).all()
    assert (top2["feature_2"].to_numpy() == names[order[:, 1]]).all()
    np.testing.assert_array_equal(top2["contribution_1"],
                                  np.take_along_axis(raw_contribs, order, 1)[:, 0])
    assert (top2["contribution_1"].abs() >= top2["contribution_2"].abs()).all()
    assert binary_trees.explain(frame, top=99).shape[1] == 2 + 2 * 4  # capped at 4 features


def test_early_stopped_trees_explain_the_rounds_they_predict_with(folder, raw):
    model = _trees(folder, "y", n_estimators=12)
    model.estimator.get_booster().set_attr(best_iteration="4")  # as an early stop leaves it
    assert explanations._rounds(model.estimator) == (0, 5)
    explained = model.explain(raw.iloc[:300], top=4)
    np.testing.assert_allclose(_total(explained), _tree_margin(model, raw.iloc[:300]), atol=1e-5)
    all_trees = model.estimator.get_booster().predict(
        xgboost.DMatrix(raw.iloc[:300][NUMERIC].to_numpy()), output_margin=True)
    assert not np.allclose(_total(explained), all_trees, atol=1e-3)


# -- dask and pandas, keep, memory -----------------------------------------------------------------

def test_dask_partitions_and_pandas_give_the_same(binary_trees, folder, raw):
    ddf = dd.read_parquet(folder)
    lazy = binary_trees.explain(ddf, top=3, keep=["y"])
    assert isinstance(lazy, dd.DataFrame) and lazy.npartitions == 3
    from_files = lazy.compute()
    in_memory = binary_trees.explain(dd.from_pandas(raw, npartitions=4), top=3,
                                     keep=["y"]).compute()
    whole = binary_trees.explain(raw, top=3, keep=["y"])
    for got in (from_files, in_memory):
        pd.testing.assert_frame_equal(got.reset_index(drop=True), whole.reset_index(drop=True),
                                      check_dtype=False)
    assert list(whole.columns)[-1] == "y" and (whole["y"] == raw["y"]).all()


def test_rows_are_explained_in_bounded_steps_with_the_same_numbers(binary_trees, raw,
                                                                   monkeypatch):
    whole = binary_trees.explain(raw.iloc[:200], top=4)
    monkeypatch.setattr(explanations, "EXPLAIN_ROWS", 7)
    pd.testing.assert_frame_equal(binary_trees.explain(raw.iloc[:200], top=4), whole)
    monkeypatch.setattr(explanations, "EXPLAIN_BYTES", 1)  # one row at a time
    pd.testing.assert_frame_equal(binary_trees.explain(raw.iloc[:200], top=4), whole)


def test_keep_columns_are_checked(binary_trees, raw):
    with pytest.raises(ColumnNotFoundError, match="kept column 'nope'"):
        binary_trees.explain(raw, keep=["nope"])
    with pytest.raises(ParameterError, match="'baseline'"):
        binary_trees.explain(raw.assign(baseline=1.0), keep=["baseline"])
    with pytest.raises(ParameterError, match="top takes a whole number"):
        binary_trees.explain(raw, top=0)
    empty = binary_trees.explain(raw.iloc[:0], top=2, keep=["y"])
    assert len(empty) == 0 and list(empty.columns)[-1] == "y"


# -- linear models ---------------------------------------------------------------------------------

@pytest.mark.parametrize("target,scale,algorithm", [
    ("y", "standard", "sgd"), ("kind", "minmax", "sgd"), ("y", "maxabs", "perceptron"),
    ("z", "standard", "sgd_regressor"), ("y", None, "passive_aggressive")])
def test_linear_contributions_add_up_to_the_decision_function(folder, raw, target, scale,
                                                              algorithm):
    model = _sgd(folder, target, scale, algorithm)
    explained = model.explain(dd.read_parquet(folder), top=len(feature_names(model))).compute()
    scores = (model.predict(raw) if model.task == "regression"
              else model.decision_function(raw)).to_numpy()
    np.testing.assert_allclose(_total(explained), _of_predicted(model, scores,
                                                                explained["prediction"]),
                               rtol=1e-9, atol=1e-9)
    pd.testing.assert_series_equal(explained["prediction"].reset_index(drop=True),
                                   model.predict(raw).reset_index(drop=True), check_names=False,
                                   check_dtype=False)


def test_linear_contribution_is_weight_times_distance_from_the_mean(folder, raw):
    model = _sgd(folder, "y", "standard")
    row = raw.iloc[[5]]
    explained = model.explain(row, top=len(feature_names(model)))
    x = model.pipeline[:-1].transform(row[model.features])[0]
    weights = model.weights()["weight"]
    expected = dict(zip(feature_names(model), weights.iloc[:-1].to_numpy() * x))
    for i in range(1, len(expected) + 1):
        assert explained[f"contribution_{i}"].iloc[0] == pytest.approx(
            expected[explained[f"feature_{i}"].iloc[0]], abs=1e-12)
    assert explained["baseline"].iloc[0] == pytest.approx(weights["(intercept)"])
    assert "color=red" in set(explained.filter(like="feature_").iloc[0])


def test_reference_is_the_training_mean_where_the_model_knows_it(folder, raw):
    standard = _sgd(folder, "y", "standard", encode=False)
    table = reference(standard)
    assert table["training_mean"].all() and (table["value"] == 0).all()
    prepared = standard.pipeline[:-1].transform(raw[standard.features])
    np.testing.assert_allclose(prepared.mean(axis=0), 0, atol=1e-9)  # what makes it exact
    minmax = _sgd(folder, "y", "minmax")
    assert not reference(minmax)["training_mean"].any()
    mixed = _sgd(folder, "y", "standard")  # one-hot columns are not scaled
    known = reference(mixed)["training_mean"]
    assert known[NUMERIC].all() and not known[[f"color={c}" for c in COLORS]].any()
    reduced = dd.read_parquet(folder).ml.select(NUMERIC).scale("minmax").reduce(
        "pca", n_components=2).fit_incremental("sgd", target="y")
    assert reference(reduced)["training_mean"].all()


def test_recorded_prepared_means_are_used(folder, raw, monkeypatch):
    """A fit that records the prepared columns' means (a proposed FitReport field) gives an
    exact reference for every column."""
    model = _sgd(folder, "y", "minmax")
    prepared = model.pipeline[:-1].transform(raw[model.features])
    means = prepared.mean(axis=0)
    report = model.report
    monkeypatch.setattr(model, "report", type("Report", (), {
        "prepared_means": tuple(means), **report.as_dict()})())
    assert reference(model)["training_mean"].all()
    explained = model.explain(raw, top=len(means))
    np.testing.assert_allclose(_total(explained), model.decision_function(raw), rtol=1e-9,
                               atol=1e-9)
    coef = model.estimator.coef_[0]
    np.testing.assert_allclose(explained["baseline"],
                               model.estimator.intercept_[0] + coef @ means)


def test_linear_model_without_imputer_refuses_missing_values(folder, raw):
    model = _sgd(folder, "y", "standard", encode=False)
    holed = raw.copy()
    holed.loc[3, "x2"] = np.nan
    with pytest.raises(DataError, match="x2"):
        model.explain(holed)


# -- refused ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm,target,offer", [
    ("naive_bayes", "y", "class means"), ("mlp", "y", "coefs_"),
    ("minibatch_kmeans", None, "cluster centers")])
def test_other_estimators_are_refused_with_what_they_offer(folder, raw, algorithm, target,
                                                           offer):
    model = dd.read_parquet(folder).ml.select(NUMERIC).scale().fit_incremental(
        algorithm, target=target)
    with pytest.raises(ParameterError) as error:
        model.explain(raw)
    message = str(error.value)
    assert type(model.estimator).__name__ in message and offer in message
    assert "xgboost" in message and "sgd" in message


# -- the language ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def session(folder, binary_trees, tmp_path_factory):
    session = oocml.Session(tmp_path_factory.mktemp("store"), progress=False)
    session.catalog.put("trees", binary_trees)
    session.sql(f"TRAIN sgd ON '{folder}' PREDICT kind FEATURES x0, x1, x2, x3 "
                "SCALE standard AS lin")
    return session


def test_predict_explain_statement(session, folder, binary_trees):
    lazy = session.sql(f"PREDICT EXPLAIN USING trees ON '{folder}'")
    assert isinstance(lazy, dd.DataFrame)
    assert list(lazy.columns)[-2:] == ["feature_3", "contribution_3"]  # TOP 3 by default
    top1 = session.sql(f"predict explain using trees on '{folder}' top 1").compute()
    assert list(top1.columns) == ["prediction", "baseline", "feature_1", "contribution_1"]
    direct = binary_trees.explain(dd.read_parquet(folder), top=1).compute()
    pd.testing.assert_frame_equal(top1, direct)
    linear = session.sql("PREDICT EXPLAIN USING lin ON frame TOP 2",
                         frame=dd.read_parquet(folder)).compute()
    assert set(linear["prediction"]) <= {"high", "low", "mid"}


def test_predict_explain_into_writes_parquet(session, folder, binary_trees, tmp_path):
    out = tmp_path / "explained"
    written = session.sql(f"PREDICT EXPLAIN USING trees ON '{folder}' TOP 2 INTO '{out}'")
    assert written == str(out)
    back = pd.read_parquet(out)
    expected = binary_trees.explain(pd.read_parquet(folder), top=2)
    pd.testing.assert_frame_equal(back.reset_index(drop=True), expected.reset_index(drop=True),
                                  check_dtype=False)
    with pytest.raises(oocml.OocmlError, match="OVERWRITE"):
        session.sql(f"PREDICT EXPLAIN USING trees ON '{folder}' INTO '{out}'")
    session.sql(f"PREDICT EXPLAIN USING trees ON '{folder}' TOP 1 INTO '{out}' OVERWRITE")
    assert list(pd.read_parquet(out).columns)[-1] == "contribution_1"


def test_explain_of_predict_explain(session, folder):
    text = session.sql(f"EXPLAIN PREDICT EXPLAIN USING trees ON '{folder}' TOP 2 INTO 'out/'")
    assert text.startswith("PREDICT EXPLAIN with model trees")
    assert "TreeSHAP" in text and "top 2" in text and "writes:" in text
    linear = session.sql(f"EXPLAIN PREDICT EXPLAIN USING lin ON '{folder}'")
    assert "reference = training means" in linear and "top 3" in linear


def test_predict_explain_refuses_a_model_without_contributions(session, folder):
    session.sql(f"TRAIN naive_bayes ON '{folder}' PREDICT y FEATURES x0, x1 AS nb")
    with pytest.raises(ParameterError, match="GaussianNB gives no per-row contributions"):
        session.sql(f"PREDICT EXPLAIN USING nb ON '{folder}'")


@pytest.mark.parametrize("statement,column", [
    ("PREDICT EXPLAIN USING m ON t TOP 0", 30), ("PREDICT EXPLAIN USING m ON t TOP 2.5", 30),
    ("PREDICT EXPLAIN USING m ON t TOP x", 34), ("PREDICT EXPLAIN USING m ON t TOP", 33),
    ("PREDICT USING m ON t TOP 2", 22), ("PREDICT PROBA EXPLAIN USING m ON t", 15)])
def test_a_bad_top_is_a_syntax_error(statement, column):
    with pytest.raises(OocmlSyntaxError) as error:
        oocml.Session().sql(statement)
    assert error.value.column == column


def test_top_features_orders_ties_by_feature_and_wide_rows_alike(monkeypatch):
    values = np.array([[0.0, -2.0, 2.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 3.0]])
    chosen, picked = top_features(values, 3)
    np.testing.assert_array_equal(chosen, [[1, 2, 3], [4, 0, 1]])
    np.testing.assert_array_equal(picked, [[-2.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
    wide = np.random.default_rng(0).normal(size=(20, 50))
    monkeypatch.setattr(explanations, "SORT_LIMIT", 10)  # the argpartition path
    fast = top_features(wide, 5)
    monkeypatch.setattr(explanations, "SORT_LIMIT", 4096)
    for a, b in zip(fast, top_features(wide, 5)):
        np.testing.assert_array_equal(a, b)
