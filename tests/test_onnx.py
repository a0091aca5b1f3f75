"""ONNX export: every registry algorithm and every convertible step, run by onnxruntime on
held-out rows, predicts what the Model predicts; what cannot be exported is refused."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import oocml
from oocml.datasets import make_parquet_dataset
from oocml.errors import ModelFileError, ParameterError
from oocml.estimators import ALGORITHMS
from oocml.export import onnx_inputs, opset

onnxruntime = pytest.importorskip("onnxruntime", reason="the onnx extra: pip install 'oocml[onnx]'")
pytest.importorskip("skl2onnx", reason="the onnx extra: pip install 'oocml[onnx]'")

# Numbers enter the graph as float64 and every converter used computes in float64, so the
# graph agrees with scikit-learn to rounding. BernoulliNB is the loosest: skl2onnx regroups
# its log-likelihood as X.(log p - log(1-p)) + sum(log(1-p)), about 1e-9 apart.
# Boosted trees compare and add in float32, as XGBoost does, but in another order: ~1e-7 apart.
TOLERANCE = {"bernoulli_nb": 1e-8, "xgboost": 1e-5, "xgboost_regressor": 1e-5}
EXACT = 1e-12
CITIES = ["paris", "rome", "oslo", "lima", "kyiv", "bern"]


def _with_city(folder, seed: int, unseen: bool = False) -> pd.DataFrame:
    """The generated rows plus a string column with missing (and, held out, unseen) values
    and missing numbers in x1: what IMPUTE and ENCODE are for."""
    frame = pd.read_parquet(folder)
    rng = np.random.default_rng(seed)
    city = rng.choice(CITIES, len(frame), p=[0.35, 0.25, 0.2, 0.1, 0.06, 0.04]).astype(object)
    city[::23] = None
    if unseen:
        city[5::31] = "tokyo"
    frame["city"] = pd.Series(city, dtype="string")
    frame.loc[frame.index % 19 == 0, "x1"] = np.nan
    return frame


def _dataset(tmp_path_factory, name: str, **options) -> tuple[str, pd.DataFrame]:
    """A parquet folder to train on, and held-out rows of the same task (``sample=1``)."""
    raw, held = tmp_path_factory.mktemp(f"{name}_raw"), tmp_path_factory.mktemp(f"{name}_held")
    make_parquet_dataset(raw, rows=6_000, features=4, files=3, **options)
    make_parquet_dataset(held, rows=400, features=4, files=1, sample=1, **options)
    folder = tmp_path_factory.mktemp(name)
    train = _with_city(raw, seed=1)
    for i, part in enumerate(np.array_split(np.arange(len(train)), 3)):
        train.iloc[part].to_parquet(folder / f"part-{i}.parquet", index=False)
    return str(folder), _with_city(held, seed=2, unseen=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return {"classification": _dataset(tmp_path_factory, "multiclass", n_classes=3, seed=4),
            "regression": _dataset(tmp_path_factory, "regression", task="regression", seed=5,
                                   noise=0.1),
            "binary": _dataset(tmp_path_factory, "binary", seed=6)}


def _run(model, frame: pd.DataFrame, graph=None) -> dict[str, np.ndarray]:
    graph = model.to_onnx() if graph is None else graph
    session = onnxruntime.InferenceSession(graph.SerializeToString())
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, onnx_inputs(model, frame)), strict=True))


def _check(model, frame: pd.DataFrame, tolerance: float = EXACT) -> dict[str, np.ndarray]:
    """The graph's outputs against the Model's own predictions on ``frame``."""
    out = _run(model, frame)
    close = {"rtol": tolerance, "atol": tolerance}
    if model.task == "regression":
        np.testing.assert_allclose(out["variable"].ravel(), model.predict(frame), **close)
        return out
    np.testing.assert_array_equal(out["label"].ravel(), model.predict(frame).to_numpy())
    if model.task == "clustering":
        distances = model.pipeline.transform(frame[model.features])
        np.testing.assert_allclose(out["scores"], distances, **close)
    elif hasattr(model.pipeline, "predict_proba"):
        np.testing.assert_allclose(out["probabilities"], model.predict_proba(frame), **close)
    else:  # hinge losses, the perceptron: skl2onnx's "probabilities" are the decision scores
        scores = np.asarray(model.decision_function(frame))
        np.testing.assert_allclose(out["probabilities"][:, -1] if scores.ndim == 1
                                   else out["probabilities"], scores, **close)
    return out


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_every_registry_algorithm_exports_exactly(data, algorithm):
    task = ALGORITHMS[algorithm].task
    folder, held = data["regression" if task == "regression" else "classification"]
    target = None if task == "clustering" else "y"
    scale = "minmax" if algorithm == "multinomial_nb" else "standard"  # counts are non-negative
    chain = dd.read_parquet(folder).ml.impute("mean").scale(scale).encode("onehot", max_categories=3)
    model = chain.fit_incremental(algorithm, target, progress=False)
    assert held["city"].isna().any() and (held["city"] == "tokyo").any()
    out = _check(model, held, TOLERANCE.get(algorithm, EXACT))
    assert len(out["variable" if task == "regression" else "label"]) == len(held)


STEPS = ["IMPUTE mean", "IMPUTE median", "IMPUTE zero", "IMPUTE mean SCALE standard",
         "IMPUTE median SCALE minmax", "IMPUTE zero SCALE maxabs", "IMPUTE mean ENCODE onehot 3",
         "IMPUTE mean ENCODE onehot", "IMPUTE mean ENCODE ordinal",
         "IMPUTE median SCALE standard REDUCE pca 3",
         "IMPUTE mean SCALE standard ENCODE onehot 2 REDUCE pca 4"]


@pytest.mark.parametrize("steps", STEPS)
def test_every_convertible_step_through_the_language(data, steps):
    folder, held = data["binary"]
    features = "" if "ENCODE" in steps else "FEATURES * EXCLUDE (city)"
    model = oocml.sql(f"TRAIN sgd ON '{folder}' PREDICT y {features} {steps} "
                      "WITH (loss = 'log_loss') EPOCHS 2")
    _check(model, held)


def test_regression_steps_and_an_mlp(data):
    folder, held = data["regression"]
    model = oocml.sql(f"TRAIN mlp_regressor ON '{folder}' PREDICT y IMPUTE median SCALE standard "
                      "ENCODE ordinal REDUCE pca 3 WITH (hidden_layer_sizes = 8)")
    _check(model, held)


def test_string_labels_come_out_as_strings(data):
    folder, held = data["binary"]
    frame = pd.read_parquet(folder).assign(y=lambda f: f["y"].map({0: "no", 1: "yes"}))
    model = oocml.sql("TRAIN naive_bayes ON t PREDICT y IMPUTE mean ENCODE onehot", t=frame)
    out = _check(model, held)
    assert set(out["label"].ravel()) <= {"no", "yes"}


def test_the_graph_says_its_opset_and_the_export_changes_nothing_in_the_model(data):
    folder, _ = data["binary"]
    model = oocml.sql(f"TRAIN perceptron ON '{folder}' PREDICT y FEATURES * EXCLUDE (city) "
                      "IMPUTE zero")
    before = model.report
    graph = model.to_onnx()
    assert opset(graph) >= 13 and model.report == before
    assert [i.name for i in graph.graph.input] == model.features


def test_the_hash_encoder_is_refused_with_an_alternative(data, tmp_path):
    folder, _ = data["binary"]
    model = dd.read_parquet(folder).ml.impute("mean").encode("hash", n_features=16).fit_incremental(
        "sgd", "y", progress=False)
    with pytest.raises(ParameterError, match=r"HashEncoder.*ENCODE hash.*ENCODE onehot / ordinal"):
        model.to_onnx()
    with pytest.raises(ParameterError, match="ENCODE onehot"):
        model.save(tmp_path / "hashed.onnx")
    assert not (tmp_path / "hashed.onnx").exists()  # refused before anything is written


def test_what_has_no_exact_graph_is_refused_naming_the_step(data):
    folder, _ = data["binary"]
    frame = pd.read_parquet(folder).drop(columns="x1")
    birch = frame.ml.select(exclude=["city", "y"]).fit_incremental("sklearn.cluster.Birch",
                                                                  progress=False)
    with pytest.raises(ParameterError, match=r"'model' \(Birch\) has no ONNX converter.*"
                                             "model.pipeline"):
        birch.to_onnx()
    blank = frame.assign(city=frame["city"].fillna(""))  # "" would be a missing value
    model = oocml.sql("TRAIN sgd ON t PREDICT y ENCODE ordinal", t=blank)
    with pytest.raises(ParameterError, match="empty string as a category"):
        model.to_onnx()


def test_save_model_to_onnx_through_the_language(data, tmp_path):
    folder, held = data["binary"]
    session = oocml.Session()
    session.sql(f"TRAIN sgd ON '{folder}' PREDICT y IMPUTE median SCALE standard ENCODE onehot 3 "
                "WITH (loss = 'log_loss') AS m")
    path = tmp_path / "m.onnx"
    assert session.sql(f"SAVE MODEL m TO '{path}'") == str(path)
    model = session.catalog.get("m")
    loaded = onnxruntime.InferenceSession(str(path))
    labels, proba = loaded.run(["label", "probabilities"], onnx_inputs(model, held))
    np.testing.assert_array_equal(labels, model.predict(held).to_numpy())
    np.testing.assert_allclose(proba, model.predict_proba(held), rtol=EXACT, atol=EXACT)

    before = path.read_bytes()
    with pytest.raises(ModelFileError, match="already exists.*OVERWRITE"):
        session.sql(f"SAVE MODEL m TO '{path}'")
    assert path.read_bytes() == before
    session.sql(f"TRAIN OR REPLACE perceptron ON '{folder}' PREDICT y FEATURES * EXCLUDE (city) "
                "IMPUTE zero AS m")
    session.sql(f"SAVE MODEL m TO '{path}' OVERWRITE")
    replaced = onnxruntime.InferenceSession(str(path))
    assert [i.name for i in replaced.get_inputs()] == [f"x{i}" for i in range(4)]


def test_other_paths_still_save_skops_files(data, tmp_path):
    folder, held = data["binary"]
    model = oocml.sql(f"TRAIN sgd ON '{folder}' PREDICT y FEATURES * EXCLUDE (city, x1)")
    path = model.save(tmp_path / "m.oocml")
    np.testing.assert_array_equal(oocml.load_model(path).predict(held), model.predict(held))
    with pytest.raises(ModelFileError, match="already exists"):
        model.save(path)
