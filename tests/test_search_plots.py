"""The figure of a search (Model.plot_search, ``\\plot search``), checked through its data (the
lines and points drawn), not its pixels, on a real search over a generated parquet data set."""

from __future__ import annotations

import io

import dask.dataframe as dd
import numpy as np
import pytest

import oocml
from oocml.cli.complete import suggestions
from oocml.cli.repl import Shell
from oocml.datasets import make_parquet_dataset
from oocml.errors import OocmlError
from oocml.evaluation import plots

GRID = {"alpha": [1e-5, 1e-4, 1e-3], "loss": ["hinge", "log_loss"]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("search")
    make_parquet_dataset(path, rows=6_000, features=4, files=3, seed=2)
    return path


@pytest.fixture(scope="module")
def searched(folder):
    return dd.read_parquet(str(folder)).ml.scale().fit_incremental(
        "sgd", target="y", epochs=3, search=GRID)


def _candidate_lines(figure):
    """The candidates' lines by label (the stop marks, drawn without a line, left out)."""
    (axes,) = figure.axes
    return {line.get_label(): line for line in axes.get_lines() if line.get_linestyle() != "None"}


def _stop_marks(figure):
    (axes,) = figure.axes
    return {line.get_label(): line for line in axes.get_lines() if line.get_marker() == "x"}


def test_one_line_per_candidate_with_its_score_after_each_epoch(searched):
    trials = searched.report.search
    assert len(trials) == 6 and max(len(t["scores"]) for t in trials) == 3
    lines = _candidate_lines(searched.plot_search())
    assert len(lines) == len(trials)
    for trial, (label, line) in zip(trials, lines.items()):
        assert label.removesuffix(" (best)") == plots.search_label(trial["params"])
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(trial["scores"]) + 1))
        np.testing.assert_allclose(line.get_ydata(), trial["scores"])


def test_the_last_score_of_each_stopped_candidate_is_marked_with_its_reason(searched):
    trials = searched.report.search
    marks = _stop_marks(searched.plot_search())
    stopped = [t for t in trials if t["reason"]]
    assert stopped, "halving by 3 over 3 epochs stops some of 6 candidates"
    assert set(marks) == {f"stopped: {t['reason']}" for t in stopped}
    points = sorted((x, y) for line in marks.values()
                    for x, y in zip(line.get_xdata(), line.get_ydata()))
    expected = sorted((t["dropped_after"], t["scores"][-1]) for t in stopped)
    np.testing.assert_allclose(points, expected)
    assert all(len(t["scores"]) == t["dropped_after"] for t in stopped)


def test_the_winner_is_the_model_and_is_drawn_thick_and_first_in_the_legend(searched):
    figure = searched.plot_search()
    best = searched.report.best_candidate
    lines = list(_candidate_lines(figure).values())
    winner = lines[best]
    assert winner.get_label().endswith(" (best)")
    assert sum(line.get_label().endswith(" (best)") for line in lines) == 1
    assert all(winner.get_linewidth() > line.get_linewidth() for line in lines if line is not winner)
    assert searched.report.search[best]["params"] == searched.report.best_params
    assert searched.search_results_.loc[best, "rank"] == 1
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend[0] == winner.get_label() and legend[-1].startswith("stopped: ")


def test_search_results_alone_draw_the_same_figure(searched, tmp_path):
    results = searched.search_results_
    alone = _candidate_lines(plots.plot_search(results))  # the winner found by rank
    from_model = _candidate_lines(searched.plot_search())
    assert list(alone) == list(from_model)
    path = plots.save(searched.plot_search(), tmp_path / "search.png")
    with open(path, "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"


def test_short_labels_of_parameters():
    assert plots.search_label({"alpha": 1e-05, "loss": "hinge"}) == "alpha=1e-05, loss=hinge"
    assert plots.search_label({"l1_ratio": 0.123456789, "n": 3}) == "l1_ratio=0.123, n=3"


def test_a_model_without_a_search_says_how_to_get_one(folder):
    model = dd.read_parquet(str(folder)).ml.fit_incremental("sgd", target="y")
    with pytest.raises(OocmlError, match=r"not searched.*TUNE"):
        model.plot_search()


def test_plot_search_as_a_meta_command(folder, tmp_path):
    session = oocml.Session()
    session.sql(f"TRAIN sgd ON '{folder}' PREDICT y TUNE (alpha IN (1e-5, 1e-3), "
                "l1_ratio UNIFORM(0, 1)) TRIALS 4 HALVING 2 EPOCHS 2 AS best")
    session.sql(f"TRAIN sgd ON '{folder}' PREDICT y AS plain")
    assert "search" in suggestions("\\plot ", session)[0]
    out, err = io.StringIO(), io.StringIO()
    shell = Shell(session, out, err)
    assert shell.run(f"\\plot search best '{tmp_path / 'search.png'}'")
    assert (tmp_path / "search.png").read_bytes()[:4] == b"\x89PNG"
    assert not shell.run(f"\\plot search plain '{tmp_path / 'none.png'}'")
    assert "not searched" in err.getvalue() and not (tmp_path / "none.png").exists()
