"""One progress line, in one style and one unit (partitions), for every pass of a fit and of
the Session's EVALUATE and PREDICT INTO: real fits on real parquet files, stderr captured."""

from __future__ import annotations

import re

import dask
import dask.dataframe as dd
import pytest
from helpers import generated
from sklearn.linear_model import SGDClassifier

import oocml
from oocml import progress
from oocml.progress import BlockProgress, PassLine

# name [bar] done/total partitions [rate]  in m:ss  -- the last state of every pass's line
FINAL = re.compile(r"(?P<name>[a-z]+(?: \([\w ,.]+\))?(?: epoch \d+/\d+)?) \[(?P<bar>[# ]{24})\] "
                   r"(?P<done>\d+)/(?P<total>\d+) partitions(?:  [\d.]+[kM]? rows/s)?  in \d+:\d\d")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return generated(tmp_path_factory, "progress", rows=4_000, features=4, files=5, seed=7)


@pytest.fixture(scope="module")
def partitions(data_dir):
    return dd.read_parquet(data_dir).npartitions


def passes(err: str) -> list[tuple[str, int, int]]:
    """(name, done, total) of each finished line on stderr; every line must be one of ours."""
    assert "Completed" not in err  # dask's own bar
    found = []
    for line in err.split("\n")[:-1]:  # each line ends with a newline
        drawn = line.split("\r")
        assert drawn[0] == "", f"not drawn from the line's start: {line!r}"
        match = FINAL.fullmatch(drawn[-1].rstrip())
        assert match, f"not an oocml progress line: {drawn[-1]!r}"
        found.append((match["name"], int(match["done"]), int(match["total"])))
    assert err.endswith("\n")
    return found


def test_statistics_and_training_draw_the_same_line(data_dir, partitions, capsys):
    dd.read_parquet(data_dir).ml.scale().fit_incremental(SGDClassifier, target="y",
                                                         progress=True)
    err = capsys.readouterr().err
    assert passes(err) == [("statistics", partitions, partitions),
                           ("train", partitions, partitions)]
    assert partitions == 5
    assert re.search(r"statistics \[#+ *\] 5/5 partitions  [\d.]+[kM]? rows/s", err)
    assert re.search(r"train \[#+ *\] 5/5 partitions  [\d.]+[kM]? rows/s", err)


def test_every_pass_of_a_fit_has_its_line(data_dir, partitions, capsys):
    session = oocml.Session(progress=True)
    session.sql(f"TRAIN sgd ON '{data_dir}' PREDICT y SCALE standard REDUCE pca 2 EPOCHS 2 "
                "HOLDOUT 0.2 AS m")
    n = partitions
    assert passes(capsys.readouterr().err) == [
        ("statistics", n, n), ("reduce", n, n), ("train epoch 1/2", n, n), ("holdout", n, n),
        ("train epoch 2/2", n, n), ("holdout", n, n)]


def test_tune_shows_the_live_candidates_and_the_best_score(data_dir, partitions, capsys):
    oocml.Session(progress=True).sql(f"TRAIN sgd ON '{data_dir}' PREDICT y SCALE standard "
                                     "TUNE (alpha IN (1e-5, 1e-4, 1e-3, 1e-2)) HALVING 2 EPOCHS 3")
    n = partitions
    found = passes(capsys.readouterr().err)
    assert [name for name, *_ in found][:3] == [
        "statistics", "tune (4 of 4 candidates live) epoch 1/3", "holdout (4 candidates)"]
    assert re.fullmatch(r"tune \(2 of 4 candidates live, best holdout 0\.\d{4}\) epoch 2/3",
                        found[3][0])
    assert re.fullmatch(r"tune \(1 of 4 candidates live, best holdout 0\.\d{4}\) epoch 3/3",
                        found[5][0])
    assert all(done == total == n for _, done, total in found)


