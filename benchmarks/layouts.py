"""The same rows in every layout users keep: one TRAIN statement fitted on each, side by side.

    python benchmarks/layouts.py                         # 5M rows x 20 float64, six layouts
    python benchmarks/layouts.py --rows 1_000_000 --json layouts.json
    python benchmarks/layouts.py --only files20 csv_gz s3 --repeat 2

The rows are generated once with ``oocml.datasets.make_parquet_dataset`` (seed 0) as 20
parquet files, and the other layouts are rewritten from those files, so every layout holds
exactly the same rows in the same order: 1 parquet file with one row group, 1 parquet file
with 1M-row groups, one CSV file, the same CSV gzip-compressed, and the 20 files on an
S3-compatible server (moto) this process starts on 127.0.0.1. Each layout is fitted with
``TRAIN sgd ON '<source>' PREDICT y SCALE standard`` in its own child process (so its peak
RSS is its own), after the page cache was warmed. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scaled_sgd as shared  # the scaled-SGD benchmark's helpers: data, memory, machine, versions, load

from oocml.testing import local_s3_server  # noqa: E402

LAYOUTS = ("files20", "one_rowgroup", "rowgroups_1m", "csv", "csv_gz", "s3")
ANCHOR = "files20"
FILES = 20
TEXT_LAYOUTS = ("csv", "csv_gz")
PARSE_EACH_PASS = "CACHE OFF"  # no parsed copy: the text is parsed by every pass
GROUP_ROWS = 1_000_000  # the row groups of ``rowgroups_1m``
MARKER = "_oocml_layouts.json"  # shape and finished layouts; "_": every reader skips it
BUCKET = "oocml-layouts"
STATEMENT = "TRAIN sgd ON '{source}' PREDICT y SCALE standard"
BATCH_ROWS = 65_536  # rows per batch when rewriting parquet as CSV
COPY_BYTES = 1 << 24  # chunk of the streamed gzip compression
GZIP_LEVEL = 6  # gzip's command-line default (Python's gzip.open defaults to the slower 9)


# -- the layouts on disk ------------------------------------------------------------------------


def layout_path(root: Path, name: str) -> Path:
    """Where a local layout lives: a folder for ``files20``, one file for the others."""
    return {"files20": root / "files20",
            "one_rowgroup": root / "one_rowgroup" / "data.parquet",
            "rowgroups_1m": root / "rowgroups_1m" / "data.parquet",
            "csv": root / "csv" / "data.csv",
            "csv_gz": root / "csv_gz" / "data.csv.gz"}[name]


def anchor_files(root: Path) -> list[Path]:
    """The 20 parquet files every other layout is written from, in order."""
    return sorted(layout_path(root, ANCHOR).glob("*.parquet"))


@contextlib.contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary path next to ``path`` (hidden by its leading ``_``), renamed to ``path`` only
    when the block completes: an interrupted run never leaves a half-written layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"_{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_one_parquet(sources: list[Path], out: Path, group_rows: int) -> None:
    """The rows of ``sources`` as one parquet file of ``group_rows``-row groups, streamed: at
    most one row group (plus one source file) is in memory at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(sources[0])
    with atomic(out) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        pending: list[Any] = []
        held = 0
        for path in sources:
            pending.append(pq.read_table(path))
            held += len(pending[-1])
            while held >= group_rows:
                table = pa.concat_tables(pending)
                writer.write_table(table.slice(0, group_rows), row_group_size=group_rows)
                pending, held = [table.slice(group_rows)], held - group_rows
        if held:
            writer.write_table(pa.concat_tables(pending), row_group_size=group_rows)


