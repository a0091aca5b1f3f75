"""Every algorithm of the registry, through both faces: same model, sensible scores, all verbs."""

from __future__ import annotations

import warnings

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import oocml
from oocml.estimators import ALGORITHMS, is_boosted

FLOOR = {"classification": 0.75, "regression": 0.5}  # accuracy / R^2 on the generated tasks
SCALING = {"multinomial_nb": "minmax"}  # counts-like models need non-negative features


def _fitted_state(estimator) -> list[np.ndarray]:
    if is_boosted(estimator):  # the booster, byte for byte
        return [np.frombuffer(bytes(estimator.get_booster().save_raw("ubj")), dtype=np.uint8)]
    names = sorted(k for k in vars(estimator) if k.endswith("_") and not k.startswith("_"))
    values = [getattr(estimator, k) for k in names]
    arrays = [v for v in values if isinstance(v, np.ndarray) and v.dtype != object]
    for v in values:
        if isinstance(v, list) and v and isinstance(v[0], np.ndarray):  # MLP coefs_
            arrays.extend(v)
    return arrays


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_each_algorithm_through_both_faces(name, binary_dir, regression_dir, tmp_path):
    algo = ALGORITHMS[name]
    folder = regression_dir if algo.task == "regression" else binary_dir
    scaling = SCALING.get(name, "standard")
    epochs = 1 if algo.qualname.startswith("oocml.boosting") else 2  # trees: rounds, not epochs
    target = "" if algo.task == "clustering" else " PREDICT y"
    features = " FEATURES * EXCLUDE (y)" if algo.task == "clustering" else ""
    session = oocml.Session()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # e.g. no PassiveAggressive deprecation
        via_sql = session.sql(f"TRAIN {name} ON '{folder}'{target}{features} SCALE {scaling} "
                              f"EPOCHS {epochs} AS m")
    chain = dd.read_parquet(folder).ml
    chain = chain.select(exclude=["y"]) if algo.task == "clustering" else chain
    via_accessor = chain.scale(scaling).fit_incremental(
        name, target=None if algo.task == "clustering" else "y", epochs=epochs)
    assert type(via_sql.estimator) is type(via_accessor.estimator)
    for ours, theirs in zip(_fitted_state(via_sql.estimator), _fitted_state(via_accessor.estimator),
                            strict=True):
        np.testing.assert_array_equal(ours, theirs)

    metrics = session.sql(f"EVALUATE m ON '{folder}'").set_index("metric")["value"]
    if algo.task == "clustering":
        assert metrics["inertia"] > 0
        silhouette = metrics[[k for k in metrics.index if k.startswith("silhouette")][0]]
        assert 0.0 < silhouette <= 1.0
    else:
        assert metrics["accuracy" if algo.task == "classification" else "r2"] > FLOOR[algo.task]

    predicted = session.sql(f"PREDICT USING m ON '{folder}'")
    assert isinstance(predicted, dd.DataFrame)
    frame = pd.read_parquet(folder)
    np.testing.assert_array_equal(predicted["prediction"].compute().to_numpy(),
                                  via_sql.pipeline.predict(frame[via_sql.feature_names]))
    session.sql(f"SAVE MODEL m TO '{tmp_path / 'm.oocml'}'")
    loaded = oocml.load_model(tmp_path / "m.oocml")
    np.testing.assert_array_equal(loaded.pipeline.predict(frame.head(50)),
                                  via_sql.pipeline.predict(frame.head(50)))


def test_show_algorithms_lists_task_and_parameters():
    table = oocml.Session().sql("SHOW ALGORITHMS").set_index("name")
    assert set(table.index) == set(ALGORITHMS)
    assert table.loc["minibatch_kmeans", "task"] == "clustering"
    assert "alpha" in table.loc["sgd", "parameters"]
    assert "hidden_layer_sizes" in table.loc["mlp", "parameters"]


def test_any_sklearn_partial_fit_class_by_its_path(binary_dir):
    model = oocml.Session().sql(f"TRAIN sklearn.linear_model.SGDClassifier ON '{binary_dir}' "
                                "PREDICT y SCALE standard")
    assert type(model.estimator).__name__ == "SGDClassifier"
    with pytest.raises(oocml.OocmlError, match="scikit-learn"):
        oocml.Session().sql(f"TRAIN os.system ON '{binary_dir}' PREDICT y")
