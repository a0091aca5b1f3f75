"""Encodings per column and free text: ENCODE text(review), onehot(country), hash(user) n from
the language and the accessor alike, sparse blocks straight to partial_fit, clear refusals."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import oocml
from oocml.encoding import TextEncoder
from oocml.errors import OocmlError

WORDS = np.array("good great fine fun bad awful boring dull film plot actor scene".split())


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """Free text (with missing reviews), a low-cardinality country, a high-cardinality user id,
    a number; the label depends on the words and the number."""
    rng = np.random.default_rng(0)
    n = 12_000
    text = [" ".join(rng.choice(WORDS, 7)) for _ in range(n)]
    frame = pd.DataFrame({"x0": rng.normal(size=n), "review": text,
                          "country": rng.choice(["fr", "de", "it", None], n),
                          "user": rng.integers(0, 3_000, n).astype(str)})
    score = np.array([sum(w in r.split() for w in ("good", "great", "fun"))
                      - sum(w in r.split() for w in ("bad", "awful", "boring")) for r in text])
    frame["y"] = (score + 0.5 * frame["x0"] > 0).astype(int)
    frame.loc[rng.random(n) < 0.05, "review"] = None
    folder = tmp_path_factory.mktemp("reviews")
    for i, start in enumerate(range(0, n, n // 3)):
        frame.iloc[start:start + n // 3].to_parquet(folder / f"part-{i}.parquet")
    return folder


ENCODE = ("ENCODE text(review) 4096 USING (ngram_range = (1, 2)), onehot(country), "
          "hash(user) 512")


def _coef(model: oocml.Model) -> np.ndarray:
    return np.concatenate([model.estimator.coef_.ravel(), model.estimator.intercept_.ravel()])


def test_per_column_encodings_from_both_faces(reviews):
    statement = oocml.sql(f"TRAIN sgd ON '{reviews}' PREDICT y SCALE standard {ENCODE} EPOCHS 2")
    data = dd.read_parquet(reviews)
    chain = (data.ml.scale().encode("text", columns=["review"], n_features=4096,
                                    ngram_range=(1, 2))
             .encode("onehot", columns=["country"]).encode("hash", columns="user", n_features=512))
    accessor = chain.fit_incremental("sgd", target="y", epochs=2)
    np.testing.assert_array_equal(_coef(statement), _coef(accessor))
    features = accessor.pipeline.named_steps["features"]
    encoders = {name: (type(step).__name__, list(columns))
                for name, step, columns in features.transformers_ if name != "remainder"}
    assert encoders == {"numeric": ("Pipeline", ["x0"]), "text_0": ("TextEncoder", ["review"]),
                        "onehot_1": ("OneHotEncoder", ["country"]),
                        "hash_2": ("HashEncoder", ["user"])}
    assert accessor.estimator.coef_.shape == (1, 1 + 4096 + 3 + 512)  # fr, de, it (missing: 0s)
    assert accessor.score(data) > 0.85
    short = data.ml.scale().encode(text=["review"], onehot=["country", "user"]).fit_incremental(
        "sgd", target="y", epochs=3, shuffle=True)
    assert short.score(data) > 0.8


def test_text_matches_scikit_learns_own_vectorizer(reviews):
    """The text step is HashingVectorizer on each column, a missing review an empty one."""
    from sklearn.feature_extraction.text import HashingVectorizer

    frame = pd.read_parquet(reviews)
    encoder = TextEncoder(n_features=256, ngram_range=(1, 2), alternate_sign=False).fit(
        frame[["review"]])
    ours = encoder.transform(frame[["review"]])
    theirs = HashingVectorizer(n_features=256, ngram_range=(1, 2), alternate_sign=False).transform(
        frame["review"].fillna(""))
    assert sparse.isspmatrix_csr(ours) and (ours != theirs).nnz == 0
    assert encoder.get_feature_names_out()[:2].tolist() == ["review_text_0", "review_text_1"]


def test_sparse_blocks_reach_partial_fit_and_naive_bayes_counts(reviews, monkeypatch):
    from sklearn.naive_bayes import MultinomialNB

    seen = []
    real = MultinomialNB.partial_fit

    def spy(self, X, *args, **kwargs):
        seen.append(type(X))
        return real(self, X, *args, **kwargs)

    monkeypatch.setattr(MultinomialNB, "partial_fit", spy)
    model = oocml.sql(f"TRAIN multinomial_nb ON '{reviews}' PREDICT y FEATURES review "
                      "ENCODE text(review) USING (alternate_sign = FALSE, norm = NULL)")
    assert seen and all(issubclass(t, sparse.csr_matrix) for t in seen)
    assert model.score(dd.read_parquet(reviews)) > 0.75


def test_explain_names_each_columns_encoder(reviews):
    explained = oocml.sql(f"EXPLAIN TRAIN sgd ON '{reviews}' PREDICT y {ENCODE} EPOCHS 3")
    assert ("  encoders:   review: text (word 1- to 2-grams hashed into 4,096 columns "
            "(HashingVectorizer), sparse); country: onehot (one-hot, the 32 most frequent values "
            "and one for the rest); user: hash (hashed into 512 signed columns)") in explained
    assert "cache:      off (ENCODE hash and text make sparse blocks" in explained
    default = oocml.sql(f"EXPLAIN TRAIN sgd ON '{reviews}' PREDICT y ENCODE text(review), ordinal")
    assert "review: text (words hashed into 1,048,576 columns" in default
    assert "country, user: ordinal (ordinal codes, -1 for unseen)" in default


def test_a_numeric_column_can_be_encoded_by_name(reviews):
    frame = pd.read_parquet(reviews)
    frame["zone"] = frame["user"].astype(int) % 7
    data = dd.from_pandas(frame.drop(columns=["review", "user"]), npartitions=2)
    model = data.ml.encode("onehot", columns=["zone", "country"]).fit_incremental("sgd", target="y")
    assert model.estimator.coef_.shape == (1, 1 + 7 + 3)


@pytest.mark.parametrize("clause, message", [
    ("ENCODE text(review), onehot(review)", "column 'review' is encoded twice"),
    ("ENCODE onehot, hash", "only one encoding can apply to every categorical column"),
    ("ENCODE text(reviw)", "encoded column 'reviw' is not in the data (did you mean 'review'?)"),
    ("ENCODE text(review)", "non-numeric feature column(s) 'country'"),
    ("ENCODE text(review) USING (ngram_range = (2, 1))", "ngram_range takes two whole numbers"),
    ("ENCODE text(review) USING (stop_words = 'french')",
     "unknown ENCODE text stop_words 'french'; choose one of english"),
    ("ENCODE text(review) USING (max_categories = 3)", "takes no parameter 'max_categories'"),
    ("ENCODE ordinal(country) 3", "ENCODE ordinal takes no number"),
    ("ENCODE txt(review)", "unknown encoding 'txt' (did you mean 'text'?)"),
])
def test_bad_encodings_are_refused_before_training(reviews, clause, message):
    import re

    with pytest.raises(OocmlError, match=re.escape(message)):
        oocml.sql(f"TRAIN sgd ON '{reviews}' PREDICT y {clause}")


def test_accessor_refusals(reviews):
    data = dd.read_parquet(reviews)
    with pytest.raises(OocmlError, match="names columns per encoding"):
        data.ml.encode("text", text=["review"])
    with pytest.raises(OocmlError, match="takes a list of column names"):
        data.ml.encode("text", columns=[1])


def test_a_text_model_is_saved_and_loaded(reviews, tmp_path):
    session = oocml.Session(progress=False)
    model = session.sql(f"TRAIN sgd ON '{reviews}' PREDICT y {ENCODE} AS texts")
    session.sql(f"SAVE MODEL texts TO '{tmp_path / 'texts.skops'}'")
    loaded = oocml.load_model(tmp_path / "texts.skops")
    data = dd.read_parquet(reviews)
    np.testing.assert_array_equal(loaded.predict(data).compute(), model.predict(data).compute())
    described = session.sql("DESCRIBE texts").set_index("property")["value"]
    assert described["step text_0"] == "TextEncoder of review: n_features=4096 ngram_range=(1, 2)"
    assert described["step hash_2"] == "HashEncoder of user: n_features=512"


def test_onnx_export_refuses_text_and_takes_the_other_encoders(reviews):
    pytest.importorskip("skl2onnx")
    text = oocml.sql(f"TRAIN sgd ON '{reviews}' PREDICT y {ENCODE}")
    with pytest.raises(OocmlError, match=r"step 'features/text_0' is oocml's own TextEncoder "
                                         r"\(ENCODE text\).*skl2onnx converts no HashingVectorizer"):
        text.to_onnx()
    per_column = oocml.sql(f"TRAIN sgd ON '{reviews}' PREDICT y FEATURES x0, country, user "
                           "ENCODE onehot(country), ordinal(user)")
    assert per_column.to_onnx().opset_import


def test_algorithms_say_which_take_sparse_blocks(reviews):
    table = oocml.sql("SHOW ALGORITHMS").set_index("name")["encode text/hash"]
    assert table["naive_bayes"] == "no" and table["multinomial_nb"] == table["sgd"] == "yes"
    with pytest.raises(OocmlError, match=r"GaussianNB needs dense rows, but ENCODE text makes "
                                         r"sparse ones"):
        oocml.sql(f"TRAIN naive_bayes ON '{reviews}' PREDICT y FEATURES review "
                  "ENCODE text(review)")


def test_tfidf_out_of_core_is_scikit_learns_hashed_tfidf(reviews):
    """Document frequencies counted in the statistics pass (2**n_features counters per
    column) give the weights scikit-learn's TfidfTransformer learns in memory."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    model = oocml.sql(f"TRAIN sgd ON '{reviews}' PREDICT y FEATURES review "
                      "ENCODE text(review) 1024 USING (ngram_range = (1, 2), tfidf = TRUE)")
    frame = pd.read_parquet(reviews)
    hashed = HashingVectorizer(n_features=1024, ngram_range=(1, 2), alternate_sign=False,
                               norm=None).transform(frame["review"].fillna(""))
    expected = TfidfTransformer().fit(hashed)
    (encoder,) = [e for _, e, _ in model.pipeline.named_steps["features"].transformers_
                  if isinstance(e, TextEncoder)]
    np.testing.assert_allclose(encoder.idf_[0], expected.idf_, rtol=1e-12)
    ours = encoder.transform(frame[["review"]].head(500))
    theirs = expected.transform(hashed[:500])
    np.testing.assert_allclose(ours.toarray(), theirs.toarray(), rtol=1e-12, atol=1e-15)
    accessor = dd.read_parquet(reviews).ml.encode(
        "text", columns=["review"], n_features=1024, ngram_range=(1, 2), tfidf=True
    ).fit_incremental("sgd", target="y", features=["review"])
    np.testing.assert_array_equal(_coef(accessor), _coef(model))
    explained = oocml.sql(f"EXPLAIN TRAIN sgd ON '{reviews}' PREDICT y FEATURES review "
                          "ENCODE text(review) USING (tfidf = TRUE)")
    assert "TF-IDF weighted (document frequencies counted in the statistics pass)" in explained


