"""The scaled-SGD benchmark: StandardScaler + SGDClassifier out-of-core, oocml vs dask-ml, one run.

    python benchmarks/scaled_sgd.py                       # 10M rows x 20 float64 in 20 parquet files
    python benchmarks/scaled_sgd.py --rows 1_000_000 --files 10 --json result.json
    python benchmarks/scaled_sgd.py --only oocml --dtype float32 --repeat 3
    python benchmarks/scaled_sgd.py --only oocml oocml_parallel --cluster 2   # on a LocalCluster

Each contender runs in its own child process (so its peak RSS is its own), one
after the other, on the same files, each after the page cache was warmed the
same way. The same run measures the machine's ceilings: raw ``partial_fit``
over the blocks already in memory, and pyarrow's read rate on one core. See
benchmarks/README.md for what every figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from children import as_installed, run_child  # noqa: E402

CONTENDERS = ("oocml", "oocml_parallel", "oocml_checkpoint", "daskml")
LABELS = {"oocml": "oocml", "oocml_parallel": "oocml PARALLEL", "oocml_checkpoint": "oocml CKPT",
          "daskml": "dask-ml"}
MARKER = "_oocml_bench.json"  # leading "_": dask, pyarrow and oocml all skip it when reading
CEILING_LIMIT_BYTES = 4 * 10**9  # above this, the in-memory partial_fit ceiling is skipped


# -- data ---------------------------------------------------------------------------------------


def ensure_data(folder: Path, rows: int, files: int, features: int, dtype: str, *,
                owned: bool = False) -> bool:
    """Generate the data set into ``folder`` unless its marker says it already holds this shape.

    Returns whether data was generated. Overwrites parquet files without a marker only in
    a folder the benchmark ``owned`` (its default folder), never in one the user named.
    """
    from oocml.datasets import make_parquet_dataset

    shape = {"rows": rows, "files": files, "features": features, "dtype": dtype}
    marker = folder / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == shape:
        return False
    existing = sorted(folder.glob("*.parquet"))
    if existing and not marker.is_file() and not owned:
        fail(f"{folder} holds parquet files this benchmark did not write; "
             "pass an empty or new folder to --data")
    marker.unlink(missing_ok=True)
    for old in existing:
        old.unlink()
    start = time.perf_counter()
    make_parquet_dataset(folder, rows=rows, features=features, files=files, dtype=dtype, seed=0)
    marker.write_text(json.dumps(shape))
    print(f"generated {rows:,} rows x {features} {dtype} in {files} files "
          f"({time.perf_counter() - start:.1f}s)", flush=True)
    return True


def data_files(folder: Path) -> list[Path]:
    """The data set's parquet files, in order."""
    return sorted(folder.glob("*.parquet"))


def warm_page_cache(folder: Path) -> None:
    """Read every file once so that every contender and ceiling starts from a warm page cache."""
    for path in data_files(folder):
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass


# -- contenders (each runs in its own child process) --------------------------------------------


def run_oocml(folder: Path, **options: Any) -> dict[str, Any]:
    """The scaled-SGD task through oocml's accessor: scale, fit incrementally, score."""
    import dask.dataframe as dd
    from sklearn.linear_model import SGDClassifier

    import oocml  # noqa: F401  (registers the .ml accessor)

    ddf = dd.read_parquet(folder)
    baseline = rss_mb()
    start = time.perf_counter()
    model = ddf.ml.scale().fit_incremental(SGDClassifier, target="y", random_state=0, **options)
    fit = time.perf_counter() - start
    fit_peak = rss_mb()
    start = time.perf_counter()
    accuracy = float(model.score(ddf))
    score = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:  # PREDICT ... INTO: read, predict, write parquet
        start = time.perf_counter()
        model.write_predictions(ddf, Path(tmp) / "predictions")
        predict_into = time.perf_counter() - start
    info = {k: v for k, v in model.report.as_dict().items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"fit_s": fit, "predict_score_s": score, "predict_into_s": predict_into,
            "accuracy": accuracy, "coef_dtype": str(model.estimator.coef_.dtype),
            "baseline_rss_mb": baseline, "fit_peak_rss_mb": fit_peak, "info": info}


