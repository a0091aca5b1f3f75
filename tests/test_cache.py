"""The prepared-block cache: later epochs read the blocks the first one prepared, the model is
the same bit for bit with and without it, a change of data or preparation is a new cache,
and every fault falls back to the source without changing the model."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import oocml
from oocml.engine import stream
from oocml.engine.cache import CacheWarning


@pytest.fixture
def source_reads(monkeypatch):
    """How many partitions were prepared from the source (the cache's misses)."""
    calls = {"n": 0}
    real = stream.raw_blocks

    def counted(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(stream, "raw_blocks", counted)
    return calls


def _coef(model: oocml.Model) -> np.ndarray:
    return np.concatenate([model.estimator.coef_.ravel(), model.estimator.intercept_.ravel()])


@pytest.mark.parametrize("options", [
    {"epochs": 3, "shuffle": True},
    {"epochs": 3, "shuffle": True, "holdout": 0.2, "patience": 1},
    {"epochs": 2, "loss": "log_loss"},
])
def test_later_epochs_read_the_cache_and_the_model_is_the_same(binary, source_reads, options):
    without = binary.ml.scale().fit_incremental("sgd", target="y", cache=False, **options)
    assert source_reads["n"] == 6 * without.report.epochs
    source_reads["n"] = 0
    cached = binary.ml.scale().fit_incremental("sgd", target="y", cache=True, **options)
    assert source_reads["n"] == 6  # the first epoch only
    np.testing.assert_array_equal(_coef(cached), _coef(without))
    assert cached.report.history[-1]["rows"] == without.report.history[-1]["rows"]


def test_string_labels_multiclass_and_regression(multiclass_dir, regression, tmp_path):
    frame = pd.read_parquet(multiclass_dir)
    frame["y"] = np.array(["ant", "bee", "cat"])[frame["y"]]
    frame.to_parquet(tmp_path / "labels.parquet")
    data = dd.read_parquet(tmp_path / "labels.parquet").repartition(npartitions=4)
    models = [data.ml.scale().fit_incremental("sgd", target="y", epochs=3, shuffle=True,
                                              cache=c) for c in (False, True)]
    np.testing.assert_array_equal(_coef(models[0]), _coef(models[1]))
    assert models[1].classes == ["ant", "bee", "cat"]
    fits = [regression.ml.scale().fit_incremental("sgd_regressor", target="y", epochs=3,
                                                  cache=c) for c in (False, True)]
    np.testing.assert_array_equal(_coef(fits[0]), _coef(fits[1]))


def test_a_kept_cache_serves_the_next_fit_and_the_language_alike(binary_dir, tmp_path,
                                                                 source_reads):
    folder = tmp_path / "cache"
    statement = (f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard EPOCHS 2 SHUFFLE "
                 f"CACHE '{folder}'")
    first = oocml.sql(statement)
    assert source_reads["n"] == 6 and len(list(folder.iterdir())) == 1  # one key
    source_reads["n"] = 0
    again = dd.read_parquet(binary_dir).ml.scale().fit_incremental(
        "sgd", target="y", epochs=2, shuffle=True, cache=str(folder))
    assert source_reads["n"] == 0  # every epoch from the cache
    np.testing.assert_array_equal(_coef(first), _coef(again))
    (key,) = folder.iterdir()
    assert sorted(p.name for p in key.iterdir())[:2] == ["p0.bin", "p0.json"]


def test_a_change_of_data_or_preparation_is_a_new_cache(binary_dir, tmp_path, source_reads):
    data = tmp_path / "data"
    data.mkdir()
    for path in sorted(binary_dir.iterdir()):
        (data / path.name).write_bytes(path.read_bytes())
    folder = tmp_path / "cache"

    def fit(scale: str = "standard") -> oocml.Model:
        return dd.read_parquet(data).ml.scale(scale).fit_incremental(
            "sgd", target="y", epochs=2, cache=str(folder))

    fit()
    fit("minmax")  # another preparation
    assert len(list(folder.iterdir())) == 2
    first = sorted(data.iterdir())[0]
    frame = pd.read_parquet(first)
    frame["x0"] = frame["x0"] + 1.0  # the same files, sizes alike, other values
    frame.to_parquet(first)
    source_reads["n"] = 0
    changed = fit()
    assert source_reads["n"] == 6 and len(list(folder.iterdir())) == 3
    np.testing.assert_array_equal(_coef(changed), _coef(dd.read_parquet(data).ml.scale()
                                                        .fit_incremental("sgd", target="y",
                                                                         epochs=2, cache=False)))


def test_the_temporary_cache_is_removed(binary, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    binary.ml.scale().fit_incremental("sgd", target="y", epochs=2)  # on by default here
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("oocml-cache-")]


@pytest.mark.parametrize("damage", ["truncated", "deleted data", "garbled index"])
def test_a_damaged_cache_falls_back_to_the_source(binary_dir, tmp_path, damage):
    folder = tmp_path / "cache"

    def fit() -> oocml.Model:
        return dd.read_parquet(binary_dir).ml.scale().fit_incremental(
            "sgd", target="y", epochs=2, shuffle=True, cache=str(folder))

    expected = fit()
    (key,) = folder.iterdir()
    if damage == "truncated":
        data = key / "p2.bin"
        data.write_bytes(data.read_bytes()[: os.path.getsize(data) // 2])
    elif damage == "deleted data":
        (key / "p3.bin").unlink()
    else:
        (key / "p1.json").write_text("{not json")
    with pytest.warns(CacheWarning, match="reading the source instead"):
        again = fit()
    np.testing.assert_array_equal(_coef(again), _coef(expected))


def test_a_full_disk_stops_the_cache_and_changes_nothing(binary_dir, tmp_path):
    """A real write failure: the file-size limit of a child process (EFBIG, as ENOSPC)."""
    code = f"""
import resource, signal, warnings
import dask.dataframe as dd, numpy as np
import oocml
from oocml.engine.cache import CacheWarning
data = dd.read_parquet({str(binary_dir)!r})
plain = data.ml.scale().fit_incremental("sgd", target="y", epochs=3, shuffle=True, cache=False)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    cached = data.ml.scale().fit_incremental("sgd", target="y", epochs=3, shuffle=True,
                                             cache={str(tmp_path / "cache")!r})
assert any(issubclass(w.category, CacheWarning) and "writing it failed" in str(w.message)
           for w in caught), [str(w.message) for w in caught]
assert np.array_equal(plain.estimator.coef_, cached.estimator.coef_)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_where_the_cache_does_not_apply(binary, binary_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # a sparse recipe stops quietly
        frame = pd.read_parquet(binary_dir)
        frame["city"] = np.where(frame["x0"] > 0, "paris", "rome")
        data = dd.from_pandas(frame, npartitions=3)
        hashed = [data.ml.encode("hash", n_features=8).fit_incremental(
            "sgd", target="y", epochs=2, cache=c) for c in (False, True)]
        np.testing.assert_array_equal(_coef(hashed[0]), _coef(hashed[1]))
    with pytest.raises(oocml.errors.ParameterError, match="the prepared-block cache is local"):
        binary.ml.fit_incremental("sgd", target="y", epochs=2, cache="s3://bucket/cache")
    explained = oocml.sql(f"EXPLAIN TRAIN sgd ON '{binary_dir}' PREDICT y EPOCHS 3 CACHE OFF")
    assert "cache:      off (CACHE OFF)" in explained


def test_precision_float32_with_and_without_the_cache(binary, binary_dir):
    fits = [binary.ml.scale().fit_incremental("sgd", target="y", epochs=3, shuffle=True,
                                              precision="float32", cache=c) for c in (False, True)]
    assert fits[0].estimator.coef_.dtype == np.float32
    np.testing.assert_array_equal(_coef(fits[0]), _coef(fits[1]))
    statement = oocml.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y SCALE standard EPOCHS 3 "
                          "SHUFFLE PRECISION float32")
    np.testing.assert_array_equal(_coef(statement), _coef(fits[0]))
    full = binary.ml.scale().fit_incremental("sgd", target="y", epochs=3, shuffle=True)
    assert abs(full.score(binary) - fits[0].score(binary)) < 0.01
    with pytest.raises(oocml.OocmlError, match="unknown precision 'float16'"):
        oocml.sql(f"TRAIN sgd ON '{binary_dir}' PREDICT y PRECISION float16")


def test_the_default_cache_needs_room_on_the_disk(binary, binary_dir, tmp_path, monkeypatch):
    """By default the cache is used only where it fits, leaving a margin free; a folder the
    user names is used anyway (caching stops, with a warning, if the disk fills)."""
    import shutil
    import tempfile

    from oocml.engine import cache

    monkeypatch.setattr(cache, "MARGIN_BYTES", shutil.disk_usage(tempfile.gettempdir()).total)  # > free
    fit = binary.ml.scale().fit_incremental("sgd", target="y", epochs=2)
    assert fit.report.cached_epochs == 0 and fit.report.passes == 3
    explained = oocml.sql(f"EXPLAIN TRAIN sgd ON '{binary_dir}' PREDICT y EPOCHS 2")
    assert "cache:      off: about 1 MB would not fit in the" in explained
    with pytest.warns(CacheWarning, match="it would pass its budget of 0 MB"):
        named = binary.ml.scale().fit_incremental("sgd", target="y", epochs=2,
                                                  cache=str(tmp_path / "mine"))
    assert named.report.cached_epochs == 0
    np.testing.assert_array_equal(_coef(named), _coef(fit))
