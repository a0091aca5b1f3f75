"""Weights by feature name (scaled and original units), centers, class means, the sparkline,
and the figures of oocml.evaluation.plots (checked through their data, not their pixels)."""

from __future__ import annotations

import sys

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from helpers import parquet_parts
from sklearn.metrics import auc, confusion_matrix, roc_curve

import oocml
from oocml.errors import ColumnNotFoundError, OocmlError, ParameterError
from oocml.evaluation import inspection, plots

COUNTRIES = ["FR", "DE", "IT", "ES", "PT"]
NUMERIC = ["x0", "x1", "x2"]


def _frame(rows: int, seed: int) -> pd.DataFrame:
    """Features far from mean 0 and scale 1 (so original units differ from scaled ones), a string
    column with rare values and a few missing ones, and a binary, a 3-class and a numeric target."""
    rng = np.random.default_rng(seed)
    x0, x1, x2 = rng.normal(50, 10, rows), rng.normal(-3, 0.5, rows), rng.uniform(0, 1000, rows)
    country = rng.choice(COUNTRIES, rows, p=[0.4, 0.3, 0.2, 0.07, 0.03]).astype(object)
    country[::97] = None
    bonus = np.where(country == "FR", 5.0, 0.0)
    signal = (x0 - 50) / 10 + 2 * (x1 + 3) + bonus / 5
    return pd.DataFrame({
        "x0": x0, "x1": x1, "x2": x2, "country": pd.Series(country, dtype="string"),
        "y": (signal + rng.normal(0, 0.3, rows) > 0).astype(np.int64),
        "kind": np.array(["low", "mid", "high"])[np.digitize(signal, [-0.8, 0.8])],
        "z": 3 * x0 - 20 * x1 + 0.01 * x2 + bonus + rng.normal(0, 0.1, rows)})


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return parquet_parts(tmp_path_factory.mktemp("inspection"), _frame, 1_500)


@pytest.fixture(scope="module")
def raw(folder) -> pd.DataFrame:
    return pd.read_parquet(folder)


def _fit(folder, target, *, encode=None, impute=None, scale="standard", features=None, **kwargs):
    chain = dd.read_parquet(folder).ml.select(features or [*NUMERIC, "country"])
    if encode:
        chain = chain.encode(encode[0], **encode[1])
    if impute:
        chain = chain.impute(impute)
    if scale:
        chain = chain.scale(scale)
    return chain.fit_incremental(kwargs.pop("algorithm", "sgd"), target=target, **kwargs)


