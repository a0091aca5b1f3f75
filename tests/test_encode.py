"""ENCODE onehot|ordinal|hash / .encode(): categories from the one fused statistics pass."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import OneHotEncoder
from test_engine import READS, counted_frame  # tests/ is on sys.path (rootdir conftest)

import oocml
import oocml.encoding
from oocml.errors import DataError, OocmlSyntaxError, ParameterError

CITIES = ["paris", "rome", "oslo", "lima", "kyiv", "bern", "riga"]
WEIGHTS = np.array([30, 22, 16, 12, 9, 7, 4]) / 100  # distinct frequencies: a clear top-k


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(CITIES, rows, p=WEIGHTS)
    plan = rng.choice(["free", "pro", "team"], rows)
    x = rng.normal(size=rows)
    effect = pd.Series(city).map({"paris": 1.5, "rome": -1.5, "oslo": 0.8}).fillna(0).to_numpy()
    y = (x + effect + (plan == "pro") + rng.normal(scale=0.3, size=rows) > 0.5).astype(np.int64)
    frame = pd.DataFrame({"x": x, "city": pd.Series(city, dtype="string"),
                          "plan": pd.Categorical(plan), "y": y})
    frame.loc[frame.index % 50 == 0, "city"] = pd.NA  # missing categories go to the other bucket
    return frame


@pytest.fixture(scope="module")
def shops_dir(tmp_path_factory):
    """Strings, a pandas categorical, and a dictionary-encoded parquet column, in 4 files."""
    folder = tmp_path_factory.mktemp("shops")
    for i in range(4):
        table = pa.Table.from_pandas(_frame(6_000, seed=i), preserve_index=False)
        position = table.schema.get_field_index("city")
        table = table.set_column(position, "city", table.column("city").dictionary_encode())
        pq.write_table(table, folder / f"part-{i}.parquet")
    return folder


def _truth(folder) -> pd.DataFrame:
    return pd.read_parquet(folder)


@pytest.mark.parametrize("method,params", [("onehot", {"max_categories": 4}), ("ordinal", {}),
                                           ("hash", {"n_features": 32})])
def test_the_plain_pipeline_predicts_as_the_model_does(shops_dir, method, params, tmp_path):
    data = dd.read_parquet(shops_dir)
    model = data.ml.encode(method, **params).scale().fit_incremental(SGDClassifier, target="y")
    frame = _truth(shops_dir)
    on_dask = model.predict(data).compute().to_numpy()
    np.testing.assert_array_equal(model.pipeline.predict(frame), on_dask)
    # Ordinal codes are not scaled (encoded columns never are): a poor fit for a linear model.
    assert model.score(data) > {"onehot": 0.8, "ordinal": 0.6, "hash": 0.8}[method]
    path = model.save(tmp_path / f"{method}.oocml")
    again = oocml.load_model(path)
    np.testing.assert_array_equal(again.pipeline.predict(frame), on_dask)


def test_onehot_keeps_the_most_frequent_categories_like_sklearn(shops_dir):
    model = dd.read_parquet(shops_dir).ml.encode("onehot", max_categories=3).fit_incremental(
        SGDClassifier, target="y")
    encoder = model.pipeline.named_steps["features"].named_transformers_["onehot"]
    frame = _truth(shops_dir)
    reference = OneHotEncoder(max_categories=4, handle_unknown="infrequent_if_exist").fit(
        frame[["city", "plan"]].astype(object).fillna("missing"))
    assert set(encoder.categories_[0]) - {oocml.encoding.OTHER} == set(
        c for c in reference.categories_[0] if c not in reference.infrequent_categories_[0])
    assert list(encoder.categories_[1]) == ["free", "pro", "team"]  # three values: no other bucket
    # A rare city, an unseen one and a missing one all land in the one "infrequent" column.
    rows = pd.DataFrame({"x": 0.0, "city": ["riga", "tokyo", None, "paris"], "plan": "pro"})
    encoded = model.pipeline[:-1].transform(rows)
    names = list(model.pipeline[:-1].get_feature_names_out())
    other = names.index("city_infrequent_sklearn")
    assert encoded[:3, other].tolist() == [1.0, 1.0, 1.0] and encoded[3, other] == 0.0


def test_encoding_adds_no_pass_over_the_data(shops_dir):
    frame = counted_frame(shops_dir)
    frame.ml.encode("onehot").scale().fit_incremental(SGDClassifier, target="y")
    assert len(READS) == 4 * 2


def test_ordinal_numbers_values_and_unseen_is_minus_one(shops_dir):
    model = dd.read_parquet(shops_dir).ml.encode("ordinal").fit_incremental(
        SGDClassifier, target="y")
    rows = pd.DataFrame({"x": 0.0, "city": ["bern", "tokyo", None], "plan": ["free", "pro", "vip"]})
    encoded = model.pipeline[:-1].transform(rows)
    assert encoded[:, 1].tolist() == [sorted(CITIES).index("bern"), -1, -1]
    assert encoded[:, 2].tolist() == [0, 1, -1]


def test_hash_is_stateless_sparse_and_deterministic(shops_dir):
    data = dd.read_parquet(shops_dir)
    model = data.ml.encode("hash", n_features=64).fit_incremental(SGDClassifier, target="y")
    encoded = model.pipeline[:-1].transform(_truth(shops_dir).head(100))
    assert encoded.shape == (100, 1 + 64) and hasattr(encoded, "tocsr")
    encoder = oocml.encoding.HashEncoder(n_features=64).fit(pd.DataFrame({"a": ["u"], "b": ["u"]}))
    first = encoder.transform(pd.DataFrame({"a": ["u", "v"], "b": ["u", "v"]})).toarray()
    assert (first != 0).sum(axis=1).tolist() == [2, 2]  # the same value lands apart per column
    assert not np.array_equal(encoder.transform(pd.DataFrame({"a": ["u"], "b": ["w"]})).toarray(),
                              encoder.transform(pd.DataFrame({"a": ["w"], "b": ["u"]})).toarray())
    again = data.ml.encode("hash", n_features=64).fit_incremental(SGDClassifier, target="y")
    np.testing.assert_array_equal(model.estimator.coef_, again.estimator.coef_)


def test_language_and_accessor_agree(shops_dir):
    session = oocml.Session()
    via_sql = session.sql(f"TRAIN sgd ON '{shops_dir}' PREDICT y ENCODE onehot 4 IMPUTE mean "
                          "SCALE standard AS shops")
    via_accessor = dd.read_parquet(shops_dir).ml.impute().encode("onehot", max_categories=4).scale(
    ).fit_incremental(SGDClassifier, target="y")
    np.testing.assert_array_equal(via_sql.estimator.coef_, via_accessor.estimator.coef_)
    described = session.sql("DESCRIBE shops").set_index("property")["value"]
    assert described["step onehot"] == "OneHotEncoder categories=city: 5, plan: 3"
    hashed = session.sql(f"TRAIN sgd ON '{shops_dir}' PREDICT y ENCODE hash 16")
    assert hashed.pipeline[:-1].transform(_truth(shops_dir).head(3)).shape == (3, 17)
    explained = session.sql(f"EXPLAIN TRAIN sgd ON '{shops_dir}' PREDICT y ENCODE ordinal")
    assert ".encode('ordinal')" in explained


def test_encoding_errors(shops_dir, monkeypatch):
    data = dd.read_parquet(shops_dir)
    with pytest.raises(DataError, match=r"'city'.*ENCODE onehot"):
        data.ml.scale().fit_incremental(SGDClassifier, target="y")
    with pytest.raises(ParameterError, match="takes no parameter 'n_features'"):
        data.ml.encode("onehot", n_features=8)
    with pytest.raises(ParameterError, match="unknown encoding"):
        data.ml.encode("binary")
    with pytest.raises(OocmlSyntaxError, match="ENCODE ordinal takes no number"):
        oocml.Session().sql("TRAIN sgd ON t PREDICT y ENCODE ordinal 3", t=data)
    monkeypatch.setattr(oocml.encoding, "MAX_DISTINCT", 4)
    with pytest.raises(DataError, match="'city' has more than 4 distinct values: use ENCODE hash"):
        data.ml.encode("onehot").fit_incremental(SGDClassifier, target="y")


def test_reduce_pca_has_its_own_pass_and_matches_sklearn(binary_dir):
    from sklearn.decomposition import IncrementalPCA
    from sklearn.preprocessing import StandardScaler

    frame = counted_frame(binary_dir)
    model = frame.ml.scale().reduce("pca", n_components=3).fit_incremental(SGDClassifier, target="y")
    assert len(READS) == 6 * 3 and model.report.passes == 3
    pca = model.pipeline.named_steps["reduce"]
    truth = pd.read_parquet(binary_dir)
    X = StandardScaler().fit_transform(truth[model.feature_names])
    reference = IncrementalPCA(n_components=3)
    for start in range(0, len(X), 5_000):  # the same blocks: one per file of 5,000 rows
        reference.partial_fit(X[start:start + 5_000])
    np.testing.assert_allclose(np.abs(pca.components_), np.abs(reference.components_), atol=1e-8)
    assert model.pipeline[:-1].transform(truth.head(4)).shape == (4, 3)
    via_sql = oocml.Session().sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard "
                                  "REDUCE pca 3")
    np.testing.assert_array_equal(via_sql.estimator.coef_, model.estimator.coef_)
    explained = oocml.Session().sql(f"EXPLAIN TRAIN sgd ON '{binary_dir}' PREDICT y REDUCE pca 3")
    assert "2. pca projection: IncrementalPCA(n_components=3)" in explained
    with pytest.raises(ParameterError, match="must be the last step"):
        frame.ml.reduce("pca", n_components=2).scale().fit_incremental(SGDClassifier, target="y")