def run_daskml(folder: Path) -> dict[str, Any]:
    """dask-ml's scaled-SGD pipeline, fitted exactly as its documentation does it.

    One adaptation: under dask-expr ``pipe.score(X, y)`` raises (X and y are projected
    separately and their partitionings diverge), so accuracy is computed from
    ``pipe.predict(X)`` and ``y``, both computed in one ``dask.compute``.
    """
    import dask
    import dask.dataframe as dd
    import numpy as np
    from dask_ml.preprocessing import StandardScaler
    from dask_ml.wrappers import Incremental
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline

    ddf = dd.read_parquet(folder)
    X, y = ddf.drop(columns="y"), ddf["y"]
    pipe = make_pipeline(StandardScaler(),
                         Incremental(SGDClassifier(random_state=0), scoring="accuracy"))
    baseline = rss_mb()
    start = time.perf_counter()
    pipe.fit(X, y, incremental__classes=[0, 1])
    fit = time.perf_counter() - start
    fit_peak = rss_mb()
    start = time.perf_counter()
    predicted, truth = dask.compute(pipe.predict(X), y)
    accuracy = float((np.asarray(predicted) == truth.to_numpy()).mean())
    score = time.perf_counter() - start
    return {"fit_s": fit, "predict_score_s": score, "accuracy": accuracy,
            "baseline_rss_mb": baseline, "fit_peak_rss_mb": fit_peak}


def run_checkpointed(folder: Path) -> dict[str, Any]:
    """oocml writing a checkpoint after every partition: the worst case of its overhead."""
    with tempfile.TemporaryDirectory() as tmp:
        return run_oocml(folder, checkpoint=Path(tmp) / "fit.ckpt", checkpoint_every=1)


RUNNERS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "oocml": run_oocml, "daskml": run_daskml,
    "oocml_parallel": lambda folder: run_oocml(folder, strategy="average"),
    "oocml_checkpoint": run_checkpointed}


def rss_mb() -> float:
    """This process's peak resident memory so far, in MB.

    Linux's ``VmHWM`` is the high-water mark of this program's own memory; ``ru_maxrss``
    would also count the parent's peak, which a child spawned with vfork inherits at exec.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS


def child_main(name: str, folder: Path, result_file: Path, cluster: int = 0) -> None:
    """Entry point of a child process: run one contender (on a fresh ``LocalCluster`` of
    ``cluster`` single-threaded worker processes, if asked), write its figures as JSON."""
    import contextlib
    import warnings

    warnings.simplefilter("ignore")  # dask-ml's FutureWarnings would drown the output
    if name != "daskml":
        as_installed()  # what oocml's install imports, not dask-ml's sparse (children.py)
    with contextlib.ExitStack() as stack:
        if cluster:
            from distributed import Client, LocalCluster

            local = stack.enter_context(LocalCluster(n_workers=cluster, threads_per_worker=1,
                                                     processes=True, dashboard_address=None))
            client = stack.enter_context(Client(local))
            # A cluster lives longer than one fit: import what the tasks need on every worker
            # first, as a warm cluster would have, so the first pass does not pay for it.
            client.run(warm_worker, name)
        result = RUNNERS[name](folder)
    result["peak_rss_mb"] = rss_mb()  # this (client) process; workers are processes of their own
    result_file.write_text(json.dumps(result))


def warm_worker(name: str) -> None:
    """Import the contender's modules in a worker process."""
    import importlib

    for module in ("pyarrow.parquet", "sklearn.linear_model", "dask.dataframe",
                   "dask_ml.wrappers" if name == "daskml" else "oocml"):
        importlib.import_module(module)