TEXT_PEAK_SCRIPT = """
import json, re, sys
import oocml
model = oocml.sql(f"TRAIN sgd ON '{sys.argv[1]}' PREDICT y "
                  "ENCODE text(review) USING (ngram_range = (1, 2), tfidf = TRUE)")
peak = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)
print(json.dumps({"rss_mb": int(peak) / 1024, "rows": model.report.rows}))
"""


def _text_file(path, documents: int) -> None:
    """One parquet file, one row group, of ``documents`` 60-word reviews."""
    rng = np.random.default_rng(1)
    vocabulary = np.array([f"w{i}" for i in range(5_000)] + list(WORDS))
    words = rng.choice(vocabulary, size=(documents, 60))
    frame = pd.DataFrame({"review": [" ".join(row) for row in words]})
    frame["y"] = frame["review"].str.count("good|great") > frame["review"].str.count("bad|awful")
    frame.to_parquet(path, row_group_size=documents)


@pytest.mark.slow
def test_text_memory_does_not_grow_with_the_documents(tmp_path):
    """5k against 50k reviews in one file with one row group (about 60 MB of hashed 2-grams if
    they were held at once), TF-IDF counted: the fit holds batches and sparse blocks, never the
    partition (before batches were sized by their bytes, 200k reviews peaked at 1,512 MB
    against 534)."""
    import json
    import subprocess
    import sys

    _text_file(tmp_path / "small.parquet", 5_000)
    _text_file(tmp_path / "large.parquet", 50_000)
    peaks = [json.loads(subprocess.run(
        [sys.executable, "-c", TEXT_PEAK_SCRIPT, str(tmp_path / name)], check=True,
        capture_output=True, text=True).stdout.strip().splitlines()[-1])
        for name in ("small.parquet", "large.parquet")]
    assert peaks[1]["rows"] == 10 * peaks[0]["rows"]
    assert peaks[1]["rss_mb"] < peaks[0]["rss_mb"] + 120, peaks
