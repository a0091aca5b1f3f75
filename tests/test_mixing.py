"""SHUFFLE mixes rows across partitions: on the hardest layout, one partition per label value,
one epoch trains as well as scikit-learn on rows shuffled in memory, and the model is the same
bit for bit on every scheduler, from both faces, with and without the cache."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

import oocml
from oocml.engine.mixing import partition_bytes
from oocml.engine.stream import BlockRecipe, TrainOptions, train
from oocml.errors import DataError, SortedDataWarning, TrainingInterrupted
from oocml.io.partitions import partitions

FEATURES = ["x0", "x1", "x2", "x3"]


def _rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=FEATURES)
    frame["y"] = (frame.x0 + 0.5 * frame.x1 - 0.25 * frame.x2 + rng.normal(scale=0.5, size=n)
                  > 0.3).astype(int)
    return frame


@pytest.fixture(scope="module")
def by_label(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """The hardest layout: every file holds one label value (a folder sorted by the label),
    and held-out rows of the same task."""
    folder = tmp_path_factory.mktemp("by_label")
    frame = _rows(40_000, seed=3)
    for label, rows in frame.groupby("y"):
        half = len(rows) // 2
        rows.iloc[:half].to_parquet(folder / f"y{label}-a.parquet", index=False)
        rows.iloc[half:].to_parquet(folder / f"y{label}-b.parquet", index=False)
    return folder, _rows(8_000, seed=4)


def _accuracy(folder: Path, test: pd.DataFrame, clauses: str) -> float:
    model = oocml.sql(f"TRAIN sgd ON '{folder}' PREDICT y SCALE standard {clauses}")
    return model.score(test)


def _in_memory(folder: Path, test: pd.DataFrame, seed: int) -> float:
    """scikit-learn's SGDClassifier, one epoch over the rows shuffled in memory."""
    rows = pd.read_parquet(folder).sample(frac=1.0, random_state=seed)
    scaler = StandardScaler().fit(rows[FEATURES])
    model = SGDClassifier(random_state=0)
    model.partial_fit(scaler.transform(rows[FEATURES]), rows.y, classes=[0, 1])
    return model.score(scaler.transform(test[FEATURES]), test.y)


@pytest.mark.parametrize("blocks", ["", "BLOCKSIZE 1000"])
def test_one_shuffled_epoch_on_label_sorted_files_trains_as_well_as_in_memory(by_label, blocks):
    """With whole files as blocks and with 10 blocks a file: SHUFFLE reaches scikit-learn's
    one-epoch accuracy on shuffled rows; SHUFFLE WINDOW 1, blocks of one file each (what SHUFFLE
    was), ends biased towards the last label it saw."""
    folder, test = by_label
    reference = np.mean([_in_memory(folder, test, seed) for seed in range(3)])
    mixed = _accuracy(folder, test, f"{blocks} SHUFFLE")
    unmixed = _accuracy(folder, test, f"{blocks} SHUFFLE WINDOW 1")
    assert mixed >= reference - 0.015, (mixed, reference)
    assert unmixed < mixed - 0.05, (unmixed, mixed)


class _Recorder:
    """Keeps each block: what partial_fit was fed."""

    def __init__(self):
        self.blocks: list[pd.DataFrame] = []

    def partial_fit(self, X, y, **kwargs):
        self.blocks.append(X.copy())
        return self


@pytest.mark.parametrize("window", [None, 2, 1])
def test_every_block_holds_rows_of_every_partition_of_its_window(by_label, window):
    """Blocks as partial_fit gets them (the recipe keeps the frame): the files each block's
    rows come from, found by their x0 values; and the labels' share in each."""
    folder, _ = by_label
    files = sorted(folder.glob("*.parquet"))
    origin = {x: k for k, f in enumerate(files) for x in pd.read_parquet(f).x0}
    sizes = tuple(len(pd.read_parquet(f)) for f in files)
    recorder = _Recorder()
    train(recorder, partitions(dd.read_parquet(files)),
          BlockRecipe(prep=None, target="y", labels=None, block_rows=1000),
          TrainOptions(shuffle=True, seed=1, window=window, sizes=sizes))
    sources = [{origin[x] for x in X.x0} for X in recorder.blocks]
    assert sum(len(X) for X in recorder.blocks) == 40_000
    assert [len(s) for s in sources] == [min(window or 4, 4)] * len(sources)
    if window is None:  # every block: the label's share over all the files, to sampling error
        shares = np.array([X.y.mean() for X in recorder.blocks])
        assert np.abs(shares - np.mean(shares)).max() < 0.06


def _coef(model) -> np.ndarray:
    return np.concatenate([model.estimator.coef_.ravel(), model.estimator.intercept_])