def write_csv(sources: list[Path], out: Path) -> None:
    """The rows of ``sources`` as one CSV file (header first), a batch at a time."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    with atomic(out) as tmp, pcsv.CSVWriter(str(tmp), pq.read_schema(sources[0])) as writer:
        for path in sources:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
                writer.write_batch(batch)


def write_gzip(source: Path, out: Path) -> None:
    """``source`` gzip-compressed into ``out``, streamed in 16 MB chunks."""
    with (atomic(out) as tmp, open(source, "rb") as raw, open(tmp, "wb") as sink,
          gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=GZIP_LEVEL,
                        mtime=0) as packed):
        shutil.copyfileobj(raw, packed, COPY_BYTES)


def read_marker(root: Path) -> dict[str, Any] | None:
    marker = root / MARKER
    return json.loads(marker.read_text()) if marker.is_file() else None


def ensure_layouts(root: Path, rows: int, features: int, wanted: list[str], *,
                   owned: bool) -> None:
    """Write the local layouts ``wanted`` needs into ``root`` unless its marker says they are
    there with this shape. Refuses a folder the user named that holds files it did not write."""
    marker = read_marker(root)
    if marker is None and not owned and root.is_dir() and any(root.iterdir()):
        shared.fail(f"{root} holds files this benchmark did not write; pass an empty or new "
                  "folder to --data")
    shape = {"rows": rows, "features": features}
    done = set(marker["layouts"]) if marker and marker.get("shape") == shape else set()
    root.mkdir(parents=True, exist_ok=True)
    anchor = layout_path(root, ANCHOR)
    anchor.mkdir(parents=True, exist_ok=True)
    if shared.ensure_data(anchor, rows, FILES, features, "float64", owned=True) or not done:
        done = {ANCHOR}  # new rows: every layout written from the old ones is stale
        for name in LAYOUTS:
            if name not in (ANCHOR, "s3"):
                shutil.rmtree(layout_path(root, name).parent, ignore_errors=True)
    needed = set(wanted) | ({"csv"} if "csv_gz" in wanted else set())
    writers = {"one_rowgroup": lambda out: write_one_parquet(anchor_files(root), out, rows),
               "rowgroups_1m": lambda out: write_one_parquet(anchor_files(root), out, GROUP_ROWS),
               "csv": lambda out: write_csv(anchor_files(root), out),
               "csv_gz": lambda out: write_gzip(layout_path(root, "csv"), out)}
    for name in (n for n in LAYOUTS if n in writers and n in needed and n not in done):
        start = time.perf_counter()
        shutil.rmtree(layout_path(root, name).parent, ignore_errors=True)
        writers[name](layout_path(root, name))
        done.add(name)
        (root / MARKER).write_text(json.dumps({"shape": shape, "layouts": sorted(done)}))
        print(f"wrote layout {name} ({time.perf_counter() - start:.1f}s)", flush=True)
    if read_marker(root) != {"shape": shape, "layouts": sorted(done)}:
        (root / MARKER).write_text(json.dumps({"shape": shape, "layouts": sorted(done)}))


def describe_layout(root: Path, name: str) -> dict[str, Any]:
    """Files, bytes and row groups of a layout (the S3 one: the 20 files it was uploaded from)."""
    import pyarrow.parquet as pq

    path = layout_path(root, ANCHOR if name == "s3" else name)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    out: dict[str, Any] = {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}
    if files[0].suffix == ".parquet":
        out["row_groups"] = sum(pq.ParquetFile(f).metadata.num_row_groups for f in files)
    return out


def warm(root: Path, name: str) -> None:
    """Read a local layout's files once, as scaled_sgd.py does, so every child starts from a warm
    page cache. The S3 layout's objects live in the server (this process); nothing to warm."""
    if name == "s3":
        return
    path = layout_path(root, name)
    if path.is_dir():
        return shared.warm_page_cache(path)
    with open(path, "rb") as f:
        while f.read(COPY_BYTES):
            pass


# -- the local S3 server ------------------------------------------------------------------------


