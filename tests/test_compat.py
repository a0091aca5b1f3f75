"""The private APIs of other libraries that oocml uses (all in oocml/_compat.py), one test each.

When a new release of dask, numpy or scikit-learn changes one, its test fails with a message
naming the API, the versions oocml was checked against and the versions installed: update
that function of oocml/_compat.py (and its versions), nothing else.
"""

from __future__ import annotations

import copy
import logging
import sys
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import Perceptron, SGDClassifier, SGDRegressor
from sklearn.preprocessing import StandardScaler

from oocml import _compat
from oocml._compat import (
    ARROW_STRING_CONVERSION,
    FROM_MAP,
    FUSED_IO,
    PARQUET_READ,
    PROJECTION,
    SGD_STATE,
    adopt_state,
    checked_against,
    expr_kind,
    from_map_call,
    fused_buckets,
    graph_dependents,
    handle_zeros_in_scale,
    is_constant_feature,
    is_sgd_family,
    literal_keys,
    operand,
    optimized_expr,
    parquet_plan,
    scheduler_client,
    set_numpy_hugepage,
    set_sgd_steps,
    settle_sgd_average,
    sgd_steps,
    text_files,
    unwrap,
)
from oocml.io import dask_plans
from oocml.io.dask_plans import parquet_pieces
from oocml.io.partitions import partitions, whole_partition

PACKAGES = {"dask": "dask", "numpy": "numpy", "pandas": "pandas", "pyarrow": "pyarrow",
            "scikit-learn": "scikit-learn"}


@contextmanager
def private_api(name: str, *libraries: str):
    """Turn any failure inside into one that names the private API and the versions."""
    try:
        yield
    except Exception as exc:  # AssertionError included
        installed = ", ".join(f"{lib} {version(PACKAGES[lib])}" for lib in libraries)
        pytest.fail(f"{name} is not what oocml/_compat.py relies on: checked against "
                    f"{checked_against(*libraries)}, installed {installed}. "
                    f"Update oocml/_compat.py. ({type(exc).__name__}: {exc})", pytrace=False)