def test_the_mixed_stream_is_the_same_everywhere(by_label):
    """Schedulers, faces, the cache, and windows of several blocks: one model, bit for bit."""
    folder, _ = by_label
    statement = (f"TRAIN sgd ON '{folder}' PREDICT y SCALE standard BLOCKSIZE 1000 EPOCHS 2 "
                 "SHUFFLE WINDOW 3 SEED 9")
    models = []
    for scheduler in ("sync", "threads", "processes"):
        with dask.config.set(scheduler=scheduler):
            models.append(oocml.sql(statement))
    models.append(oocml.sql(statement + " CACHE OFF"))
    chain = dd.read_parquet(folder).ml.scale()
    models.append(chain.fit_incremental("sgd", target="y", block_rows=1000, epochs=2,
                                        shuffle=True, shuffle_window=3, random_state=9))
    for model in models[1:]:
        np.testing.assert_array_equal(_coef(model), _coef(models[0]))
    other = oocml.sql(statement.replace("WINDOW 3", "WINDOW 2"))
    assert not np.array_equal(_coef(other), _coef(models[0]))


def test_explain_says_how_many_partitions_are_mixed(by_label):
    folder, _ = by_label
    text = oocml.sql(f"EXPLAIN TRAIN sgd ON '{folder}' PREDICT y SHUFFLE")
    assert "4 partitions at a time read together and their rows mixed into every block" in text
    assert "shuffle=True" in text and "shuffle_window" not in text
    text = oocml.sql(f"EXPLAIN TRAIN sgd ON '{folder}' PREDICT y SHUFFLE WINDOW 1")
    assert "rows permuted inside each block" in text and "shuffle_window=1" in text


def _partitions_with(tmp_path: Path, shares: list[float], shift: float = 0.0) -> Path:
    """Three files of 2,000 rows: in file k, class 1 is ``shares[k]`` of the rows and x0's
    mean is ``k * shift``."""
    rng = np.random.default_rng(11)
    for k, share in enumerate(shares):
        frame = pd.DataFrame(rng.normal(size=(2_000, 2)), columns=["x0", "x1"])
        frame["x0"] += k * shift
        frame["y"] = (np.arange(2_000) < share * 2_000).astype(int)
        frame.to_parquet(tmp_path / f"part-{k}.parquet", index=False)
    return tmp_path


@pytest.mark.parametrize("shares, shift, warned", [
    ([0.3, 0.5, 0.56], 0.0, True),    # a class's share spreads by 0.26 >= 0.25
    ([0.3, 0.5, 0.54], 0.0, False),   # 0.24: alike enough
    ([0.5, 0.5, 0.5], 0.6, True),     # x0's mean spreads by 1.2 / sd 1.11 = 1.08 sd >= 1
    ([0.5, 0.5, 0.5], 0.4, False),    # 0.8 / sd 1.05 = 0.76 sd
])
def test_a_fit_without_shuffle_warns_once_when_partitions_differ(tmp_path, shares, shift,
                                                                 warned):
    folder = _partitions_with(tmp_path, shares, shift)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        oocml.sql(f"TRAIN sgd ON '{folder}' PREDICT y")
        oocml.sql(f"TRAIN sgd ON '{folder}' PREDICT y SHUFFLE")  # mixed: nothing to say
    sorted_warnings = [w for w in caught if issubclass(w.category, SortedDataWarning)]
    assert len(sorted_warnings) == int(warned)
    if warned:
        text = str(sorted_warnings[0].message)
        assert ("class 1" in text or "class 0" in text) if shift == 0 else "'x0'" in text
        assert "add SHUFFLE" in text


def test_a_window_that_leaves_unlike_partitions_apart_warns_and_says_what_all_would_cost(by_label):
    """The fixture's 4 files hold one label each: WINDOW 3 ends on a window of one file, and
    scores far below mixing all 4 (the default window); the warning says so, with the memory
    a window of all 4 would take."""
    folder, test = by_label
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        apart = _accuracy(folder, test, "SHUFFLE WINDOW 3")
        together = _accuracy(folder, test, "SHUFFLE")  # 4 partitions, WINDOW 4: all mixed
    sorted_warnings = [str(w.message) for w in caught if issubclass(w.category, SortedDataWarning)]
    assert together - apart > 0.1, (together, apart)
    assert len(sorted_warnings) == 1, sorted_warnings
    assert "SHUFFLE mixes 3 of the 4 partitions at a time" in sorted_warnings[0]
    largest = max(len(pd.read_parquet(f)) for f in folder.glob("*.parquet"))
    cost = 4 * partition_bytes(5, largest, 4) >> 20  # x0-x3 and y read, the largest file's rows
    assert f"all 4 would hold about {cost} MB" in sorted_warnings[0]