def upload(root: Path, rows: int, features: int) -> str:
    """Put the 20 parquet files into a new bucket of the running server; their s3:// prefix."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir(BUCKET)
    prefix = f"{BUCKET}/{rows}x{features}"
    start = time.perf_counter()
    for path in anchor_files(root):
        fs.put_file(str(path), f"{prefix}/{path.name}")
    print(f"uploaded {FILES} files to s3://{prefix}/ ({time.perf_counter() - start:.1f}s)",
          flush=True)
    return f"s3://{prefix}/"


# -- one layout (in its own child process) ------------------------------------------------------


def child_main(source: str, anchor: Path, result_file: Path, clause: str = "") -> None:
    """Entry point of a child process: fit the statement (with ``clause`` appended) on
    ``source``, score the model on the 20 local files, write the figures as JSON."""
    import warnings

    warnings.simplefilter("ignore")
    import dask.dataframe as dd
    import sklearn.linear_model  # noqa: F401  (imported before the timing, as in scaled_sgd.py)

    import oocml
    import oocml.engine.fit  # noqa: F401  (oocml imports its engine on first use)

    session = oocml.Session(progress=False)
    baseline = shared.rss_mb()
    start = time.perf_counter()
    model = session.sql(STATEMENT.format(source=source) + clause)
    fit = time.perf_counter() - start
    fit_peak = shared.rss_mb()
    accuracy = float(model.score(dd.read_parquet(anchor)))
    info = {k: v for k, v in model.report.as_dict().items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
    result_file.write_text(json.dumps({
        "fit_s": fit, "rows": info.get("rows_seen", info.get("rows")),
        "stats_seconds": info.get("stats_seconds"), "train_seconds": info.get("train_seconds"),
        "accuracy": accuracy, "baseline_rss_mb": baseline, "fit_peak_rss_mb": fit_peak,
        "peak_rss_mb": shared.rss_mb(), "info": info}))


def run_child(source: str, anchor: Path, clause: str = "") -> dict[str, Any]:
    """Fit one layout in a fresh interpreter; its figures, or the error it died of."""
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        done = subprocess.run([sys.executable, __file__, "--child", source, "--data", str(anchor),
                               "--result", str(result_file), "--clause", clause], check=False,
                              capture_output=True, text=True)
        if done.returncode == 0 and result_file.is_file():
            return json.loads(result_file.read_text())
    tail = (done.stderr or done.stdout).strip().splitlines()
    return {"error": tail[-1] if tail else f"exit code {done.returncode}", "stderr_tail": tail[-20:]}


def run_layout(root: Path, name: str, source: str, repeat: int,
               clause: str = "") -> dict[str, Any]:
    """``repeat`` fresh child runs on one layout; best times, mean accuracy, worst memory."""
    runs = []
    for _ in range(repeat):
        warm(root, name)
        runs.append(run_child(source, layout_path(root, ANCHOR), clause))
        if "error" in runs[-1]:
            return {"source": source, **runs[-1]}
    best = min(runs, key=lambda r: r["fit_s"])
    return {"source": source, "fit_s": best["fit_s"], "rows": best["rows"],
            "rows_per_s": best["rows"] / best["fit_s"],
            "stats_seconds": best["stats_seconds"], "train_seconds": best["train_seconds"],
            "accuracy": statistics.fmean(r["accuracy"] for r in runs),
            "fit_peak_rss_mb": max(r["fit_peak_rss_mb"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "baseline_rss_mb": max(r["baseline_rss_mb"] for r in runs),
            "info": best["info"], "runs": runs}


# -- report -------------------------------------------------------------------------------------


def print_table(results: dict[str, Any]) -> None:
    """One markdown row per layout; a failed layout has only its error."""
    anchor = results["layouts"].get(ANCHOR, {}).get("fit_s")
    print("\n| layout | MB on disk | fit s | rows/s | stats s | train s | fit peak MB | peak MB "
          "| accuracy | vs 20 files | error |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, r in results["layouts"].items():
        size = f"{r['bytes'] / 1e6:,.0f}"
        if "error" in r:
            error = r["error"].replace("|", "\\|")
            print(f"| {name} | {size} | | | | | | | | | {error} |")
            continue
        ratio = f"{r['fit_s'] / anchor:.2f}x" if anchor else "-"
        print(f"| {name} | {size} | {r['fit_s']:.2f} | {r['rows_per_s']:,.0f} "
              f"| {r['stats_seconds']:.2f} | {r['train_seconds']:.2f} "
              f"| {r['fit_peak_rss_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['accuracy']:.4f} "
              f"| {ratio} | |")
    for name, r in results["layouts"].items():
        if "parse_once_speedup" in r:
            print(f"{name}: parsed once, the fit is {r['parse_once_speedup']:.2f}x faster than "
                  f"with its text parsed by every pass ({PARSE_EACH_PASS})")
    print("fit s: the whole TRAIN statement; vs 20 files: fit s over the 20-file anchor's; "
          "fit peak MB: the child's resident-memory high-water mark right after the fit "
          "(peak MB: after scoring too), imports included; accuracy: on the 20 local files")


# -- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's options (``--child``/``--result`` are the child process's, hidden)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=5_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--data", type=Path, default=None,
                        help="folder of the layouts; reused when its marker says it holds this "
                             "shape (default: $TMPDIR/oocml-layouts/<rows>x<features>/)")
    parser.add_argument("--only", choices=LAYOUTS, nargs="+", default=None,
                        help="run only these layouts")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--repeat", type=int, default=1,
                        help="fresh child runs per layout; the best time is reported")
    parser.add_argument("--parse-once", action=argparse.BooleanOptionalAction, default=True,
                        help="also fit each text layout with CACHE OFF (its text parsed by "
                             "every pass, as before the parse-once copy) beside it")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the source a child fits
    parser.add_argument("--clause", default="", help=argparse.SUPPRESS)  # appended to it
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.rows < FILES or args.features < 1:
        parser.error(f"need --rows >= {FILES} and --features >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    """Write or reuse the layouts, fit each in a child, print and save the figures."""
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, args.data, args.result, args.clause)
    names = [n for n in LAYOUTS if n in args.only] if args.only else list(LAYOUTS)
    owned = args.data is None
    shape = f"{args.rows}x{args.features}"
    root = args.data or Path(tempfile.gettempdir()) / "oocml-layouts" / shape
    ensure_layouts(root, args.rows, args.features, names, owned=owned)
    print(f"data: {root}; the page cache is warmed (every file of the layout read once) before "
          f"each local layout", flush=True)
    started = time.perf_counter(), shared.cpu_seconds()
    results: dict[str, Any] = {
        "data": {"rows": args.rows, "features": args.features, "files": FILES,
                 "dtype": "float64", "folder": str(root)},
        "statement": STATEMENT, "repeat": args.repeat, "machine": shared.machine(),
        "versions": shared.versions(), "layouts": {}}
    with contextlib.ExitStack() as stack:
        sources = {n: str(layout_path(root, n)) for n in names if n != "s3"}
        if "s3" in names:
            results["s3_endpoint"] = stack.enter_context(local_s3_server())
            sources["s3"] = upload(root, args.rows, args.features)
        for name in names:
            print(f"fitting {name} ...", flush=True)
            result = run_layout(root, name, sources[name], args.repeat)
            results["layouts"][name] = {**describe_layout(root, name), **result}
            if args.parse_once and name in TEXT_LAYOUTS:
                print(f"fitting {name} {PARSE_EACH_PASS} ...", flush=True)
                twice = run_layout(root, name, sources[name], args.repeat, " " + PARSE_EACH_PASS)
                results["layouts"][f"{name} {PARSE_EACH_PASS}"] = {
                    **describe_layout(root, name), **twice}
                if "fit_s" in twice and "fit_s" in result:
                    results["layouts"][name]["parse_once_speedup"] = twice["fit_s"] / result["fit_s"]
    anchor = results["layouts"].get(ANCHOR, {}).get("fit_s")
    for r in results["layouts"].values():
        if anchor and "fit_s" in r:
            r["fit_over_files20"] = r["fit_s"] / anchor
    results["machine"].update(shared.interference(started[1], time.perf_counter() - started[0]))
    print_table(results)
    shared.finish(results, args.json)


if __name__ == "__main__":
    main()
