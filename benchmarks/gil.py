"""Does ``partial_fit`` release the GIL? Each registry family, two candidates on threads.

    python benchmarks/gil.py                     # 400k rows x 20 float64, 8 MB blocks
    python benchmarks/gil.py --rows 1_000_000 --json gil.json

TUNE trains its live candidates on the same block at once. Threads help only where
``partial_fit`` spends its time without the GIL; this measures it for each estimator
family of oocml's registry: the same blocks fed to two fresh estimators one after the
other, then on two threads (best of ``--repeat``). A speedup near the number of threads
means the GIL is released; near 1 or below, it is held (oocml then trains those candidates
one after the other: ``oocml.engine.search.threads_help``). BLAS is held to one thread, as oocml's training
loop holds it, so that the threads are the only parallelism measured.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads BLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

THREADS_WORTH = 1.2  # a speedup at least this large is worth a thread pool

FAMILIES = {  # family: (estimator class path, parameters, needs labels)
    "SGD (sgd, passive_aggressive)": ("sklearn.linear_model.SGDClassifier", {}, True),
    "SGD regressor": ("sklearn.linear_model.SGDRegressor", {}, False),
    "Perceptron": ("sklearn.linear_model.Perceptron", {}, True),
    "MLP": ("sklearn.neural_network.MLPClassifier", {"hidden_layer_sizes": (32,)}, True),
    "GaussianNB": ("sklearn.naive_bayes.GaussianNB", {}, True),
    "MultinomialNB": ("sklearn.naive_bayes.MultinomialNB", {}, True),
    "BernoulliNB": ("sklearn.naive_bayes.BernoulliNB", {}, True),
    "MiniBatchKMeans": ("sklearn.cluster.MiniBatchKMeans", {"n_clusters": 8, "n_init": 1}, None),
}


def blocks(rows: int, features: int = 20, block_bytes: int = 8 << 20) -> list:
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(rows, features)))  # non-negative: MultinomialNB takes it too
    y = (X[:, 0] + X[:, 1] > 1.6).astype(np.int64)
    step = block_bytes // (features * 8)
    return [(np.ascontiguousarray(X[i:i + step]), y[i:i + step]) for i in range(0, rows, step)]


def feed(estimator, data, labels) -> None:
    for X, y in data:
        if labels is None:
            estimator.partial_fit(X)
        elif labels:
            estimator.partial_fit(X, y, classes=[0, 1])
        else:
            estimator.partial_fit(X, y.astype(float))


def measure(path: str, params: dict, labels, data, threads: int, repeat: int) -> dict:
    from importlib import import_module

    module, name = path.rsplit(".", 1)
    cls = getattr(import_module(module), name)
    make = lambda: [cls(random_state=0, **params) if "random_state" in cls().get_params()  # noqa: E731
                    else cls(**params) for _ in range(threads)]
    serial = parallel = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeat):
            models, start = make(), time.perf_counter()
            for model in models:
                feed(model, data, labels)
            serial = min(serial, time.perf_counter() - start)
            models, start = make(), time.perf_counter()
            list(pool.map(lambda m: feed(m, data, labels), models))
            parallel = min(parallel, time.perf_counter() - start)
    return {"serial_s": serial, "threads_s": parallel, "speedup": serial / parallel}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=400_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    data = blocks(args.rows)
    print(f"{args.rows:,} rows x 20 float64 in {len(data)} blocks of 8 MB; {args.threads} "
          f"candidates, one after the other vs on {args.threads} threads (best of "
          f"{args.repeat}); load {os.getloadavg()[0]:.2f}")
    print(f"{'family':<32}{'serial s':>10}{'threads s':>11}{'speedup':>9}  candidates train")
    results = {}
    for family, (path, params, labels) in FAMILIES.items():
        r = measure(path, params, labels, data, args.threads, args.repeat)
        r["threads_faster"] = r["speedup"] >= THREADS_WORTH
        results[family] = r
        print(f"{family:<32}{r['serial_s']:>10.3f}{r['threads_s']:>11.3f}{r['speedup']:>8.2f}x"
              f"  {'threads' if r['threads_faster'] else 'one after the other'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": args.rows, "threads": args.threads,
                                               "results": results}, indent=2))


if __name__ == "__main__":
    main()