def run_contender(name: str, folder: Path, repeat: int, cluster: int = 0) -> dict[str, Any]:
    """``repeat`` fresh child runs of one contender; best times, mean accuracy, worst memory."""
    runs = []
    for _ in range(repeat):
        warm_page_cache(folder)
        runs.append(run_child(__file__, name, folder, cluster=cluster))
        if "error" in runs[-1]:
            return runs[-1]
    best = min(runs, key=lambda r: r["fit_s"])
    summary = {"fit_s": best["fit_s"],
               "predict_score_s": min(r["predict_score_s"] for r in runs),
               **({"predict_into_s": min(r["predict_into_s"] for r in runs),
                   "coef_dtype": best["coef_dtype"]} if "predict_into_s" in best else {}),
               "accuracy": statistics.fmean(r["accuracy"] for r in runs),
               "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
               "fit_peak_rss_mb": max(r["fit_peak_rss_mb"] for r in runs),
               "baseline_rss_mb": max(r["baseline_rss_mb"] for r in runs),
               "runs": runs}
    if "info" in best:
        summary["info"] = best["info"]
    return summary


# -- ceilings (measured in this process, after the contenders) ----------------------------------


def read_ceiling(folder: Path, repeat: int) -> dict[str, Any]:
    """pyarrow read -> pandas -> numpy, file after file: rows/s on one core (both pyarrow
    steps single-threaded) and with pyarrow's own threads; best of ``repeat``."""
    out: dict[str, Any] = {}
    for key, threads in (("read_rows_per_s_one_core", False), ("read_rows_per_s_threaded", True)):
        rows, seconds = best_read(folder, threads, repeat)
        out[key] = rows / seconds
    return out


def best_read(folder: Path, threads: bool, repeat: int) -> tuple[int, float]:
    """Rows read and best seconds of ``repeat`` passes of read_table().to_pandas().to_numpy()."""
    import pyarrow.parquet as pq

    best, rows = float("inf"), 0
    for _ in range(repeat):
        rows, start = 0, time.perf_counter()
        for path in data_files(folder):
            table = pq.read_table(path, use_threads=threads)
            rows += len(table.to_pandas(use_threads=threads).to_numpy())
        best = min(best, time.perf_counter() - start)
    return rows, best


