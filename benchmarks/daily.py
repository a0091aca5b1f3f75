"""UPDATE on daily data: what one new day costs, and where 29 daily updates land against one fit.

    python benchmarks/daily.py                          # both parts: cost on 30 days of 1M rows x 10
    python benchmarks/daily.py --part cost --rows-per-day 200_000 --repeat 3
    python benchmarks/daily.py --part accuracy --accuracy-rows-per-day 50_000 --json daily.json
    python benchmarks/daily.py --part accuracy --drift 0           # the same task every day only
    python benchmarks/daily.py --data /big/disk/daily   # keep the days somewhere you choose

Days are Hive folders ``events/day=1/ ... day=30/``, each written by
``oocml.datasets.make_parquet_dataset(seed=0, sample=day)``: other rows of one task. Every
statement is ``... PREDICT y FEATURES * EXCLUDE (day) SCALE standard``.

cost: the store holds ``daily``, trained on days 1..29 (prepared each round, not timed); day 30
appears, and ``UPDATE daily ON 'events/' NEW`` (list the folder, load the model, a statistics
and a training pass over day 30, save a new version) is timed against a fresh ``TRAIN`` on
``events/day=30`` alone. Each statement runs in its own child process; the ratio of each round
is printed with its phases and the child's peak memory. Target: UPDATE at most 1.2x the TRAIN.

accuracy: ``TRAIN`` on day 1, then 29 ``UPDATE ... NEW``, day k's folder appearing before the
k-th, against one ``TRAIN`` over the 30 days; both scored on held-out rows of the same task
(``sample=10_000``). Target: within 0.005. Then the same on days whose features drift
(``--drift F``, default 0.2; 0: not run): day k's moved by F x (k-1)/29 of each column's
spread, the labels kept (the boundary moves), scored on rows of the last day. See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scaled_sgd as shared  # noqa: E402  (its marker, machine, load and exit helpers)
from children import peak_mb, run_child, versions, warm_page_cache  # noqa: E402

PACKAGES = ("oocml", "dask", "scikit-learn", "pandas", "pyarrow", "numpy", "skops")
SEED = 0  # the task of make_parquet_dataset; day k is its sample k
TEST_SAMPLE = 10_000  # the held-out rows' sample: no day's
CLAUSES = "PREDICT y FEATURES * EXCLUDE (day) SCALE standard"
COST_TARGET = 1.2  # UPDATE of one day at most this times a fresh TRAIN on that day
ACCURACY_TARGET = 0.005  # 29 updates within this of one TRAIN over every day
GENERATOR_VERSION = 1  # bump when the writer below changes: the days are written again
PHASES = ("list", "load", "open", "stats", "train", "save", "other")


# -- the days (written once, reused while their marker matches) --------------------------------


def write_day(folder: Path, day: int, rows: int, features: int, files: int, drift: float,
              days: int, sample: int | None = None) -> None:
    """Day ``day``'s rows in ``folder``; with ``drift``, every feature moved by
    drift x (day-1)/(days-1) of its spread in the file (the labels stay: the boundary moves)."""
    from oocml.datasets import make_parquet_dataset

    paths = make_parquet_dataset(folder, rows=rows, features=features, files=files, seed=SEED,
                                 sample=day if sample is None else sample, workers=1)
    if not drift:
        return
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    shift = drift * (day - 1) / max(days - 1, 1)
    for path in paths:
        table = pq.read_table(path)
        for j in range(features):
            column = table[f"x{j}"]
            moved = pc.add(column, pa.scalar(shift * pc.stddev(column).as_py()))
            table = table.set_column(j, f"x{j}", moved)
        pq.write_table(table, path)


def ensure_days(root: Path, rows: int, features: int, days: int, files: int, test_rows: int,
                drift: float = 0.0, owned: bool = True) -> Path:
    """``root/daily-.../`` holding ``days/day=1..`` and, with ``test_rows``, ``test/`` (held
    out; with ``drift``, rows of the last day); written unless its marker says it holds this
    shape, never over a ``days/`` without a marker in a folder the user named (exit code 2)."""
    name = f"daily-{rows}x{features}-{days}d-{files}f" + (f"-test{test_rows}" if test_rows else "")
    folder = root / (name + (f"-drift{drift:g}" if drift else ""))
    shape = {"rows_per_day": rows, "features": features, "days": days, "files_per_day": files,
             "test_rows": test_rows, "drift": drift, "seed": SEED, "version": GENERATOR_VERSION}
    marker = folder / shared.MARKER  # "_oocml_bench.json": what the folder holds
    if marker.is_file() and json.loads(marker.read_text()) == shape:
        return folder
    if (folder / "days").exists() and not marker.is_file() and not owned:
        shared.fail(f"{folder} holds data this benchmark did not write; pass another --data")
    marker.unlink(missing_ok=True)
    for old in ("days", "test"):
        shutil.rmtree(folder / old, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    jobs = [(folder / "days" / f"day={k}", k, None) for k in range(1, days + 1)]
    if test_rows:
        jobs.append((folder / "test", days, TEST_SAMPLE))  # drifted as the last day
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(lambda job: write_day(
            job[0], job[1], test_rows if job[2] else rows, features, 1 if job[2] else files,
            drift, days, job[2]), jobs))
    marker.write_text(json.dumps(shape))
    print(f"generated {days} days of {rows:,} rows x {features} float64 ({files} file(s) a day)"
          + (f" and {test_rows:,} held-out rows" if test_rows else "")
          + (f", drift {drift:g}" if drift else "")
          + f" in {folder} ({time.perf_counter() - start:.1f}s)", flush=True)
    return folder


def appear(folder: Path, day: int, events: Path) -> Path:
    """Day ``day`` of ``folder`` appears in ``events/`` (hard links: the same files, size and
    mtime; a copy keeping them where links fail). Its folder in ``events``."""
    source, target = folder / "days" / f"day={day}", events / f"day={day}"
    target.mkdir(parents=True)
    for path in sorted(source.glob("*.parquet")):
        try:
            os.link(path, target / path.name)
        except OSError:
            shutil.copy2(path, target / path.name)
    return target


def statement(verb: str, source: Path, name: str) -> str:
    return (f"UPDATE {name} ON '{source}' NEW" if verb == "UPDATE"
            else f"TRAIN sgd ON '{source}' {CLAUSES} AS {name}")


# -- the children ------------------------------------------------------------------------------


def import_first() -> None:
    """What both statements import or build on first use (oocml's engine, the statement
    parser, skops for the model file), done before any clock starts."""
    import dask.dataframe  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import skops.io  # noqa: F401

    import oocml.engine.fit  # noqa: F401
    import oocml.engine.update  # noqa: F401
    import oocml.model  # noqa: F401
    import oocml.session  # noqa: F401
    from oocml.dsl.parser import parse

    parse("SHOW MODELS")  # builds the parser


class Phases:
    """Seconds spent in a statement's steps, by wrapping the session's calls: ``list`` (NEW's
    listing of the source), ``load`` (the model read from the store), ``open`` (the source
    opened lazily), ``save`` (the new version written); ``stats`` and ``train`` come from the
    model's report, ``other`` is the rest (parsing, planning, the store's listings)."""

    def __init__(self) -> None:
        import oocml.session as session
        from oocml.catalog import Catalog

        self.seconds = dict.fromkeys(("list", "load", "open", "save"), 0.0)
        self._wrap(session.Session, "_fresh_files", "list")
        self._wrap(Catalog, "get", "load")
        self._wrap(session, "open_source", "open")
        self._wrap(Catalog, "put", "save")

    def _wrap(self, owner, attribute: str, phase: str) -> None:
        original = getattr(owner, attribute, None)
        if original is None:  # renamed: that phase stays in "other"
            return

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - start

        setattr(owner, attribute, timed)

    def split(self, wall: float, report) -> dict:
        found = {**self.seconds, "stats": report.stats_seconds or 0.0,
                 "train": report.train_seconds or 0.0}
        found["other"] = wall - sum(found.values())
        return {phase: found[phase] for phase in PHASES}


def run_statement(store: Path, text: str) -> dict:
    """One statement on a session of ``store``, timed (the clock around ``Session.sql``)."""
    import_first()
    import oocml

    session = oocml.Session(store, progress=False)
    phases = Phases()
    baseline, start, cpu = peak_mb(), time.perf_counter(), time.process_time()
    model = session.sql(text)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    if isinstance(model, str):
        return {"statement": text, "wall_s": wall, "message": model, "fit_peak_rss_mb": peak_mb()}
    step = model.lineage[-1]
    info = {k: v for k, v in model.report.as_dict().items() if type(v) in (int, float)}
    return {"statement": text, "wall_s": wall, "cpu_s": cpu, "phases": phases.split(wall, model.report),
            "rows_seen": model.report.rows_seen, "files": len(step.files or ()),
            "score": step.score, "score_kind": step.score_kind, "lineage_steps": len(model.lineage),
            "baseline_rss_mb": baseline, "fit_peak_rss_mb": peak_mb(), "info": info}


def run_once(folder: Path, work: Path) -> dict:
    """One TRAIN over every day, scored on the held-out rows."""
    import_first()
    import pandas as pd

    import oocml

    test = pd.read_parquet(folder / "test")
    session = oocml.Session(work / "store-once", progress=False)
    text = statement("TRAIN", folder / "days", "once")
    start = time.perf_counter()
    model = session.sql(text)
    wall = time.perf_counter() - start
    order = [Path(f.path).parent.name for f in model.lineage[-1].files or ()]
    return {"statement": text, "seconds": wall, "rows_seen": model.report.rows_seen,
            "in_day_order": order == [f"day={k}" for k in range(1, len(order) + 1)],
            "stats_seconds": model.report.stats_seconds,
            "train_seconds": model.report.train_seconds,
            "accuracy": round(float(model.score(test)), 4), "fit_peak_rss_mb": peak_mb()}


def run_updates(folder: Path, work: Path) -> dict:
    """TRAIN on day 1, then each later day appears in ``events/`` and ``UPDATE ... NEW`` trains
    on it; the held-out accuracy after every day (not timed)."""
    import_first()
    import pandas as pd

    import oocml

    days = json.loads((folder / shared.MARKER).read_text())["days"]
    test = pd.read_parquet(folder / "test")
    session, events = oocml.Session(work / "store-daily", progress=False), work / "events"
    steps = []
    for day in range(1, days + 1):
        appear(folder, day, events)
        text = (statement("TRAIN", events, "daily") if day == 1
                else statement("UPDATE", events, "daily"))
        start = time.perf_counter()
        model = session.sql(text)
        wall = time.perf_counter() - start
        if isinstance(model, str):
            raise RuntimeError(f"day {day}: {model}")
        steps.append({"day": day, "seconds": wall, "rows_seen": model.report.rows_seen,
                      "files": len(model.lineage[-1].files or ()),
                      "score": model.lineage[-1].score,
                      "accuracy": round(float(model.score(test)), 4)})
    return {"statements": [statement("TRAIN", events, "daily"), statement("UPDATE", events, "daily")],
            "seconds": sum(s["seconds"] for s in steps), "steps": steps,
            "versions": len(model.lineage), "accuracy": steps[-1]["accuracy"],
            "fit_peak_rss_mb": peak_mb()}


def child_main(args: argparse.Namespace) -> None:
    import warnings

    warnings.simplefilter("ignore")
    if args.child == "statement":
        figures = run_statement(args.store, args.statement)
    else:
        figures = (run_once if args.child == "once" else run_updates)(args.data, args.work)
    figures["peak_rss_mb"] = max(peak_mb(), figures["fit_peak_rss_mb"])
    args.result.write_text(json.dumps(figures))


# -- the parent: cost --------------------------------------------------------------------------


def cost_round(folder: Path, days: int, r: int) -> dict:
    """One round: a fresh store trained on days 1..days-1, day ``days`` appears, then UPDATE
    and the fresh TRAIN, each in a child after the page cache was warmed (the order reversed
    every other round)."""
    work = Path(tempfile.mkdtemp(prefix="_work-", dir=folder))  # "_": never read as data
    try:
        events = work / "events"
        for day in range(1, days):
            appear(folder, day, events)
        print(f"cost, round {r}: TRAIN on days 1..{days - 1} (not timed) ...", flush=True)
        base = run_child(__file__, "statement", folder, store=work / "store",
                         statement=statement("TRAIN", events, "daily"))
        if "error" in base:
            return {"prepare": base}
        last = appear(folder, days, events)
        texts = {"UPDATE": statement("UPDATE", events, "daily"),
                 "TRAIN": statement("TRAIN", last, "fresh")}
        stores = {"UPDATE": work / "store", "TRAIN": work / "store-fresh"}
        runs = {}
        for verb in ("UPDATE", "TRAIN") if r % 2 else ("TRAIN", "UPDATE"):
            print(f"cost, round {r}: {verb} ...", flush=True)
            warm_page_cache(last)
            runs[verb] = run_child(__file__, "statement", folder, store=stores[verb],
                                   statement=texts[verb])
        return {"prepare": base, "first": next(iter(runs)),
                **{verb: runs[verb] for verb in ("UPDATE", "TRAIN")}}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cost_part(args: argparse.Namespace, root: Path) -> dict:
    folder = ensure_days(root, args.rows_per_day, args.features, args.days, args.files_per_day,
                         0, owned=args.data is None)
    rounds = [cost_round(folder, args.days, r) for r in range(1, args.repeat + 1)]
    for run in rounds:
        ok = all("error" not in run.get(v, {"error": "not run"}) for v in ("UPDATE", "TRAIN"))
        run["ratio"] = run["UPDATE"]["wall_s"] / run["TRAIN"]["wall_s"] if ok else None
        run["cpu_ratio"] = run["UPDATE"]["cpu_s"] / run["TRAIN"]["cpu_s"] if ok else None
        run["within"] = None if run["ratio"] is None else run["ratio"] <= COST_TARGET
    done = [run for run in rounds if run["ratio"] is not None]
    best = {verb: min(run[verb]["wall_s"] for run in done) for verb in ("UPDATE", "TRAIN")} \
        if done else None
    result = {"folder": str(folder), "rows_per_day": args.rows_per_day, "days": args.days,
              "features": args.features, "files_per_day": args.files_per_day, "rounds": rounds,
              "target": COST_TARGET, "best_seconds": best,
              "best_ratio": best and best["UPDATE"] / best["TRAIN"],
              "geometric_mean_ratio": statistics.geometric_mean([r["ratio"] for r in done])
              if done else None}
    print_cost(result)
    return result


def print_cost(result: dict) -> None:
    days, rows = result["days"], result["rows_per_day"]
    print(f"\ncost: one new day of {rows:,} rows x {result['features']} float64 "
          f"({result['files_per_day']} file(s)) after {days - 1} days; each statement a fresh "
          f"child, page cache of day {days} warmed before each")
    print(f"  UPDATE: UPDATE daily ON '<events>' NEW    (store: daily trained on days 1..{days - 1})")
    print(f"  TRAIN:  TRAIN sgd ON '<events>/day={days}' {CLAUSES} AS fresh")
    print(f"{'round':>5s}  {'statement':9s} {'wall s':>7s} {'cpu s':>6s} "
          + " ".join(f"{p:>6s}" for p in PHASES)
          + f" {'rows':>11s} {'peak MB':>8s} {'before MB':>10s}")
    for r, run in enumerate(result["rounds"], 1):
        if "error" in run["prepare"]:
            print(f"{r:5d}  prepare   failed: {run['prepare']['error']}")
            continue
        for verb in ("UPDATE", "TRAIN"):
            x = run[verb]
            if "error" in x or "phases" not in x:
                print(f"{r:5d}  {verb:9s} failed: {x.get('error') or x.get('message')}")
                continue
            print(f"{r:5d}  {verb:9s} {x['wall_s']:7.2f} {x['cpu_s']:6.2f} "
                  + " ".join(f"{x['phases'][p]:6.2f}" for p in PHASES)
                  + f" {x['rows_seen']:11,d} {x['fit_peak_rss_mb']:8.0f} {x['baseline_rss_mb']:10.0f}")
    print("cpu s: the child's CPU time during the statement, all threads (less moved by other "
          "processes than wall s)")
    print("phases (wall s): list = NEW's listing of the source, load = the model read from the store, open = "
          "the source opened, stats/train = the passes (model.report), save = the version "
          "written, other = the rest")
    for r, run in enumerate(result["rounds"], 1):
        if run["ratio"] is None:
            continue
        base = run["prepare"]
        print(f"round {r} ({run['first']} first): UPDATE / TRAIN = {run['ratio']:.2f}x; at most "
              f"{COST_TARGET}x: {'yes' if run['within'] else 'NO'}; in CPU time "
              f"{run['cpu_ratio']:.2f}x   (days 1..{days - 1} trained in "
              f"{base['wall_s']:.1f}s, not timed; UPDATE's test-then-train score "
              f"{run['UPDATE']['score']:.4f})")
    ratios, best = [run["ratio"] for run in result["rounds"] if run["ratio"]], result["best_seconds"]
    if ratios:
        print(f"over {len(ratios)} round(s): UPDATE / TRAIN per round from {min(ratios):.2f}x to "
              f"{max(ratios):.2f}x, geometric mean {result['geometric_mean_ratio']:.2f}x; best "
              f"UPDATE {best['UPDATE']:.2f}s / best TRAIN {best['TRAIN']:.2f}s = "
              f"{result['best_ratio']:.2f}x")


# -- the parent: accuracy ----------------------------------------------------------------------


def accuracy_case(args: argparse.Namespace, root: Path, drift: float) -> dict:
    folder = ensure_days(root, args.accuracy_rows_per_day, args.features, args.days,
                         args.files_per_day, args.test_rows, drift, owned=args.data is None)
    label = f"drift {drift:g}" if drift else "same task every day"
    work = Path(tempfile.mkdtemp(prefix="_work-", dir=folder))
    try:
        print(f"accuracy ({label}): {args.days - 1} updates ...", flush=True)
        updates = run_child(__file__, "updates", folder, work=work)
        print(f"accuracy ({label}): one TRAIN over {args.days} days ...", flush=True)
        once = run_child(__file__, "once", folder, work=work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = "error" not in updates and "error" not in once
    difference = round(updates["accuracy"] - once["accuracy"], 4) if ok else None
    result = {"folder": str(folder), "drift": drift, "rows_per_day": args.accuracy_rows_per_day,
              "days": args.days, "test_rows": args.test_rows, "updates": updates, "once": once,
              "difference": difference, "target": None if drift else ACCURACY_TARGET,
              "within": None if difference is None or drift else abs(difference) <= ACCURACY_TARGET}
    print_accuracy(result, label)
    return result


def print_accuracy(result: dict, label: str) -> None:
    days, rows = result["days"], result["rows_per_day"]
    held = "rows of the last day's drift" if result["drift"] else "rows of the same task"
    print(f"\naccuracy ({label}): {days} days of {rows:,} rows; held out: "
          f"{result['test_rows']:,} {held}; every statement {CLAUSES}")
    print(f"{'path':38s} {'accuracy':>9s} {'seconds':>8s} {'rows seen':>11s} {'peak MB':>8s}")
    for name, key in ((f"TRAIN day 1 + {days - 1} x UPDATE ... NEW", "updates"),
                      (f"one TRAIN over {days} days", "once")):
        x = result[key]
        if "error" in x:
            print(f"{name:38s} failed: {x['error']}")
            continue
        seen = (sum(s["rows_seen"] for s in x["steps"]) if key == "updates" else x["rows_seen"])
        print(f"{name:38s} {x['accuracy']:9.4f} {x['seconds']:8.2f} {seen:11,d} "
              f"{x['fit_peak_rss_mb']:8.0f}")
    if result["difference"] is None:
        return
    print(f"updates - one TRAIN: {result['difference']:+.4f}; " + (
        "no target with drift" if result["drift"] else
        f"within {ACCURACY_TARGET}: {'yes' if result['within'] else 'NO'}")
        + ("" if result["once"]["in_day_order"] else "; the one TRAIN read the days out of order"))
    steps = result["updates"]["steps"]
    shown = sorted({1, 2, 3, 5, *range(10, days + 1, 5), days} & set(range(1, days + 1)))
    print("held-out accuracy after day: " + ", ".join(
        f"{k}: {steps[k - 1]['accuracy']:.4f}" for k in shown))
    updates = [s for s in steps if s["day"] > 1]
    if updates:
        seconds = sorted(s["seconds"] for s in updates)
        print(f"each UPDATE: median {seconds[len(seconds) // 2]:.2f}s (min {seconds[0]:.2f}, max "
              f"{seconds[-1]:.2f}); test-then-train score of day {days}'s update "
              f"{updates[-1]['score']:.4f}")


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    number = lambda s: int(s.replace("_", ""))  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["cost", "accuracy", "both"], default="both")
    parser.add_argument("--rows-per-day", type=number, default=1_000_000,
                        help="rows of every day in the cost part")
    parser.add_argument("--accuracy-rows-per-day", type=number, default=100_000,
                        help="rows of every day in the accuracy part")
    parser.add_argument("--test-rows", type=number, default=200_000,
                        help="held-out rows of the accuracy part")
    parser.add_argument("--features", type=number, default=10)
    parser.add_argument("--days", type=number, default=30)
    parser.add_argument("--files-per-day", type=number, default=1)
    parser.add_argument("--drift", type=float, default=0.2,
                        help="the accuracy part also on drifting days: the last day's features "
                             "moved by this much of their spread (0: not run)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of the cost part")
    parser.add_argument("--data", type=Path, help="data sets' folder (default $TMPDIR/oocml-bench)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    for hidden, kind in (("--child", str), ("--result", Path), ("--store", Path),
                         ("--statement", str), ("--work", Path)):
        parser.add_argument(hidden, type=kind, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.days < 2 or args.files_per_day < 1 or args.drift < 0:
        parser.error("need --repeat >= 1, --days >= 2, --files-per-day >= 1 and --drift >= 0")
    if min(args.rows_per_day, args.accuracy_rows_per_day) < args.files_per_day:
        parser.error("need at least one row a file")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    root = args.data or Path(tempfile.gettempdir()) / "oocml-bench"
    started = time.perf_counter(), shared.cpu_seconds()
    results = {"machine": shared.machine(), "versions": versions(PACKAGES), "seed": SEED,
               "repeat": args.repeat, "clauses": CLAUSES}
    load = os.getloadavg()
    print(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"({results['machine']['cpus']} cpus)", flush=True)
    if args.part in ("cost", "both"):
        results["cost"] = cost_part(args, root)
    if args.part in ("accuracy", "both"):
        print(flush=True)
        results["accuracy"] = {"same": accuracy_case(args, root, 0.0)}
        if args.drift:
            print(flush=True)
            results["accuracy"]["drift"] = accuracy_case(args, root, args.drift)
    results["machine"].update(shared.interference(started[1], time.perf_counter() - started[0]))
    results["machine"]["load_averages_at_start"] = list(load)
    print()
    shared.finish(results, args.json)


if __name__ == "__main__":
    main()