def _write(path: Path, start: int, rows: int = 100, row_group: int | None = None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({"a": np.arange(start, start + rows, dtype="float64"),
                      **{name: np.full(rows, float(i)) for i, name in enumerate("bcdef")}})
    pq.write_table(table, path, row_group_size=row_group or rows)
    return str(path)


@pytest.fixture
def flat(tmp_path):
    """Six files of 100 rows and six columns."""
    root = tmp_path / "flat"
    return root, [_write(root / f"part-{i}.parquet", 100 * i) for i in range(6)]


@pytest.fixture
def hive(tmp_path):
    """Four files in year=/k= folders (one value with a space, which is quoted in no path)."""
    root = tmp_path / "hive"
    files = [_write(root / f"year={y}" / f"k={k}" / "part.parquet", y)
             for y in (2020, 2021) for k in ("x", "y z")]
    return root, files


# --- dask --------------------------------------------------------------------------------------

def test_optimized_expr_of_a_parquet_read(flat):
    root, _ = flat
    with private_api("DataFrame.expr.optimize(fuse=False) / ReadParquetFSSpec", "dask"):
        expr, n = optimized_expr(dd.read_parquet(root))
        assert expr_kind(expr) == PARQUET_READ
        assert n == 6 == dd.read_parquet(root).npartitions
        assert expr_kind(optimized_expr(dd.read_parquet(root).map_partitions(len))[0]) \
            != PARQUET_READ


def test_projection_over_fused_io(flat):
    """Reading few of many columns, in another order: Projection over FusedIO over the read."""
    root, _ = flat
    with private_api("Projection.frame, FusedIO._fusion_buckets and its _expr operand", "dask"):
        expr, n = optimized_expr(dd.read_parquet(root)[["b", "a"]])
        assert expr_kind(expr) == PROJECTION
        fused = unwrap(expr, (PROJECTION,))
        assert expr_kind(fused) == FUSED_IO
        buckets, read = fused_buckets(fused)
        assert expr_kind(read) == PARQUET_READ
        assert len(buckets) == n < 6
        assert [i for bucket in buckets for i in bucket] == list(range(6))
        assert fused_buckets(read) == (None, read)


def test_parquet_plan_of_files(flat):
    root, files = flat
    with private_api("ReadParquetFSSpec._plan / _dataset_info (one part per file)", "dask",
                     "pyarrow", "pandas"):
        plan = parquet_plan(optimized_expr(dd.read_parquet(root))[0])
        assert plan.parts == [[(f, None, ())] for f in files]
        assert plan.hive == [] and plan.empty is False
        assert "file" in plan.fs.protocol
        assert list(plan.meta.columns) == list("abcdef") and len(plan.meta) == 0
        assert plan.meta.dtypes.eq(np.float64).all()


@pytest.mark.parametrize("options", [{"split_row_groups": True}, {"blocksize": "2kB"}],
                         ids=["split", "aggregated"])
def test_parquet_plan_of_row_groups(tmp_path, options):
    """One file of four row groups, as one piece per partition or as dask's list of pieces."""
    path = _write(tmp_path / "one.parquet", 0, rows=400, row_group=100)
    with private_api(f"ReadParquetFSSpec._plan parts with {options}", "dask", "pyarrow"):
        expr, n = optimized_expr(dd.read_parquet(tmp_path, **options))
        assert n == 4
        assert parquet_plan(expr).parts == [[(path, [g], ())] for g in range(4)]


def test_parquet_plan_of_hive_folders(hive):
    root, files = hive
    with private_api("ReadParquetFSSpec._plan common_kwargs['partitions'] names", "dask",
                     "pyarrow"):
        expr, _ = optimized_expr(dd.read_parquet(root))
        plan = parquet_plan(expr)
        assert plan.hive == ["year", "k"]
        assert [[path for path, _, _ in part] for part in plan.parts] == [[f] for f in files]
        assert isinstance(plan.meta["k"].dtype, pd.CategoricalDtype)


def test_parquet_plan_empty_when_filters_keep_nothing(flat):
    root, _ = flat
    with private_api("ReadParquetFSSpec._plan['empty']", "dask", "pyarrow"):
        expr, _ = optimized_expr(dd.read_parquet(root, filters=[("a", ">", 1e9)]))
        assert parquet_plan(expr).empty is True
        assert parquet_plan(expr).parts == []


def test_parquet_read_operands(flat):
    root, _ = flat
    with private_api("ReadParquetFSSpec operands (filters, filesystem, kwargs, categories, "
                     "index, _partitions)", "dask"):
        plain, _ = optimized_expr(dd.read_parquet(root, filters=[("a", ">", 250)]))
        assert operand(plain, "filters") == [("a", ">", 250)]
        assert operand(plain, "filesystem") == "fsspec"
        assert {k: v for k, v in operand(plain, "kwargs").items() if v is not None} == {}
        assert not any(operand(plain, name) for name in _compat.PARQUET_OPERANDS_MUST_BE_EMPTY)
        for frame, name, value in [
                (dd.read_parquet(root).partitions[1:3], "_partitions", [1, 2]),
                (dd.read_parquet(root, index="a"), "index", "a"),
                (dd.read_parquet(root, categories=["b"]), "categories", ["b"])]:
            assert list(np.atleast_1d(operand(optimized_expr(frame)[0], name))) == \
                list(np.atleast_1d(value)), name
        backend, _ = optimized_expr(dd.read_parquet(root, dtype_backend="pyarrow"))
        assert operand(backend, "kwargs")["dtype_backend"] == "pyarrow"


def _numbered(i: int) -> pd.DataFrame:
    return pd.DataFrame({"s": [str(i)] * 3, "v": [float(i)] * 3})


def test_reads_text_knows_dask_text_readers_by_their_task_names(tmp_path, flat):
    pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}).to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({"a": [1.0, 2.0]}).to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    with private_api("the task names of dask's text readers (TEXT_TASKS)", "dask"):
        assert _compat.reads_text(dd.read_csv(tmp_path / "t.csv")[["a"]])
        assert _compat.reads_text(dd.read_table(tmp_path / "t.csv", sep=","))
        assert _compat.reads_text(dd.read_json(tmp_path / "t.jsonl", lines=True, blocksize=2**20))
    assert not _compat.reads_text(dd.read_parquet(flat[0]))
    assert not _compat.reads_text(dd.from_pandas(pd.DataFrame({"a": [1.0]}), npartitions=1))


