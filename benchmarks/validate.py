"""VALIDATE's cost against a plain statistics pass, and what keeping the sample costs TRAIN.

    python benchmarks/validate.py                         # 10M rows x 20 in 20 files, 2 rounds
    python benchmarks/validate.py --rows 1_000_000 --repeat 3 --json validate.json

Contenders, each in its own child process, on the same parquet files (page cache warm):
``statistics``: the engine's statistics pass as TRAIN runs it (moments, labels, row counts,
NaN and infinity checks, and the sample behind the model's training profile);
``statistics, no sample``: the same pass without the sample (what TRAIN cost before);
``VALIDATE``: ``Model.validate`` of a model trained on the same data (its histograms and
frequencies, one pass). Targets: VALIDATE at most 1.2x the statistics pass; the sample at
most a few percent of it. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from children import peak_mb, run_child, versions, warm_page_cache  # noqa: E402

CONTENDERS = ("statistics", "statistics, no sample", "VALIDATE")
PACKAGES = ("oocml", "dask", "pandas", "pyarrow", "numpy", "scikit-learn")


def child(name: str, folder: Path, model_path: Path) -> dict:
    """One contender's pass over ``folder``: its wall and CPU seconds and peak memory."""
    import dask.dataframe as dd

    import oocml
    from oocml.engine.stats import statistics_pass
    from oocml.io.partitions import partitions

    frame = dd.read_parquet(str(folder))
    features = [c for c in frame.columns if c != "y"]
    model = oocml.load_model(model_path)
    wall, cpu = time.perf_counter(), time.process_time()
    if name == "VALIDATE":
        table = model.validate(frame)
        rows = None
        assert not table.is_anomaly.any(), table
    else:
        summary = statistics_pass(partitions(frame[[*features, "y"]]), features, "y", True,
                                  sampled=name == "statistics")
        rows = summary.rows
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu,
            "peak_mb": peak_mb(), "rows": rows}


def prepare(folder: Path, rows: int, features: int, files: int) -> Path:
    """The data (written once, reused while its marker matches) and a model trained on it."""
    from oocml.datasets import make_parquet_dataset

    marker = folder / "written.json"
    wanted = {"rows": rows, "features": features, "files": files, "version": 1}
    data = folder / "data"
    if not marker.is_file() or json.loads(marker.read_text()) != wanted:
        make_parquet_dataset(data, rows=rows, features=features, files=files, seed=0)
        marker.write_text(json.dumps(wanted))
    model_path = folder / "model.oocml"
    if not model_path.is_file():
        import oocml

        oocml.sql(f"TRAIN sgd ON '{data}' PREDICT y SCALE standard").save(model_path)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "oocml-bench")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child")
    parser.add_argument("--result", type=Path)
    args = parser.parse_args()
    folder = args.data / f"validate-{args.rows}x{args.features}-{args.files}f"
    if args.child:
        figures = child(args.child, folder / "data", folder / "model.oocml")
        args.result.write_text(json.dumps(figures))
        return
    print(f"load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    folder.mkdir(parents=True, exist_ok=True)
    data = prepare(folder, args.rows, args.features, args.files)
    others = _other_cpu()
    rounds = []
    for round_ in range(args.repeat):
        order = CONTENDERS if round_ % 2 == 0 else CONTENDERS[::-1]
        found = {}
        for name in order:
            warm_page_cache(data)
            found[name] = run_child(__file__, name, args.data, rows=args.rows,
                                    features=args.features, files=args.files)
            if "error" in found[name]:
                sys.exit(f"{name} failed: {found[name]['error']}")
        rounds.append(found)
    _report(rounds, args)
    busy = _other_cpu() - others
    print(f"other processes used {busy:.1f} CPU s during the run; figures may be skewed")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "load": os.getloadavg(),
                                         "versions": versions(PACKAGES)}, indent=1))


def _report(rounds: list[dict], args: argparse.Namespace) -> None:
    print(f"\n{args.rows:,} rows x {args.features} float64 in {args.files} files; each pass a "
          "fresh child, page cache warm")
    print(f"{'round':>5}  {'contender':<22} {'wall s':>7} {'cpu s':>7} {'peak MB':>8}")
    for i, found in enumerate(rounds, 1):
        for name in CONTENDERS:
            r = found[name]
            print(f"{i:>5}  {name:<22} {r['seconds']:>7.2f} {r['cpu_seconds']:>7.2f} "
                  f"{r['peak_mb']:>8.0f}")
    for i, found in enumerate(rounds, 1):
        base = found["statistics"]["seconds"]
        print(f"round {i}: VALIDATE / statistics = {found['VALIDATE']['seconds'] / base:.2f}x "
              f"(at most 1.2x: {'yes' if found['VALIDATE']['seconds'] <= 1.2 * base else 'NO'}); "
              f"statistics with / without the sample = "
              f"{base / found['statistics, no sample']['seconds']:.2f}x")
    ratios = [f["VALIDATE"]["seconds"] / f["statistics"]["seconds"] for f in rounds]
    print(f"over {len(rounds)} round(s): VALIDATE / statistics geometric mean "
          f"{statistics.geometric_mean(ratios):.2f}x")


def _other_cpu() -> float:
    """CPU seconds of every process but this one and its children, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [float(x) for x in stat.readline().split()[1:8]]
    total = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    own = os.times()
    return total - (own.user + own.system + own.children_user + own.children_system)


if __name__ == "__main__":
    main()