def standardized_blocks(folder: Path, block_bytes: int | None = None) -> list[tuple[Any, Any]]:
    """Every file as in-memory (X, y) blocks, X standardized with the data set's mean and std:
    one block per file, or blocks of ``block_bytes`` of X each (oocml's ``BLOCK_BYTES``)."""
    import numpy as np
    import pyarrow.parquet as pq

    blocks = []
    for path in data_files(folder):
        frame = pq.read_table(path).to_pandas()
        blocks.append((frame.drop(columns="y").to_numpy(), frame["y"].to_numpy()))
    rows = sum(len(y) for _, y in blocks)
    total = sum(X.sum(axis=0, dtype=np.float64) for X, _ in blocks)
    mean = total / rows
    sq = sum(((X - mean) ** 2).sum(axis=0) for X, _ in blocks)
    std = np.sqrt(sq / rows)
    std[std == 0] = 1.0
    blocks = [(np.ascontiguousarray(((X - mean) / std).astype(X.dtype, copy=False)), y)
              for X, y in blocks]
    if block_bytes is None:
        return blocks
    return [(X[i:i + step], y[i:i + step]) for X, y in blocks
            for step in [max(256, block_bytes // (X.shape[1] * X.itemsize))]
            for i in range(0, len(X), step)]


def partial_fit_ceiling(folder: Path, rows: int, features: int, repeat: int) -> dict[str, Any]:
    """SGDClassifier.partial_fit over standardized in-memory blocks (timing only the loop): the
    floor of one sequential epoch, on oocml's blocks (``BLOCK_BYTES`` each) and on one block
    per file (dask-ml's). Skipped when the blocks exceed 4 GB."""
    if rows * features * 8 > CEILING_LIMIT_BYTES:
        return {"partial_fit_skipped": f"{rows:,} x {features} x 8 bytes exceeds 4 GB in memory"}
    from sklearn.linear_model import SGDClassifier

    from oocml.blocks import BLOCK_BYTES

    out: dict[str, Any] = {}
    for key, block_bytes in (("partial_fit", BLOCK_BYTES), ("partial_fit_file_blocks", None)):
        blocks, best = standardized_blocks(folder, block_bytes), float("inf")
        for _ in range(repeat):
            best = min(best, partial_fit_loop(SGDClassifier, blocks))
        if key == "partial_fit":  # the same loop while the other core loads, as in a fit
            contended, loaded = float("inf"), 0
            for _ in range(repeat):
                seconds, loaded = while_loading(folder, partial(partial_fit_loop, SGDClassifier, blocks))
                contended = min(contended, seconds)
            out["partial_fit_contended_s"] = contended
            out["partial_fit_contended_rows_loaded"] = loaded
        del blocks
        out[f"{key}_s"], out[f"{key}_rows_per_s"] = best, rows / best
    return out


def partial_fit_loop(estimator_class: Any, blocks: list[tuple[Any, Any]]) -> float:
    """Seconds of one ``partial_fit`` pass of a new estimator over ``blocks``."""
    estimator, start = estimator_class(random_state=0), time.perf_counter()
    for X, y in blocks:
        estimator.partial_fit(X, y, classes=[0, 1])
    return time.perf_counter() - start


def while_loading(folder: Path, work: Callable[[], float]) -> tuple[float, int]:
    """``work()``'s result while a thread loads the files over and over as a fit's loader
    does on the other core (pyarrow's single-threaded decode of 16 MB batches, to pandas, the
    columns gathered into C-ordered rows and standardized), and the rows it loaded meanwhile.
    The training pass of a fit cannot beat this: on this machine the loading slows
    ``partial_fit`` (memory traffic, the GIL) however well the two overlap."""
    import threading

    import numpy as np
    import pyarrow.parquet as pq

    stop, loaded = threading.Event(), [0]

    def load() -> None:
        while not stop.is_set():
            for path in data_files(folder):
                reader = pq.ParquetFile(path)
                rows = max(1024, (16 << 20) // (8 * len(reader.schema_arrow)))
                for batch in reader.iter_batches(batch_size=rows, use_threads=False):
                    frame = batch.to_pandas(use_threads=False, split_blocks=True)
                    columns = np.stack([frame[c].to_numpy() for c in frame.columns if c != "y"])
                    X = np.ascontiguousarray(columns.T)
                    X -= X.mean(axis=0)
                    X /= X.std(axis=0) + 1.0
                    loaded[0] += len(X)
                    if stop.is_set():
                        return

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        return work(), loaded[0]
    finally:
        stop.set()
        loader.join()


# -- report -------------------------------------------------------------------------------------


def versions() -> dict[str, str | None]:
    """Installed versions of everything that shapes the figures."""
    found: dict[str, str | None] = {}
    for name in ("oocml", "dask", "dask-ml", "scikit-learn", "pandas", "pyarrow", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["oocml_git"] = git_revision()
    return found


def git_revision() -> str | None:
    """The commit of the oocml tree benchmarked, with "+dirty" when it has uncommitted changes:
    the library changes faster than its version number."""
    import oocml

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=Path(oocml.__file__).parent, text=True,
                              capture_output=True, check=True).stdout.strip()

    try:
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> dict[str, Any]:
    """CPU count, memory and platform of this machine."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpus": os.cpu_count(), "memory_gb": round(memory / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": os.getloadavg()[0]}


def comparisons(results: dict[str, Any]) -> dict[str, float]:
    """dask-ml / oocml time ratios, the accuracy gap, and oocml's training pass vs the ceiling."""
    ours = results["contenders"].get("oocml", {})
    theirs = results["contenders"].get("daskml", {})
    parallel = results["contenders"].get("oocml_parallel", {})
    checkpointed = results["contenders"].get("oocml_checkpoint", {})
    ceiling = results["ceilings"]
    out: dict[str, float] = {}
    if "fit_s" in ours and "fit_s" in theirs:
        out["fit_ratio_daskml_over_oocml"] = theirs["fit_s"] / ours["fit_s"]
        out["predict_score_ratio_daskml_over_oocml"] = (theirs["predict_score_s"]
                                                        / ours["predict_score_s"])
        out["accuracy_difference_oocml_minus_daskml"] = ours["accuracy"] - theirs["accuracy"]
    if "fit_s" in ours and "fit_s" in parallel:
        out["parallel_fit_speedup"] = ours["fit_s"] / parallel["fit_s"]
        out["parallel_train_speedup"] = (ours["info"]["train_seconds"]
                                         / parallel["info"]["train_seconds"])
        out["accuracy_difference_parallel_minus_sequential"] = (parallel["accuracy"]
                                                                - ours["accuracy"])
    if "fit_s" in ours and "fit_s" in checkpointed:
        out["checkpoint_every_partition_overhead"] = checkpointed["fit_s"] / ours["fit_s"] - 1
    train = ours.get("info", {}).get("train_seconds")
    if train is not None and "partial_fit_s" in ceiling:
        out["oocml_train_pass_over_partial_fit_ceiling"] = train / ceiling["partial_fit_s"]
    if "fit_s" in ours and "partial_fit_s" in ceiling:
        out["oocml_fit_over_partial_fit_ceiling"] = ours["fit_s"] / ceiling["partial_fit_s"]
    if "fit_s" in ours and "partial_fit_s" in ceiling:
        # The machine's limit for one epoch: the statistics pass cannot read faster than
        # pyarrow's threaded read, the training pass cannot beat the partial_fit loop.
        read = results["data"]["rows"] / ceiling["read_rows_per_s_threaded"]
        limit = read + ceiling["partial_fit_s"]
        info = ours.get("info", {})
        out["machine_limit_s"] = limit
        out["oocml_fit_over_machine_limit"] = ours["fit_s"] / limit
        if "partial_fit_contended_s" in ceiling:  # the same, partial_fit slowed by the loading
            contended = read + ceiling["partial_fit_contended_s"]
            out["machine_limit_contended_s"] = contended
            out["oocml_fit_over_machine_limit_contended"] = ours["fit_s"] / contended
            if train is not None:
                out["oocml_train_pass_over_contended_ceiling"] = (
                    train / ceiling["partial_fit_contended_s"])
        if "stats_seconds" in info:
            out["oocml_statistics_over_threaded_read"] = info["stats_seconds"] / read
            out["oocml_fit_outside_passes_s"] = (ours["fit_s"] - info["stats_seconds"]
                                                 - info["train_seconds"])
    if "fit_s" in theirs and "partial_fit_s" in ceiling:
        # A sequential fit can never beat its partial_fit loop: the best ratio one could reach.
        out["daskml_fit_over_partial_fit_ceiling"] = theirs["fit_s"] / ceiling["partial_fit_s"]
    if "fit_s" in theirs and "fit_s" in parallel:
        out["fit_ratio_daskml_over_oocml_parallel"] = theirs["fit_s"] / parallel["fit_s"]
    if "predict_into_s" in ours:
        rows = results["data"]["rows"]
        out["predict_into_rows_per_s"] = rows / ours["predict_into_s"]
        out["predict_into_over_threaded_read"] = (rows / ours["predict_into_s"]
                                                  / ceiling["read_rows_per_s_threaded"])
    return out


def print_table(results: dict[str, Any]) -> None:
    """The contenders side by side, then ratios, per-pass breakdown and ceilings."""
    rows = results["data"]["rows"]
    print(f"\n{'contender':14s} {'fit s':>8s} {'pred+score s':>13s} {'accuracy':>9s} "
          f"{'fit peak MB':>12s} {'peak RSS MB':>12s} {'fit rows/s':>12s}")
    for name, r in results["contenders"].items():
        if "error" in r:
            print(f"{LABELS[name]:14s} failed: {r['error']}")
            continue
        print(f"{LABELS[name]:14s} {r['fit_s']:8.2f} {r['predict_score_s']:13.2f} "
              f"{r['accuracy']:9.4f} {r['fit_peak_rss_mb']:12.0f} {r['peak_rss_mb']:12.0f} "
              f"{rows / r['fit_s']:12,.0f}")
    baselines = {LABELS[n]: r["baseline_rss_mb"] for n, r in results["contenders"].items()
                 if "baseline_rss_mb" in r}
    if baselines:
        print("fit peak: resident memory high-water mark at the end of the fit; peak RSS: of the "
              "whole child (prediction too); both include the imports; RSS just before fitting: "
              + ", ".join(f"{n} {mb:.0f} MB" for n, mb in baselines.items()))
    c = results["comparisons"]
    print()
    if "fit_ratio_daskml_over_oocml" in c:
        print(f"dask-ml / oocml: fit {c['fit_ratio_daskml_over_oocml']:.2f}x, predict+score "
              f"{c['predict_score_ratio_daskml_over_oocml']:.2f}x; accuracy oocml - dask-ml "
              f"{c['accuracy_difference_oocml_minus_daskml']:+.4f}")
    if "fit_ratio_daskml_over_oocml_parallel" in c:
        print(f"dask-ml / oocml PARALLEL: fit {c['fit_ratio_daskml_over_oocml_parallel']:.2f}x")
    if "daskml_fit_over_partial_fit_ceiling" in c:
        print(f"dask-ml's fit / the raw partial_fit ceiling: "
              f"{c['daskml_fit_over_partial_fit_ceiling']:.2f}x (no sequential fit can be "
              "faster than dask-ml by more than this)")
    if "parallel_fit_speedup" in c:
        workers = results["contenders"]["oocml_parallel"]["info"]["workers"]
        print(f"PARALLEL (strategy='average', {workers} workers) / sequential: fit "
              f"{c['parallel_fit_speedup']:.2f}x faster, training pass "
              f"{c['parallel_train_speedup']:.2f}x; accuracy "
              f"{c['accuracy_difference_parallel_minus_sequential']:+.4f}")
    if "checkpoint_every_partition_overhead" in c:
        print(f"checkpoint after every partition: fit "
              f"{c['checkpoint_every_partition_overhead']:+.1%} against no checkpoint")
    ours = results["contenders"].get("oocml", {})
    passes = {k[:-len("_seconds")]: v for k, v in ours.get("info", {}).items()
              if k.endswith("_seconds")}
    if passes:
        print("oocml passes: " + ", ".join(f"{k} {v:.2f}s" for k, v in passes.items())
              + f", predict+score {ours['predict_score_s']:.2f}s")
    if "predict_into_rows_per_s" in c:
        print(f"oocml PREDICT ... INTO parquet: {ours['predict_into_s']:.2f}s = "
              f"{c['predict_into_rows_per_s']:,.0f} rows/s, {c['predict_into_over_threaded_read']:.2f}x"
              f" pyarrow's threaded read rate; the model's coef_ is {ours['coef_dtype']}")
    ceiling = results["ceilings"]
    if "oocml_fit_over_machine_limit" in c:
        print(f"the machine's limit for a one-epoch fit (threaded read + partial_fit ceiling): "
              f"{c['machine_limit_s']:.2f}s; oocml's fit {c['oocml_fit_over_machine_limit']:.2f}x "
              f"it (statistics pass {c.get('oocml_statistics_over_threaded_read', float('nan')):.2f}x"
              f" the threaded read, {c.get('oocml_fit_outside_passes_s', float('nan')):.2f}s "
              "outside both passes)")
    if "partial_fit_s" in ceiling:
        line = (f"raw partial_fit ceiling (in memory, one core, oocml's blocks): "
                f"{ceiling['partial_fit_s']:.2f}s "
                f"= {ceiling['partial_fit_rows_per_s']:,.0f} rows/s")
        if "oocml_train_pass_over_partial_fit_ceiling" in c:
            line += (f"; oocml training pass {c['oocml_train_pass_over_partial_fit_ceiling']:.2f}x"
                     f" it, whole fit {c['oocml_fit_over_partial_fit_ceiling']:.2f}x it")
        print(line)
        print(f"  (on one block per file, dask-ml's blocks: {ceiling['partial_fit_file_blocks_s']:.2f}s"
              f" = {ceiling['partial_fit_file_blocks_rows_per_s']:,.0f} rows/s)")
        print(f"partial_fit ceiling while the other core loads the files (as a fit's loader "
              f"does): {ceiling['partial_fit_contended_s']:.2f}s, "
              f"{ceiling['partial_fit_contended_s'] / ceiling['partial_fit_s']:.2f}x the raw one")
        if "oocml_fit_over_machine_limit_contended" in c:
            print(f"  the limit with it: {c['machine_limit_contended_s']:.2f}s; oocml's fit "
                  f"{c['oocml_fit_over_machine_limit_contended']:.2f}x it, its training pass "
                  f"{c['oocml_train_pass_over_contended_ceiling']:.2f}x the contended ceiling")
    else:
        print(f"raw partial_fit ceiling skipped: {ceiling['partial_fit_skipped']}")
    print(f"pyarrow read -> numpy: {ceiling['read_rows_per_s_one_core']:,.0f} rows/s on one core "
          f"({ceiling['read_rows_per_s_threaded']:,.0f} with pyarrow's threads)")


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds the whole machine has been busy, CPU seconds used by this process and its
    finished children) so far; their growth over the run tells how much other work ran."""
    own = sum(getattr(resource.getrusage(who), field)
              for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for field in ("ru_utime", "ru_stime"))
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return float("nan"), own
    busy = sum(ticks[:3]) + sum(ticks[5:8])  # user nice system (not idle iowait) irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK"), own


def interference(start: tuple[float, float], wall: float) -> dict[str, float]:
    """CPU seconds other processes used during the run, and their share of the machine."""
    busy, own = (b - a for a, b in zip(start, cpu_seconds()))
    other = max(busy - own, 0.0)
    return {"other_cpu_seconds": other, "other_cpu_share": other / (wall * (os.cpu_count() or 1))}


def print_load(machine_info: dict[str, Any]) -> None:
    """How busy the machine was apart from the benchmark: other work skews every figure."""
    share = machine_info["other_cpu_share"]
    print(f"other processes used {machine_info['other_cpu_seconds']:.1f} CPU s during the run "
          f"({share:.0%} of {machine_info['cpus']} cpus; 1-min load before it "
          f"{machine_info['load_average_at_start']:.2f})"
          + ("; figures may be skewed" if share > 0.05 else ""))


def finish(results: dict[str, Any], json_path: Path | None) -> None:
    """The end of every benchmark: the machine's load during the run, and every figure written
    to ``json_path`` (when given)."""
    print_load(results["machine"])
    if json_path:
        json_path.write_text(json.dumps(results, indent=2))
        print(f"wrote {json_path}")


# -- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's options (``--child``/``--result`` are the child process's, hidden)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--data", type=Path, default=None,
                        help="data folder; reused when it holds this shape (default: under $TMPDIR)")
    parser.add_argument("--only", choices=CONTENDERS, nargs="+", default=None,
                        help="run only these contenders")
    parser.add_argument("--cluster", type=int, default=0, metavar="N",
                        help="run every contender on a LocalCluster of N single-threaded "
                             "worker processes (default: dask's threads, no cluster)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--repeat", type=int, default=1,
                        help="fresh child runs per contender; the best time is reported")
    parser.add_argument("--scaling", type=lambda s: int(s.replace("_", "")), nargs="+",
                        default=None, metavar="ROWS",
                        help="the scaling table instead: fit time and memory at each of these "
                             "row counts (files of 500k rows; default contenders oocml, dask-ml)")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.cluster < 0:
        parser.error("--cluster takes a number of workers (0: no cluster)")
    return args


def fail(message: str) -> None:
    """Exit with code 2 and a one-line message on stderr: the user must change something."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def require_daskml() -> None:
    """Exit with code 2 and one line when dask-ml is needed but cannot be imported."""
    try:
        import dask_ml  # noqa: F401
    except ImportError as exc:
        fail(f"dask-ml is not importable ({exc}); pip install 'dask-ml>=2024.4' "
             "(or the [bench] extra), or pass --only oocml")


def main(argv: list[str] | None = None) -> None:
    """Generate or reuse the data, run the contenders and ceilings, print and save the figures."""
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, args.data, args.result, args.cluster)
    contenders = ([c for c in CONTENDERS if c in args.only] if args.only
                  else ["oocml", "daskml"] if args.scaling else list(CONTENDERS))
    if "daskml" in contenders:
        require_daskml()
    if args.scaling:
        return run_scaling(args, contenders)
    folder = data_folder(args, args.rows, args.files)
    print(f"data: {folder}; the page cache is warmed (every file read once) before each "
          f"contender and the ceilings", flush=True)

    started = time.perf_counter(), cpu_seconds()
    results: dict[str, Any] = {
        "data": {"rows": args.rows, "files": args.files, "features": args.features,
                 "dtype": args.dtype, "folder": str(folder)},
        "repeat": args.repeat, "cluster_workers": args.cluster, "machine": machine(), "versions": versions(),
        "contenders": {}, "ceilings": {}}
    for name in contenders:
        print(f"running {LABELS[name]} ...", flush=True)
        results["contenders"][name] = run_contender(name, folder, args.repeat, args.cluster)
    print("measuring ceilings ...", flush=True)
    warm_page_cache(folder)
    results["ceilings"].update(read_ceiling(folder, args.repeat))
    results["ceilings"].update(partial_fit_ceiling(folder, args.rows, args.features, args.repeat))
    results["comparisons"] = comparisons(results)
    results["machine"].update(interference(started[1], time.perf_counter() - started[0]))
    print_table(results)
    finish(results, args.json)


def data_folder(args: argparse.Namespace, rows: int, files: int) -> Path:
    """The data set of this shape, generated unless already there (in ``--data`` or under $TMPDIR)."""
    shape = f"{rows}x{args.features}-{files}-{args.dtype}"
    folder = (args.data / shape if args.scaling else args.data) if args.data else (
        Path(tempfile.gettempdir()) / "oocml-bench" / shape)
    folder.mkdir(parents=True, exist_ok=True)
    ensure_data(folder, rows, files, args.features, args.dtype, owned=args.data is None)
    return folder


def run_scaling(args: argparse.Namespace, contenders: list[str]) -> None:
    """Each contender at each size (500k rows per file), each run in a fresh child: fit time,
    rows/s and the fit's peak memory; printed as a table and saved with ``--json``."""
    started = time.perf_counter(), cpu_seconds()
    results: dict[str, Any] = {"scaling": [], "features": args.features, "dtype": args.dtype,
                               "repeat": args.repeat, "machine": machine(),
                               "versions": versions()}
    for rows in args.scaling:
        files = max(1, rows // 500_000)
        folder = data_folder(args, rows, files)
        for name in contenders:
            print(f"running {LABELS[name]} on {rows:,} rows ...", flush=True)
            result = run_contender(name, folder, args.repeat, args.cluster)
            results["scaling"].append({"rows": rows, "files": files, "contender": name, **result})
    results["machine"].update(interference(started[1], time.perf_counter() - started[0]))
    print(f"\n{'rows':>12s} {'files':>6s} {'contender':14s} {'fit s':>8s} {'rows/s':>12s} "
          f"{'fit peak MB':>12s} {'accuracy':>9s}")
    for r in results["scaling"]:
        if "error" in r:
            print(f"{r['rows']:12,d} {r['files']:6d} {LABELS[r['contender']]:14s} failed: {r['error']}")
            continue
        print(f"{r['rows']:12,d} {r['files']:6d} {LABELS[r['contender']]:14s} {r['fit_s']:8.2f} "
              f"{r['rows'] / r['fit_s']:12,.0f} {r['fit_peak_rss_mb']:12.0f} {r['accuracy']:9.4f}")
    finish(results, args.json)


if __name__ == "__main__":
    main()