def test_from_map_call():
    frame = dd.from_map(_numbered, [1, 2, 3])
    with private_api("FromMap operands func, iterables, _partitions (under Projection / "
                     "ArrowStringConversion)", "dask"):
        for selected, chosen in [(frame, None), (frame[["v", "s"]], None),
                                 (frame.partitions[1:], [1, 2])]:
            expr, _ = optimized_expr(selected)
            expr = unwrap(expr, (PROJECTION, ARROW_STRING_CONVERSION))
            assert expr_kind(expr) == FROM_MAP
            func, iterables, got = from_map_call(expr)
            assert func is _numbered and list(iterables) == [[1, 2, 3]]
            assert got == chosen
        assert dask_plans.mapped_items(frame.partitions[1:], _numbered) == [2, 3]
        assert dask_plans.mapped_items(frame, len) is None


def test_direct_reader_pieces_match_dask(flat, hive):
    """End to end through oocml.io.dask_plans: the fused files per partition, hive keys filled in,
    and the frames dask itself computes."""
    root, files = flat
    with private_api("dask's parquet plan, as oocml.io.dask_plans reads it", "dask", "pyarrow"):
        frame = dd.read_parquet(root)[["b", "a"]]
        found = parquet_pieces(frame)
        assert found is not None and found.condition is None
        assert [p for group in found.pieces for p in group] == [(f, None, ()) for f in files]
        hive_root, _ = hive
        hived = parquet_pieces(dd.read_parquet(hive_root))
        assert [group[0][2] for group in hived.pieces] == [
            (("year", y), ("k", k)) for y in ("2020", "2021") for k in ("x", "y z")]
        for read in (frame, dd.read_parquet(hive_root)[["k", "a"]]):
            ours = [whole_partition(p) for p in partitions(read)]
            for a, b in zip(ours, dask.compute(*read.to_delayed()), strict=True):
                pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("case", ["empty", "partitions", "computed", "count"])
def test_every_fallback_is_logged(flat, caplog, monkeypatch, case):
    root, _ = flat
    frame = {"empty": dd.read_parquet(root, filters=[("a", ">", 1e9)]),
             "partitions": dd.read_parquet(root).partitions[1:3],
             "computed": dd.read_parquet(root).map_partitions(lambda f: f + 1),
             "count": dd.read_parquet(root)}[case]
    reason = {"empty": "dask planned no part", "partitions": "the read has ['_partitions']",
              "computed": "the frame is not a plain parquet read",
              "count": "its plan has 6 partitions"}[case]
    if case == "count":
        monkeypatch.setattr(dask_plans, "optimized_expr",
                            lambda f: (optimized_expr(f)[0], 5))
    with caplog.at_level(logging.DEBUG, logger="oocml"):
        assert parquet_pieces(frame) is None
    assert f"oocml's parquet reader is not used: {reason}" in caplog.text


# --- numpy -------------------------------------------------------------------------------------

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checked on Linux")
def test_numpy_hugepage_switch():
    with private_api("numpy._core.multiarray._set_madvise_hugepage", "numpy"):
        before = set_numpy_hugepage(False)
        try:
            assert isinstance(before, bool)
            assert set_numpy_hugepage(True) is False
            assert set_numpy_hugepage(False) is True
        finally:
            set_numpy_hugepage(before)


# --- scikit-learn ------------------------------------------------------------------------------