def test_parallel_training_counts_partitions_per_epoch(data_dir, partitions, capsys):
    with dask.config.set(num_workers=2):
        oocml.Session(progress=True).sql(f"TRAIN sgd ON '{data_dir}' PREDICT y PARALLEL EPOCHS 2")
    n = partitions
    assert passes(capsys.readouterr().err) == [
        ("statistics", n, n), ("train epoch 1/2", n, n), ("train epoch 2/2", n, n)]


def test_evaluate_and_predict_into_draw_the_same_line(data_dir, partitions, tmp_path, capsys):
    session = oocml.Session(progress=True)
    session.sql(f"TRAIN sgd ON '{data_dir}' PREDICT y AS m")
    capsys.readouterr()
    session.sql(f"EVALUATE m ON '{data_dir}'")
    assert passes(capsys.readouterr().err) == [("evaluate", partitions, partitions)]
    # reading, predicting and writing a partition are three tasks: one partition is counted
    session.sql(f"PREDICT USING m ON '{data_dir}' INTO '{tmp_path / 'out'}/'")
    assert passes(capsys.readouterr().err) == [("predict", partitions, partitions)]


def test_quiet_unless_asked(data_dir, capsys):
    session = oocml.Session()  # stderr is not a terminal here
    session.sql(f"TRAIN sgd ON '{data_dir}' PREDICT y HOLDOUT 0.2 AS m; EVALUATE m ON '{data_dir}'")
    dd.read_parquet(data_dir).ml.scale().fit_incremental(SGDClassifier, target="y",
                                                         progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_on_a_cluster_the_line_follows_the_futures(data_dir, partitions, client, capsys):
    with dask.config.set(scheduler=client):  # the suite's default would take precedence
        session = oocml.Session(progress=True)
        session.sql(f"TRAIN sgd ON '{data_dir}' PREDICT y HOLDOUT 0.2 AS m")
        n = partitions
        assert passes(capsys.readouterr().err) == [("statistics", n, n), ("train", n, n),
                                                   ("holdout", n, n)]
        session.sql(f"EVALUATE m ON '{data_dir}'")
        assert passes(capsys.readouterr().err) == [("evaluate", n, n)]


class Clock:
    """A stand-in for ``time`` in oocml.progress: seconds move only when told."""

    def __init__(self):
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now


def test_the_line_reads_like_tqdm_and_redraws_at_most_ten_times_a_second(monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(progress, "time", clock)
    line = PassLine("statistics", 40, True)
    assert capsys.readouterr().err == "\rstatistics [" + " " * 24 + "] 0/40 partitions  ETA ?"
    for _ in range(11):
        clock.now += 0.001  # 11 partitions in 11 ms: not drawn again
        line.advance(rows=250_000)
    assert capsys.readouterr().err == ""
    clock.now += 0.1
    line.advance(rows=250_000)
    drawn = capsys.readouterr().err
    assert drawn.startswith("\rstatistics [#######                 ] 12/40 partitions  ")
    # 3M rows in 0.111 s; 12 partitions in 0.111 s, so 28 more in about 0.26 s
    assert drawn.endswith("27.0M rows/s  ETA 0:00")
    clock.now += 3600
    line.close()
    line.close()
    assert capsys.readouterr().err.endswith("12/40 partitions  833 rows/s  in 1:00:00\n")


def test_training_draws_one_line_per_epoch_and_counts_the_run(capsys):
    bar = BlockProgress(3, 2, True, done_before=2)  # resumed after 2 partitions of epoch 1
    bar.start(0, done=2)
    bar.update(100)
    bar.start(1)
    bar.update(100)
    bar.close()
    lines = [line.split("\r")[-1] for line in capsys.readouterr().err.split("\n")[:-1]]
    assert [FINAL.fullmatch(line.rstrip())["name"] for line in lines] == ["train epoch 1/2",
                                                                           "train epoch 2/2"]
    assert "3/3 partitions" in lines[0] and "1/3 partitions" in lines[1]
    assert (bar.done, bar.total) == (2, 4)  # what Ctrl-C's message reports
