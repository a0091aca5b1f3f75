"""VALIDATE: skew against a model's training profile, drift between two sources.

Held here: data drawn like the training data shows no anomaly, a shifted numeric column and a
changed category mix are flagged (and only they), both faces give one table, the profile
survives a model file and an UPDATE, the sample behind the histograms stays bounded and
unbiased, and bad input is refused clearly.
"""

from __future__ import annotations

import io
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import oocml
from oocml.errors import OocmlSyntaxError, ParameterError
from oocml.evaluation.drift import BINS, SAMPLE_ROWS, Sample, jensen_shannon, l_infinity

DATA = Path(__file__).parent / "data" / "oocml-0.1"


def _frame(rows: int, seed: int, shift: float = 0.0, north: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    frame["a"] += shift
    frame["shop"] = np.where(rng.random(rows) < north, "north", "south")
    frame["y"] = (frame.b + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    return frame


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """A training folder (4 files) and two new ones: drawn alike, and drifted (a shifted,
    the shops' mix changed)."""
    root = tmp_path_factory.mktemp("validate")
    for name, frames in {"train": [_frame(20_000, s) for s in range(4)],
                         "same": [_frame(20_000, 10)],
                         "moved": [_frame(20_000, 11, shift=1.5, north=0.9)]}.items():
        (root / name).mkdir()
        for i, frame in enumerate(frames):
            frame.to_parquet(root / name / f"part-{i}.parquet")
    return root


def _session(sources) -> oocml.Session:
    session = oocml.Session(progress=False)
    session.sql(f"TRAIN sgd ON '{sources / 'train'}' PREDICT y ENCODE onehot SCALE standard AS m")
    return session


def test_skew_is_flagged_on_the_columns_that_moved_and_only_there(sources):
    session = _session(sources)
    alike = session.sql(f"VALIDATE m ON '{sources / 'same'}'")
    assert alike.columns.tolist() == ["input", "metric", "value", "threshold", "is_anomaly"]
    assert alike.input.tolist() == ["a", "b", "c", "shop"]
    assert alike.metric.tolist() == ["jensen_shannon_divergence"] * 3 + ["l_infinity"]
    assert not alike.is_anomaly.any() and alike.value.max() < 0.02
    moved = session.sql(f"VALIDATE m ON '{sources / 'moved'}'").set_index("input")
    assert moved.is_anomaly.to_dict() == {"a": True, "b": False, "c": False, "shop": True}
    assert moved.value["shop"] == pytest.approx(0.4, abs=0.02)  # 0.5 north -> 0.9 north
    lenient = session.sql(f"VALIDATE m ON '{sources / 'moved'}' THRESHOLD 0.35")
    assert lenient.threshold.eq(0.35).all() and lenient.is_anomaly.sum() == 1  # shop only


def test_both_faces_give_one_table_and_drift_compares_two_sources(sources):
    session = _session(sources)
    by_sql = session.sql(f"VALIDATE m ON '{sources / 'moved'}'")
    by_python = session.model("m").validate(dd.read_parquet(sources / "moved"))
    pd.testing.assert_frame_equal(by_sql, by_python)
    drift = session.sql(f"VALIDATE DRIFT '{sources / 'moved'}' AGAINST '{sources / 'train'}'")
    assert drift.set_index("input").is_anomaly.to_dict() == {
        "a": True, "b": False, "c": False, "y": False, "shop": True}
    same = session.sql(f"VALIDATE DRIFT '{sources / 'same'}' AGAINST '{sources / 'train'}'")
    assert not same.is_anomaly.any()


def test_the_profile_survives_a_model_file_and_an_update(sources, tmp_path):
    session = _session(sources)
    model = session.model("m")
    model.save(tmp_path / "m.oocml")
    loaded = oocml.load_model(tmp_path / "m.oocml")
    assert loaded.training_profile == model.training_profile
    assert sum(model.training_profile.numeric["a"][1]) == pytest.approx(1.0)
    assert len(model.training_profile.numeric["a"][0]) == 19  # 20 bins of equal mass
    updated = dd.read_parquet(sources / "moved").ml.update(model)
    assert updated.training_profile == model.training_profile  # the TRAIN's data, as fitted


def test_the_sample_stays_bounded_and_stands_for_every_row():
    rng = np.random.default_rng(0)
    merged = None
    for _ in range(300):  # 300 batches of 10,000 rows: 3M rows, uniform on [0, 1)
        one = Sample.of_columns([rng.random(10_000)])
        merged = one if merged is None else merged.merge(one)
    assert len(merged.weights) <= SAMPLE_ROWS
    assert merged.weights.sum() == pytest.approx(3_000_000)
    assert np.average(merged.values[:, 0] < 0.25, weights=merged.weights) == pytest.approx(
        0.25, abs=0.01)
    assert jensen_shannon([0.5, 0.5, 0], [0.5, 0.5, 0]) == 0
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    assert l_infinity({"x": 0.5, "y": 0.5}, {"x": 0.9, "z": 0.1}) == pytest.approx(0.5)


def test_bad_input_is_refused_clearly(sources):
    session = _session(sources)
    with pytest.raises(OocmlSyntaxError, match="THRESHOLD must be from 0 to 1"):
        session.sql(f"VALIDATE m ON '{sources / 'same'}' THRESHOLD 2")
    with pytest.raises(ParameterError, match="threshold must be a number from 0 to 1"):
        session.model("m").validate(dd.read_parquet(sources / "same"), threshold=-1)
    with pytest.raises(oocml.OocmlError, match="shop"):
        session.model("m").validate(dd.read_parquet(sources / "same", columns=["a", "b", "c"]))
    old = oocml.load_model(DATA / "classifier.oocml")
    with pytest.raises(ParameterError, match="keeps no profile of its training data.*DRIFT"):
        old.validate(pd.DataFrame({c: [0.0] for c in old.features}))


def test_the_repl_plots_the_last_validation(sources, tmp_path):
    from oocml.cli.repl import Shell

    out, err = io.StringIO(), io.StringIO()
    shell = Shell(_session(sources), out, err)
    assert not shell.run(f"\\plot drift '{tmp_path / 'none.png'}'")
    assert "no VALIDATE has run" in err.getvalue()
    assert shell.run(f"VALIDATE m ON '{sources / 'moved'}'"), err.getvalue()
    assert "jensen_shannon_divergence" in out.getvalue()
    assert shell.run(f"\\plot drift '{tmp_path / 'drift.png'}'"), err.getvalue()
    assert (tmp_path / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("distinct", [3, 50, None])
def test_profile_edges_do_not_depend_on_the_order_of_ties(distinct):
    """The bins' edges come from an unstable sort of the sample: with many ties, they are
    those of a stable sort, whatever the weights."""
    from oocml.evaluation.drift import _equal_mass_edges

    rng = np.random.default_rng(distinct or 0)
    values = rng.normal(size=SAMPLE_ROWS) if distinct is None else \
        rng.integers(0, distinct, SAMPLE_ROWS).astype(float)
    weights = rng.integers(1, 1_000, SAMPLE_ROWS).astype(float)
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    targets = cumulative[-1] * np.arange(1, BINS) / BINS
    stable = values[order][np.minimum(np.searchsorted(cumulative, targets), len(values) - 1)]
    assert _equal_mass_edges(values, weights) == tuple(np.unique(stable))