def _design(raw: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The raw rows as the named columns, built from the names alone: ``x0`` is the raw column,
    ``country=FR`` its indicator, ``country=(other)`` every value not named by another column."""
    kept = {}
    for name in names:
        if "=" in name:
            column, value = name.split("=", 1)
            kept.setdefault(column, []).append(value)
    columns = []
    for name in names:
        if "=" not in name:
            columns.append(raw[name].to_numpy(float))
            continue
        column, value = name.split("=", 1)
        if value == oocml.encoding.OTHER:
            columns.append((~raw[column].isin(kept[column])).to_numpy(float))
        else:
            columns.append(raw[column].isin([value]).to_numpy(float))
    return np.column_stack(columns)


# -- names and scaled weights --------------------------------------------------------------------

@pytest.mark.parametrize("method,params,names", [
    ("onehot", {"max_categories": 3},
     ["country=DE", "country=FR", "country=IT", "country=(other)"]),
    ("ordinal", {}, ["country"]),
    ("hash", {"n_features": 8}, [f"hash_{i}" for i in range(8)]),
])
def test_weights_are_named_by_the_columns_the_estimator_sees(folder, method, params, names):
    model = _fit(folder, "y", encode=(method, params))
    weights = inspection.weights(model)
    assert list(weights.index) == [*NUMERIC, *names, "(intercept)"]
    assert list(weights.columns) == ["weight"]
    assert weights.attrs == {"units": "scaled", "positive_class": 1}
    np.testing.assert_array_equal(weights["weight"].iloc[:-1], model.estimator.coef_[0])
    assert weights.loc["(intercept)", "weight"] == model.estimator.intercept_[0]


def test_multiclass_weights_have_one_column_per_class(folder):
    model = _fit(folder, "kind", features=NUMERIC)
    weights = inspection.weights(model)
    assert list(weights.columns) == ["high", "low", "mid"]  # the estimator's classes_, in order
    assert list(weights.index) == [*NUMERIC, "(intercept)"]
    np.testing.assert_array_equal(weights.iloc[:-1].to_numpy(), model.estimator.coef_.T)
    np.testing.assert_array_equal(weights.iloc[-1].to_numpy(), model.estimator.intercept_)
    assert "positive_class" not in weights.attrs


def test_a_model_trained_with_sql_and_no_preprocessing(folder):
    model = oocml.sql(f"TRAIN sgd_regressor ON '{folder}' PREDICT z FEATURES x0, x1, x2")
    weights = inspection.weights(model)
    assert list(weights.index) == [*NUMERIC, "(intercept)"]
    assert weights.attrs == {"units": "scaled"}  # regressors: no classes, no positive class


# -- original units -------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["y", "kind", "z"])
@pytest.mark.parametrize("scale,encode,impute", [
    ("standard", None, None), ("minmax", None, None), ("maxabs", None, None),
    ("standard", ("onehot", {"max_categories": 3}), "mean"),
    ("minmax", ("hash", {"n_features": 8}), "median"),
])
def test_original_weights_reproduce_the_decision_on_raw_rows(folder, raw, target, scale, encode,
                                                             impute):
    algorithm = "sgd_regressor" if target == "z" else "sgd"
    features = None if encode else NUMERIC
    model = _fit(folder, target, encode=encode, impute=impute, scale=scale, features=features,
                 algorithm=algorithm)
    weights = inspection.weights(model, original_units=True)
    assert weights.attrs["units"] == "original"
    method = "predict" if target == "z" else "decision_function"
    expected = getattr(model.pipeline, method)(raw)
    if encode and encode[0] == "hash":  # hashed columns: the encoder's own output, unscaled
        features_out = model.pipeline[:-1].transform(raw)
        X = np.column_stack([raw[NUMERIC].to_numpy(float),
                             features_out[:, len(NUMERIC):].toarray()])
    else:
        X = _design(raw, list(weights.index[:-1]))
    got = X @ weights.iloc[:-1].to_numpy() + weights.iloc[-1].to_numpy()
    np.testing.assert_allclose(got.reshape(np.shape(expected)), expected, rtol=1e-9, atol=1e-9)
    scaled = inspection.weights(model)
    assert not np.allclose(scaled.loc["x0"], weights.loc["x0"])  # the units did change


def test_a_pca_reduction_cannot_be_undone_per_feature(folder):
    model = oocml.sql(f"TRAIN sgd ON '{folder}' PREDICT y FEATURES x0, x1, x2 SCALE standard "
                      "REDUCE pca 2")
    assert list(inspection.weights(model).index) == ["incrementalpca0", "incrementalpca1",
                                                     "(intercept)"]
    with pytest.raises(ParameterError, match="PCA reduction cannot be undone per feature"):
        inspection.weights(model, original_units=True)


# -- estimators without coef_ ---------------------------------------------------------------------

@pytest.mark.parametrize("algorithm,target,offer", [
    ("naive_bayes", "y", r"theta_, var_.*class_means\(model\)"),
    ("bernoulli_nb", "y", "feature_log_prob_"),
    ("mlp", "y", r"coefs_.*no per-feature weight"),
    ("minibatch_kmeans", None, r"cluster_centers_.*centers\(model\)"),
])
def test_estimators_without_coef_name_what_they_offer(folder, algorithm, target, offer):
    model = _fit(folder, target, features=NUMERIC, scale="minmax", algorithm=algorithm)
    with pytest.raises(ParameterError, match=f"no per-feature weights \\(coef_\\).*{offer}"):
        inspection.weights(model)


def test_class_means_and_variances_of_gaussian_naive_bayes(folder, raw):
    model = _fit(folder, "kind", features=NUMERIC, algorithm="naive_bayes")
    means = inspection.class_means(model, original_units=True)
    assert means.index.name == "class" and list(means.columns) == NUMERIC
    truth = raw.groupby("kind")[NUMERIC]
    np.testing.assert_allclose(means.loc[["high", "low", "mid"]], truth.mean(), rtol=1e-9)
    variances = inspection.class_variances(model, original_units=True)
    np.testing.assert_allclose(variances, truth.var(ddof=0), rtol=1e-6)  # + var_smoothing
    scaled = inspection.class_means(model)
    assert scaled.attrs["units"] == "scaled"
    np.testing.assert_array_equal(scaled.to_numpy(), model.estimator.theta_)
    with pytest.raises(ParameterError, match="naive_bayes"):
        inspection.class_means(_fit(folder, "y", features=NUMERIC))


def test_kmeans_centers_in_scaled_and_original_units(folder):
    model = _fit(folder, None, features=NUMERIC, algorithm="minibatch_kmeans", n_clusters=3)
    scaled = inspection.centers(model)
    assert scaled.index.name == "cluster" and list(scaled.index) == [0, 1, 2]
    np.testing.assert_array_equal(scaled.to_numpy(), model.estimator.cluster_centers_)
    original = inspection.centers(model, original_units=True)
    # The pipeline's own preprocessing takes the original centers back to the scaled ones.
    np.testing.assert_allclose(model.pipeline[:-1].transform(original), scaled, atol=1e-12)
    with pytest.raises(ParameterError, match="minibatch_kmeans"):
        inspection.centers(_fit(folder, "y", features=NUMERIC))


# -- sparkline ------------------------------------------------------------------------------------

def test_sparkline():
    assert inspection.sparkline([]) == ""
    assert inspection.sparkline([1, 4, 8]) == "▁▄█"
    assert inspection.sparkline(pd.Series([0.7, 0.7, 0.7])) == "▄▄▄"
    assert inspection.sparkline([0.2, None, np.nan, 0.4]) == "▁  █"  # missing scores: blanks
    assert inspection.sparkline([None]) == ""
    assert len(inspection.sparkline(np.linspace(0, 1, 8))) == 8
    assert inspection.sparkline(np.linspace(0, 1, 8)) == inspection.SPARKS


# -- plots ----------------------------------------------------------------------------------------

def _curve(y_true: np.ndarray, scores: np.ndarray, label) -> pd.DataFrame:
    """The curve frame of one class (one-vs-rest), from scikit-learn's roc_curve."""
    fpr, tpr, thresholds = roc_curve(y_true, scores)
    positives, negatives = y_true.sum(), len(y_true) - y_true.sum()
    tp, fp = tpr * positives, fpr * negatives
    precision = np.divide(tp, tp + fp, out=np.ones_like(tp), where=(tp + fp) > 0)
    return pd.DataFrame({"class": label, "threshold": thresholds, "tpr": tpr, "fpr": fpr,
                         "precision": precision, "recall": tpr})


def _lines(figure):
    (axes,) = figure.axes
    return {line.get_label(): line for line in axes.get_lines()}


def test_plot_roc_and_pr_of_a_binary_model(folder, raw):
    model = _fit(folder, "y", features=NUMERIC)
    y_true = raw["y"].to_numpy()
    curve = _curve(y_true, model.pipeline.decision_function(raw), 1)
    area = auc(curve["fpr"], curve["tpr"])
    curve.attrs["roc_auc"] = {1: area}
    shuffled = curve.sample(frac=1, random_state=0)  # any row order: drawn by threshold
    shuffled.attrs = curve.attrs
    lines = _lines(plots.plot_roc(shuffled))
    assert set(lines) == {f"1 (AUC = {area:.3f})", "chance"}
    line = lines[f"1 (AUC = {area:.3f})"]
    np.testing.assert_array_equal(line.get_xdata(), curve["fpr"])
    np.testing.assert_array_equal(line.get_ydata(), curve["tpr"])
    np.testing.assert_array_equal(lines["chance"].get_xydata(), [[0, 0], [1, 1]])
    lines = _lines(plots.plot_pr(curve))
    assert set(lines) == {"1"}  # no average_precision in attrs: the class alone
    np.testing.assert_array_equal(lines["1"].get_xdata(), curve["recall"])
    np.testing.assert_array_equal(lines["1"].get_ydata(), curve["precision"])


def test_plot_roc_one_vs_rest_for_a_multiclass_model(folder, raw):
    model = _fit(folder, "kind", features=NUMERIC)
    scores = model.pipeline.decision_function(raw)
    classes = list(model.estimator.classes_)
    curve = pd.concat([_curve((raw["kind"] == c).to_numpy(np.int64), scores[:, i], c)
                       for i, c in enumerate(classes)], ignore_index=True)
    curve.attrs["average_precision"] = {"low": 0.9, "mid": 0.5, "high": 0.8}
    figure = plots.plot_roc(curve)
    assert set(_lines(figure)) == {*classes, "chance"}
    assert "one-vs-rest" in figure.axes[0].get_title()
    labels = set(_lines(plots.plot_pr(curve)))
    assert labels == {"low (AP = 0.900)", "mid (AP = 0.500)", "high (AP = 0.800)"}
    with pytest.raises(ColumnNotFoundError, match="curve column 'precision'"):
        plots.plot_roc(curve.drop(columns="precision"))


def test_plot_confusion_shows_and_annotates_the_counts(folder, raw):
    model = _fit(folder, "kind", features=NUMERIC)
    labels = ["low", "mid", "high"]
    counts = confusion_matrix(raw["kind"], model.pipeline.predict(raw), labels=labels)
    matrix = pd.DataFrame(counts, index=labels, columns=labels)
    figure = plots.plot_confusion(matrix)
    axes = figure.axes[0]
    (image,) = axes.get_images()
    np.testing.assert_array_equal(image.get_array(), counts)
    assert [t.get_text() for t in axes.texts] == [f"{v:,}" for v in counts.ravel()]
    assert [t.get_text() for t in axes.get_xticklabels()] == labels
    assert [t.get_text() for t in axes.get_yticklabels()] == labels
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("predicted", "true")


def test_plot_weights_shows_the_largest_first_without_the_intercept(folder):
    model = _fit(folder, "y", encode=("onehot", {"max_categories": 3}))
    weights = inspection.weights(model, original_units=True)
    figure = plots.plot_weights(weights, top=4)
    (axes,) = figure.axes
    body = weights["weight"].drop("(intercept)")
    expected = body.loc[body.abs().sort_values(ascending=False).index[:4]]
    bars = [patch.get_width() for patch in axes.patches]
    np.testing.assert_array_equal(bars[::-1], expected.to_numpy())  # largest drawn at the top
    assert [t.get_text() for t in axes.get_yticklabels()][::-1] == list(expected.index)
    assert "(intercept)" not in [t.get_text() for t in axes.get_yticklabels()]
    assert figure.get_suptitle() == "Top 4 weights by |weight| (original units)"
    everything = plots.plot_weights(weights, top=100)
    assert len(everything.axes[0].patches) == len(body)
    with pytest.raises(ParameterError, match="top must be a whole number"):
        plots.plot_weights(weights, top=0)


def test_plot_weights_one_panel_per_class(folder):
    weights = inspection.weights(_fit(folder, "kind", features=NUMERIC))
    figure = plots.plot_weights(weights, top=2)
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title() for axes in panels] == ["high", "low", "mid"]
    for axes, column in zip(panels, weights.columns):
        body = weights[column].drop("(intercept)")
        top = body.loc[body.abs().sort_values(ascending=False).index[:2]]
        np.testing.assert_array_equal([p.get_width() for p in axes.patches][::-1], top)
    assert "scaled units" in figure.get_suptitle()


def test_plot_history_draws_the_scores_per_epoch(folder, tmp_path):
    model = _fit(folder, "y", features=NUMERIC, epochs=3, holdout=0.2)
    history = model.history_
    lines = list(_lines(plots.plot_history(history)).values())
    assert len(lines) == 2
    for line, column in zip(lines, ["progressive_score", "holdout_score"]):
        np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
        np.testing.assert_array_equal(line.get_ydata(), history[column])
    with pytest.raises(ParameterError, match="holdout"):
        plots.plot_history(history[["epoch", "rows"]])
    assert inspection.sparkline(history["holdout_score"]).strip()
    path = plots.save(plots.plot_history(history), tmp_path / "plots" / "history.png")
    with open(path, "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plots_without_matplotlib_name_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    matrix = pd.DataFrame([[1, 2], [3, 4]], index=[0, 1], columns=[0, 1])
    with pytest.raises(OocmlError, match=r'pip install "oocml\[plot\]"'):
        plots.plot_confusion(matrix)