def test_scalers_constant_feature_rules():
    """oocml's StandardScaler reaches scikit-learn's scale_ through these two helpers."""
    X = np.column_stack([np.full(50, 3.0), np.arange(50.0), np.full(50, 1e-3)])
    with private_api("sklearn.preprocessing._data._is_constant_feature / "
                     "_handle_zeros_in_scale", "scikit-learn"):
        fitted = StandardScaler().fit(X)
        constant = is_constant_feature(fitted.var_, fitted.mean_, fitted.n_samples_seen_)
        assert list(constant) == [True, False, True]
        scale = handle_zeros_in_scale(np.sqrt(fitted.var_), copy=False, constant_mask=constant)
        np.testing.assert_array_equal(scale, fitted.scale_)
        np.testing.assert_array_equal(handle_zeros_in_scale(np.array([0.0, 2.0])), [1.0, 2.0])


def _sgd_data(seed: int, regression: bool = False, rows: int = 200):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 4))
    y = X[:, 0] + 0.3 * rng.standard_normal(rows)
    return X, y if regression else (y > 0).astype(int)


SGD_MODELS = [SGDClassifier(random_state=0), SGDClassifier(average=True, random_state=0),
              SGDClassifier(average=150, random_state=0),  # averaging from row 150 of 200
              SGDClassifier(average=10**6, random_state=0),  # averaging not started
              SGDRegressor(average=True, random_state=0), Perceptron(random_state=0)]


@pytest.mark.parametrize("template", SGD_MODELS, ids=repr)
def test_sgd_state_is_the_arrays_and_step_counter(template):
    """What mix averages: after partial_fit the SGD_STATE arrays and t_ are the whole learned
    state (moved onto a model trained on other rows, the next partial_fit gives the same
    model), t_ counts rows from 1, and coef_/intercept_ follow settle_sgd_average's rule."""
    regressor = isinstance(template, SGDRegressor)
    (X1, y1), (X0, y0), (X2, y2) = (_sgd_data(s, regressor) for s in (1, 0, 2))
    classes = {} if regressor else {"classes": [0, 1]}
    names = ", ".join(SGD_STATE)
    with private_api(f"{type(template).__name__}'s {names} and t_", "scikit-learn"):
        a = copy.deepcopy(template).partial_fit(X1, y1, **classes)
        b = copy.deepcopy(template).partial_fit(X0, y0, **classes)
        assert sgd_steps(a) == 1 + len(X1)
        held = [name for name in SGD_STATE if getattr(a, name, None) is not None]
        assert held == list(SGD_STATE if getattr(a, "average", 0) else SGD_STATE[:2])
        for name in held:
            setattr(b, name, getattr(a, name).copy())
        set_sgd_steps(b, sgd_steps(a))
        before = {name: getattr(a, name).copy() for name in ("coef_", "intercept_")}
        settle_sgd_average(a)  # partial_fit left them so already
        for name, value in before.items():
            np.testing.assert_array_equal(getattr(a, name), value)
        a.partial_fit(X2, y2)
        b.partial_fit(X2, y2)
        np.testing.assert_array_equal(a.coef_, b.coef_)
        np.testing.assert_array_equal(a.intercept_, b.intercept_)
        assert sgd_steps(a) == 1 + len(X1) + len(X2)


def test_sgd_step_counter_sets_the_learning_rate():
    X, y = _sgd_data(1)
    with private_api("SGDClassifier.t_ (partial_fit's learning-rate schedule)", "scikit-learn"):
        a = SGDClassifier(random_state=0).partial_fit(X, y, classes=[0, 1])
        b = copy.deepcopy(a)
        set_sgd_steps(b, sgd_steps(a) * 100)
        a.partial_fit(X, y)
        b.partial_fit(X, y)
        assert not np.array_equal(a.coef_, b.coef_)


def test_adopt_state_moves_everything():
    X, y = _sgd_data(1)
    X2, y2 = _sgd_data(2)
    with private_api("scikit-learn estimators keep their state in __dict__", "scikit-learn"):
        trained = SGDClassifier(average=True, alpha=1e-3, random_state=0).partial_fit(
            X, y, classes=[0, 1])
        expected = copy.deepcopy(trained).partial_fit(X2, y2)
        target = SGDClassifier()
        adopt_state(target, copy.deepcopy(trained))
        assert target.get_params() == trained.get_params()
        target.partial_fit(X2, y2)
        np.testing.assert_array_equal(target.coef_, expected.coef_)
        assert sgd_steps(target) == sgd_steps(expected)


