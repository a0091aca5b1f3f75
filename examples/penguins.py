"""Real data with strings and missing values: the Palmer penguins, out-of-core vs in memory.

The data set ships inside the ``palmerpenguins`` package (``pip install palmerpenguins``):
344 penguins, their species, island and sex as strings, and a few missing
measurements. We write it as parquet files, train out-of-core with the language
(impute, one-hot encode, scale, SGD) and compare the held-out accuracy with the
same pipeline fitted in memory by scikit-learn.

    python examples/penguins.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
from palmerpenguins import load_penguins
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import oocml

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]
EPOCHS = 20


def write_parquet(frame: pd.DataFrame, folder: Path, files: int) -> None:
    """The data as several parquet files, as it would arrive in a data lake."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), files)):
        frame.iloc[rows].to_parquet(folder / f"part-{i}.parquet", index=False)


def in_memory_accuracy(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """The same steps with scikit-learn on pandas: impute + scale numbers, one-hot strings."""
    features = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()), NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    model = make_pipeline(features, SGDClassifier(loss="log_loss", max_iter=EPOCHS, tol=None,
                                                  random_state=0))
    model.fit(train[NUMERIC + CATEGORICAL], train["species"])
    return float(model.score(test[NUMERIC + CATEGORICAL], test["species"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="penguins-example")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)

    penguins = load_penguins().drop(columns="year")
    test_rows = penguins.index % 4 == 0  # a fixed quarter held out, the same for both
    train, test = penguins[~test_rows], penguins[test_rows]
    write_parquet(train, Path("penguins/train"), files=3)
    write_parquet(test, Path("penguins/test"), files=1)

    session = oocml.Session()
    model = session.sql(f"""
        TRAIN sgd ON 'penguins/train' PREDICT species
              IMPUTE mean ENCODE onehot SCALE standard
              WITH (loss = 'log_loss') EPOCHS {EPOCHS} SHUFFLE SEED 0
              AS penguins;
    """)
    described = session.sql("DESCRIBE penguins")
    print(described[~described["property"].str.startswith("epoch ")].to_string(index=False))
    metrics = session.sql("EVALUATE penguins ON 'penguins/test'")
    print(metrics.to_string(index=False))
    out_of_core = float(metrics.set_index("metric")["value"]["accuracy"])
    in_memory = in_memory_accuracy(train, test)
    print(f"held-out accuracy: oocml {out_of_core:.4f}, scikit-learn in memory {in_memory:.4f}")
    session.sql("PREDICT USING penguins ON 'penguins/test' INTO 'penguins/predicted' OVERWRITE")
    print(pd.read_parquet("penguins/predicted").head())
    # The fitted pipeline is plain scikit-learn: it predicts on pandas as oocml does on dask.
    assert (model.pipeline.predict(test) == pd.read_parquet("penguins/predicted")["prediction"]).all()
    assert abs(out_of_core - in_memory) <= 0.01, (out_of_core, in_memory)


if __name__ == "__main__":
    main()
