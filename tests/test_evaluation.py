"""Inspecting a model's quality out-of-core: AUC and average precision, curves, the confusion
matrix, per-class report and residual quantiles, from one parallel pass of mergeable
totals, equal (or within 0.002 for the binned curves) to scikit-learn in memory."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.preprocessing import label_binarize

import oocml
from oocml.errors import ParameterError

PENGUIN_FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
                    "island", "sex"]


@pytest.fixture(scope="module")
def penguins_dir(tmp_path_factory):
    """The Palmer penguins (real data: strings, missing values) as four parquet files, the
    rows with a species and sex only, and a binary target (Adelie or not)."""
    from palmerpenguins import load_penguins

    frame = load_penguins().dropna(subset=["species", "sex"]).reset_index(drop=True)
    frame["adelie"] = (frame["species"] == "Adelie").astype(int)
    folder = tmp_path_factory.mktemp("penguins")
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 4)):
        frame.iloc[rows].to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


def _train(folder, target: str, loss: str = "log_loss", epochs: int = 5) -> oocml.Model:
    return oocml.sql(f"TRAIN sgd ON '{folder}' PREDICT {target} FEATURES "
                     f"{', '.join(PENGUIN_FEATURES)} IMPUTE mean ENCODE onehot SCALE standard "
                     f"WITH (loss = '{loss}') EPOCHS {epochs}")


def _in_memory(model: oocml.Model, folder) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.read_parquet(folder)
    return frame, frame[model.target].to_numpy()


@pytest.mark.parametrize("loss", ["log_loss", "hinge"])  # probabilities, decision values
def test_binary_auc_and_average_precision_match_sklearn(penguins_dir, loss):
    model = _train(penguins_dir, "adelie", loss)
    got = model.evaluate(dd.read_parquet(penguins_dir)).set_index("metric")["value"]
    frame, y = _in_memory(model, penguins_dir)
    method = "predict_proba" if loss == "log_loss" else "decision_function"
    scores = getattr(model.pipeline, method)(frame[model.features])
    scores = scores[:, 1] if scores.ndim == 2 else scores
    assert abs(got["roc_auc"] - metrics.roc_auc_score(y, scores)) < 0.002
    assert abs(got["average_precision"] - metrics.average_precision_score(y, scores)) < 0.002
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(y, model.pipeline.predict(
        frame[model.features])))


def test_multiclass_one_vs_rest_and_the_per_class_report(penguins_dir):
    model = _train(penguins_dir, "species")
    data = dd.read_parquet(penguins_dir)
    frame, y = _in_memory(model, penguins_dir)
    proba = model.pipeline.predict_proba(frame[model.features])
    predicted = model.pipeline.predict(frame[model.features])
    got = model.evaluate(data).set_index("metric")["value"]
    assert abs(got["roc_auc"] - metrics.roc_auc_score(y, proba, multi_class="ovr")) < 0.002
    binary = label_binarize(y, classes=model.classes)
    assert abs(got["average_precision"] - metrics.average_precision_score(binary, proba)) < 0.002
    report = model.evaluate(data, by_class=True).set_index("class")
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y, predicted, labels=model.classes, zero_division=0)
    np.testing.assert_allclose(report["precision"], precision)
    np.testing.assert_allclose(report["recall"], recall)
    np.testing.assert_allclose(report["f1"], f1)
    np.testing.assert_array_equal(report["support"], support)
    for i, label in enumerate(model.classes):
        assert abs(report.loc[label, "roc_auc"]
                   - metrics.roc_auc_score(y == label, proba[:, i])) < 0.002
    session = oocml.Session()  # the language gives the same tables
    session.catalog.put("m", model)
    matrix = session.sql(f"EVALUATE CONFUSION m ON '{penguins_dir}'")
    np.testing.assert_array_equal(matrix.iloc[:, 1:].to_numpy(), metrics.confusion_matrix(
        y, predicted, labels=model.classes))
    assert list(matrix.columns) == ["true \\ predicted", *model.classes]
    assert list(matrix.iloc[:, 0]) == model.classes
    pd.testing.assert_frame_equal(model.confusion(data).rename_axis(
        index="true \\ predicted", columns=None).reset_index(), matrix)
    by_class = session.sql(f"EVALUATE m ON '{penguins_dir}' BY CLASS")
    pd.testing.assert_frame_equal(by_class, report.reset_index())


def test_the_curve_table(penguins_dir):
    model = _train(penguins_dir, "adelie")
    session = oocml.Session()
    session.catalog.put("m", model)
    curve = session.sql(f"EVALUATE CURVE m ON '{penguins_dir}'")
    assert list(curve.columns) == ["class", "threshold", "tpr", "fpr", "precision", "recall"]
    assert curve["threshold"].is_monotonic_decreasing
    assert curve["tpr"].is_monotonic_increasing and curve["fpr"].is_monotonic_increasing
    assert curve["tpr"].iloc[-1] == curve["fpr"].iloc[-1] == 1.0
    area = np.sum(np.diff(np.r_[0, curve["fpr"]]) * (np.r_[0, curve["tpr"]][1:]
                                                     + np.r_[0, curve["tpr"]][:-1]) / 2)
    frame, y = _in_memory(model, penguins_dir)
    expected = metrics.roc_auc_score(y, model.pipeline.predict_proba(frame[model.features])[:, 1])
    assert abs(area - expected) < 0.002 and abs(curve.attrs["roc_auc"][1] - expected) < 0.002


def test_residual_quantiles_of_a_regressor(regression, regression_dir):
    model = regression.ml.scale().fit_incremental("sgd_regressor", target="y")
    table = model.residuals(regression)
    frame = pd.read_parquet(regression_dir)
    residual = frame["y"] - model.pipeline.predict(frame[model.features])
    expected = np.quantile(residual, table["quantile"])
    spread = np.quantile(residual, 0.99) - np.quantile(residual, 0.01)
    assert np.all(np.abs(table["residual"] - expected) < 0.01 * spread)
    session = oocml.Session()
    session.catalog.put("r", model)
    assert session.sql(f"EVALUATE RESIDUALS r ON '{regression_dir}'").equals(table)


def test_views_that_do_not_fit_the_model_say_what_does(regression, binary):
    regressor = regression.ml.fit_incremental("sgd_regressor", target="y")
    for view in (regressor.confusion, regressor.curve):
        with pytest.raises(ParameterError, match="for classifiers.*EVALUATE RESIDUALS"):
            view(regression)
    with pytest.raises(ParameterError, match="for classifiers"):
        regressor.evaluate(regression, by_class=True)
    classifier = binary.ml.fit_incremental("sgd", target="y")
    with pytest.raises(ParameterError, match="residuals are a regressor's"):
        classifier.residuals(binary)
    with pytest.raises(oocml.errors.ColumnNotFoundError, match="target column 'y'"):
        classifier.curve(binary[["x0", "x1", "x2", "x3", "x4", "x5"]])


def test_a_class_absent_from_the_evaluation_data_is_reported(multiclass, multiclass_dir):
    model = multiclass.ml.fit_incremental("sgd", target="y", loss="log_loss")
    frame = pd.read_parquet(multiclass_dir)
    only_two = dd.from_pandas(frame[frame["y"] != model.classes[0]], npartitions=3)
    report = model.evaluate(only_two, by_class=True).set_index("class")
    assert report.loc[model.classes[0], "support"] == 0
    assert np.isnan(report.loc[model.classes[0], "roc_auc"])
    table = model.evaluate(only_two).set_index("metric")["value"]
    assert 0 < table["roc_auc"] <= 1  # the mean over the classes present


@pytest.mark.cluster
@pytest.mark.slow
def test_the_views_on_a_cluster_equal_local(client, binary, binary_dir):
    import dask

    with dask.config.set(scheduler="sync"):
        model = binary.ml.scale().fit_incremental("sgd", target="y", loss="log_loss")
        local = (model.evaluate(binary), model.curve(binary), model.confusion(binary))
    on_cluster = (model.evaluate(binary), model.curve(binary), model.confusion(binary))
    for a, b in zip(local, on_cluster):
        pd.testing.assert_frame_equal(a, b)


def test_show_weights_and_the_plots_from_every_face(penguins_dir, tmp_path):
    import io

    from oocml.cli.repl import Shell

    session = oocml.Session()
    model = session.sql(f"TRAIN sgd ON '{penguins_dir}' PREDICT adelie FEATURES "
                        f"{', '.join(PENGUIN_FEATURES)} IMPUTE mean ENCODE onehot SCALE standard "
                        "WITH (loss = 'log_loss') EPOCHS 3 HOLDOUT 0.2 AS m")
    weights = session.sql("SHOW WEIGHTS m").set_index("feature")
    pd.testing.assert_frame_equal(weights, model.weights(), check_names=False)
    assert "island=Biscoe" in weights.index and weights.index[-1] == "(intercept)"
    np.testing.assert_allclose(weights["weight"].iloc[:-1], model.estimator.coef_[0])
    figure = model.plot_roc(dd.read_parquet(penguins_dir))
    (line, *_) = figure.axes[0].get_lines()
    curve = model.curve(dd.read_parquet(penguins_dir))
    np.testing.assert_allclose(np.sort(line.get_xdata())[-1], curve["fpr"].max())
    out, err = io.StringIO(), io.StringIO()
    shell = Shell(session, out, err)
    for view, source in [("roc", f"'{penguins_dir}'"), ("pr", f"'{penguins_dir}'"),
                         ("confusion", f"'{penguins_dir}'"), ("weights", ""),
                         ("history", "")]:
        path = tmp_path / f"{view}.png"
        assert shell.run(f"\\plot {view} m {source} '{path}'"), err.getvalue()
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not shell.run(f"\\plot roc m '{tmp_path / 'x.png'}'")  # ROC needs a source
    assert "usage" in err.getvalue().lower() or "\\plot" in err.getvalue()
    described = session.sql("DESCRIBE m").set_index("property")["value"]
    assert described["learning curve"].startswith(("▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"))
    scores = [e["holdout_score"] for e in model.report.history]
    assert list(model.history_["holdout_score"]) == scores  # the DSL and history_ agree


def test_describe_data_is_the_profile(penguins_dir):
    profiled = dd.read_parquet(penguins_dir).ml.profile()
    pd.testing.assert_frame_equal(oocml.sql(f"DESCRIBE DATA '{penguins_dir}'"), profiled)
    species = profiled.set_index("column").loc["species"]
    assert species["distinct"] == 3 and species["top"].startswith("Adelie (146)")