def test_parameters_are_validated_before_any_fit():
    from sklearn.linear_model import SGDClassifier
    from sklearn.neural_network import MLPClassifier

    from oocml._compat import validate_params

    with private_api("BaseEstimator._validate_params", "scikit-learn"):
        assert callable(SGDClassifier()._validate_params)
        validate_params(SGDClassifier(alpha=1e-4))
        with pytest.raises(ValueError, match="alpha"):
            validate_params(SGDClassifier(alpha=-1.0))
        with pytest.raises(ValueError, match="hidden_layer_sizes|activation"):
            validate_params(MLPClassifier(activation="nope"))


def test_skops_trusts_exactly_the_optimizer_types_an_mlp_holds():
    import numpy as np
    import skops.io as sio
    from sklearn.neural_network import MLPClassifier

    from oocml._compat import SKLEARN_OPTIMIZER_TYPES

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 3)), np.arange(64) % 2
    with private_api("sklearn.neural_network._stochastic_optimizers", "scikit-learn"):
        found = set()
        for solver in ("adam", "sgd"):
            model = MLPClassifier(hidden_layer_sizes=(4,), solver=solver).partial_fit(
                X, y, classes=[0, 1])
            found |= {t for t in sio.get_untrusted_types(data=sio.dumps(model))
                      if "_stochastic_optimizers" in t}
        assert found == set(SKLEARN_OPTIMIZER_TYPES)


def test_the_sgd_family_is_scikit_learns_plain_sgd_estimators():
    from sklearn.linear_model import Perceptron, SGDClassifier, SGDRegressor
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neural_network import MLPClassifier

    with private_api("sklearn.linear_model._stochastic_gradient.BaseSGD", "scikit-learn"):
        assert all(is_sgd_family(c) for c in (SGDClassifier, SGDRegressor, Perceptron))
        assert not any(is_sgd_family(c) for c in (GaussianNB, MLPClassifier, SGDClassifier()))


def test_text_files_finds_the_files_behind_dask_text_readers(tmp_path):
    """The OpenFiles among the tasks of read_csv and read_json's graphs (a parse error names
    its file from them, oocml/io/text_faults.py)."""
    frame = pd.DataFrame({"x": range(100), "y": [0, 1] * 50})
    for i in range(2):
        frame.to_csv(tmp_path / f"{i}.csv", index=False)
        frame.to_json(tmp_path / f"{i}.jsonl", orient="records", lines=True)
    with private_api("dask's text readers' graphs (OpenFile among task args)", "dask"):
        for read in (dd.read_csv(str(tmp_path / "*.csv"), blocksize=300)[["x"]],
                     dd.read_json(str(tmp_path / "*.jsonl"), lines=True, blocksize=2**20)):
            found = [Path(f.path).name for f in text_files(read)]
            assert found in (["0.csv", "1.csv"], ["0.jsonl", "1.jsonl"]), found
        assert text_files(dd.from_pandas(frame, npartitions=2)) == []


def test_the_scheduler_client_is_the_default_clients_only():
    import distributed

    with private_api("dask.base.get_scheduler() as a distributed Client's get", "dask"):
        assert scheduler_client() is None
        with distributed.Client(processes=False, n_workers=1, dashboard_address=None) as client:
            assert scheduler_client() is client
            with dask.config.set(scheduler="sync"):
                assert scheduler_client() is None
        assert scheduler_client() is None


def test_graph_dependents_and_the_literal_keys_of_a_local_run():
    from dask.callbacks import Callback

    one = dask.delayed(sum)([1, 2])
    two = dask.delayed(lambda a, b: a + b)(one, 3)
    seen = {}

    class Look(Callback):
        def _start_state(self, dsk, state):
            seen["dependents"] = graph_dependents(dsk)
            seen["literal"] = set(literal_keys(state))

    with private_api("dask.core.get_deps and the local scheduler's state['cache']", "dask"), Look():
        assert two.compute(scheduler="sync") == 6
        assert seen["dependents"][one.key] == {two.key}
        assert two.key not in seen["literal"] and one.key not in seen["literal"]