def test_a_partition_mixed_at_once_costs_its_reader_and_its_blocks_at_most_its_rows():
    """The memory the warning quotes: 90 MB for a 500,000-row partition of 21 float columns
    (measured: 100-108 MB, benchmarks/README.md), no more than a small partition's rows."""
    assert partition_bytes(21, 500_000, 4) == 90 << 20
    assert partition_bytes(21, 2_000_000, 20) == 90 << 20  # buffers and blocks, not the file
    small = partition_bytes(3, 2_000, 6)
    assert small == 3 * 32_000 + 48_000 + 2 * 48_000  # reader pages and blocks of its 48 KB


class _Failing:
    """Fails at its ``at``-th block, as an estimator raising or a Ctrl-C would."""

    def __init__(self, error: BaseException, at: int = 3):
        self.error, self.at, self.calls = error, at, 0

    def partial_fit(self, X, y, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            raise self.error
        return self


@pytest.mark.parametrize("error, raised", [(KeyboardInterrupt(), TrainingInterrupted),
                                           (ValueError("bad block"), DataError)])
def test_a_window_stopped_midway_leaves_no_loader_waiting(by_label, error, raised):
    """The window's loaders are mid-partition (10 blocks each, 1 queued): stopping must cancel
    every one of them, not only those not yet handed to the mixer, or the fit never returns."""
    folder, _ = by_label
    outcome = _fit_in_thread(_Failing(error), folder, window=None)
    assert len(outcome) == 1 and isinstance(outcome[0], raised), outcome


def _fit_in_thread(trainer, folder: Path, window: int | None) -> list[BaseException]:
    """Train on the folder's files on a thread of its own; what it raised (a fit that hangs
    on a loader left waiting fails the test)."""
    outcome: list[BaseException] = []

    def fit() -> None:
        try:
            train(trainer, partitions(dd.read_parquet(sorted(folder.glob("*.parquet")))),
                  BlockRecipe(prep=None, target="y", labels=None, block_rows=1000),
                  TrainOptions(shuffle=True, seed=1, window=window))
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    runner = threading.Thread(target=fit, daemon=True)
    runner.start()
    runner.join(timeout=120)  # a deadlock guard, not a speed limit: the fit fails at once
    assert not runner.is_alive(), "the fit hung on a loader left waiting"
    return outcome


class _Paced(_Recorder):
    """Keeps each block, taking 40 ms over it as a real estimator on big blocks would: the
    next window's loaders start a few blocks before this window's end, and a loader thread
    (niced) must get a core in that time even on a busy machine."""

    def partial_fit(self, X, y, **kwargs):
        threading.Event().wait(0.04)
        return super().partial_fit(X, y, **kwargs)


class _Reads:
    """The files the fit reads, spied on around the real reader: the blocks ``trainer`` had
    trained when each file's reading started, and the most files read at once."""

    def __init__(self, monkeypatch, trainer: _Recorder):
        import oocml.io.partitions as partitions_module

        self.opened: dict[str, int] = {}
        self.most, reading, read = 0, set(), partitions_module.read_batches

        def spied(path, *args, **kwargs):
            self.opened[path] = len(trainer.blocks)
            reading.add(path)
            self.most = max(self.most, len(reading))
            try:
                yield from read(path, *args, **kwargs)
            finally:
                reading.discard(path)

        monkeypatch.setattr(partitions_module, "read_batches", spied)


def test_the_next_window_starts_reading_as_this_one_ends(by_label, monkeypatch):
    """A loader of the next window starts each time one of this window's has read its file to
    the end: the next window's first blocks are made while this one's last spans are drawn,
    and no more files are read at once than a window holds."""
    folder, _ = by_label
    files = sorted(folder.glob("*.parquet"))
    trainer = _Paced()
    reads = _Reads(monkeypatch, trainer)
    train(trainer, partitions(dd.read_parquet(files)),
          BlockRecipe(prep=None, target="y", labels=None, block_rows=1000),
          TrainOptions(shuffle=True, seed=1, window=2))
    origin = {x: str(f) for f in files for x in pd.read_parquet(f).x0}
    first = sorted(reads.opened, key=reads.opened.get)[:2]  # the first window's files
    blocks = sum(origin[X.x0.iloc[0]] in first for X in trainer.blocks)
    assert len(reads.opened) == 4 and 15 <= blocks <= 25  # about 20 blocks of 20,000 rows
    assert reads.most <= 2
    later = [n for f, n in reads.opened.items() if f not in first]  # blocks trained by then
    assert min(later) < blocks, (reads.opened, blocks)


class _FailingOnceAhead(_Paced):
    """Fails at its first block once both files of the next window (of 2) are being read."""

    def __init__(self, error: BaseException):
        super().__init__()
        self.error, self.reads = error, None

    def partial_fit(self, X, y, **kwargs):
        if len(self.reads.opened) > 3:
            raise self.error
        return super().partial_fit(X, y, **kwargs)


@pytest.mark.parametrize("error, raised", [(KeyboardInterrupt(), TrainingInterrupted),
                                           (ValueError("bad block"), DataError)])
def test_a_fit_stopped_once_the_next_window_started_leaves_no_loader_waiting(
        by_label, monkeypatch, error, raised):
    """Stopped between the start of the next window's loaders and the end of this window:
    those loaders too are cancelled, or the fit never returns."""
    folder, _ = by_label
    trainer = _FailingOnceAhead(error)
    trainer.reads = _Reads(monkeypatch, trainer)
    outcome = _fit_in_thread(trainer, folder, window=2)
    assert len(outcome) == 1 and isinstance(outcome[0], raised), outcome
    assert len(trainer.reads.opened) == 4 and len(trainer.blocks) < 30  # in the first window


def _cut(X: np.ndarray, y: np.ndarray, bounds: list[int]) -> list[tuple]:
    edges = [0, *bounds, len(X)]
    return [(X[a:b], y[a:b]) for a, b in zip(edges, edges[1:])]


def test_the_mixed_blocks_do_not_depend_on_how_partitions_were_cut():
    """A window's partitions read in smaller batches (or from the cache) are cut into other
    blocks: the mixed blocks are the same, as spans count rows, not blocks."""
    from oocml.engine.mixing import mixed

    rng = np.random.default_rng(0)
    parts = [(rng.normal(size=(n, 3)), rng.integers(0, 2, n)) for n in (1_000, 2_345, 777)]
    runs = []
    for cuts in ([[], [], []], [[100, 350, 999], [1, 2, 1_200], [500]],
                 [list(range(7, 1_000, 7)), list(range(250, 2_345, 250)), [776]]):
        streams = [_cut(X, y, c) for (X, y), c in zip(parts, cuts)]
        runs.append(list(mixed(streams, (4, 0, 0), [0, 0, 0], (1_000, 2_345, 777), 100)))
    for run in runs[1:]:
        assert len(run) == len(runs[0])
        for (X, y), (X0, y0) in zip(run, runs[0]):
            np.testing.assert_array_equal(X, X0)
            np.testing.assert_array_equal(y, y0)
    assert sum(len(X) for X, _ in runs[0]) == 1_000 + 2_345 + 777


def test_a_block_draws_random_rows_of_each_span_in_their_order():
    """Each block takes a random share of every partition's span, the rows in their order
    within the span: a span is gathered from as the loaders made its blocks, never copied
    into one array first (the order inside a block is the estimator's to shuffle)."""
    from oocml.engine.mixing import SPAN_BLOCKS, mixed

    rows, unit = 10_000, 400  # row i of partition p holds (p, i)
    parts = [(np.column_stack([np.full(rows, p, float), np.arange(rows, dtype=float)]),
              np.full(rows, p)) for p in range(3)]
    streams = [_cut(X, y, [2_500, 5_000, 7_500]) for X, y in parts]
    blocks = list(mixed(streams, (1, 0, 0), [0, 0, 0], None, unit))
    for p in range(3):
        shares = [X[X[:, 0] == p, 1].astype(int) for X, _ in blocks]
        assert sorted(np.concatenate(shares)) == list(range(rows))  # every row, once
        spans = [share // (SPAN_BLOCKS * unit) for share in shares]
        for share, span in zip(shares, spans):
            for k in np.unique(span):  # ascending within each span it draws from
                assert (np.diff(share[span == k]) > 0).all()
        first = shares[0]  # a random share of the first span, not its first rows
        assert len(first) < SPAN_BLOCKS * unit and first.max() >= len(first)


def test_the_partitions_of_a_window_refill_their_spans_in_turn():
    """Partitions drawn from at the same pace would all run out of their spans in the same
    turn, and the mixer would wait for every loader at once: their first spans are staggered,
    so that after the first block no block needs new rows from two partitions."""
    from oocml.engine.mixing import mixed

    unit, blocks = 400, []
    pulls: list[tuple[int, int]] = []  # (partition, mixed blocks made) as each block is read

    def stream(p: int):
        X = np.arange(20 * unit, dtype=float).reshape(-1, 1)
        for k in range(20):
            pulls.append((p, len(blocks)))
            yield X[k * unit:(k + 1) * unit], np.full(unit, p)

    for block in mixed([stream(p) for p in range(4)], (2, 0, 0), [0] * 4, None, unit):
        blocks.append(block)
    assert sum(len(X) for X, _ in blocks) == 4 * 20 * unit
    turns = {}
    for p, turn in pulls:
        if turn > 0:
            turns.setdefault(turn, set()).add(p)
    assert turns and all(len(ps) == 1 for ps in turns.values()), turns
