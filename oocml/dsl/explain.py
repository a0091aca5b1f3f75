"""EXPLAIN: a Plan printed pass by pass, and the ``.ml`` accessor chain that plans it.

Formatting only: the caller (the Session) opens the data's metadata and looks up models;
nothing here reads data. The printed chain is Python that runs and plans the same Plan.
"""

from __future__ import annotations

from typing import Any

from ..io.conditions import parquet_filters, to_text
from ..plan import REDUCTION_FACTOR, Distribution, Plan, Search, Source, StreamOptions
from ..redaction import redact_url
from . import ast

CHECKPOINT_EVERY = 10  # the engine's default (oocml.engine.checkpoint.DEFAULT_EVERY)


def explain_apply(statement: ast.Predict | ast.Evaluate, model: Any, frame: Any,
                  files: str) -> str:
    """EXPLAIN PREDICT / EVALUATE: the model, what is read, the one pass, what is written."""
    verb = "PREDICT" if isinstance(statement, ast.Predict) else "EVALUATE"
    lines = [f"{verb} with model {statement.model} ({type(model.estimator).__name__})",
             f"  source:   {statement.source}{files}",
             f"  reads:    {', '.join(model.features)}"
             + (f", {model.target}" if verb == "EVALUATE" else ""),
             f"  pass 1:   one parallel pass over {frame.npartitions} partitions, "
             + ("predicting each block" if verb == "PREDICT" else
                "summing per-block metric totals (exact)")]
    if isinstance(statement, ast.Predict) and statement.top is not None:  # PREDICT EXPLAIN
        from ..evaluation.explanations import method_text

        lines[0] = lines[0].replace("PREDICT", "PREDICT EXPLAIN", 1)
        lines[3] = (f"  pass 1:   one parallel pass over {frame.npartitions} partitions, each "
                    "read a batch at a time")
        lines.append(f"  explains: {method_text(model, statement.top)}")
    if isinstance(statement, ast.Predict) and statement.into:
        lines.append(f"  writes:   parquet into {redact_url(statement.into)!r}, one file "
                     "per partition, committed by a manifest written last")
    return "\n".join(lines)


def explain_update(statement: ast.Update, model: Any, version: int, files: str,
                   fresh: int | None) -> str:
    """EXPLAIN UPDATE: the model and version it continues, what it reads (``fresh``: the
    files NEW would read, None without NEW), its passes, the equivalent Python."""
    seen = sum(len(step.files or ()) for step in model.lineage)
    lines = [f"UPDATE model {statement.model} version {version} "
             f"({type(model.estimator).__name__}), into version {version + 1}",
             f"  source:   {statement.source}{files}"]
    if fresh is not None:
        lines.append(f"  NEW:      {fresh} file(s) the model has not seen (its lineage holds "
                     f"{seen}); only they are opened")
    if statement.where is not None:
        lines.append(f"  where:    {to_text(statement.where)} (and the model's own WHERE)")
    lines += [f"  reads:    {', '.join(model.features)}, {model.target}",
              "  pass 1:   statistics: columns, missing and infinite values, labels (a label "
              "the model does not know is refused)",
              f"  pass 2:   {statement.epochs} epoch(s) of partial_fit on the fitted "
              "preprocessing, each block scored first (test-then-train)"
              + (", partitions mixed (SHUFFLE)" if statement.shuffle else ""),
              "  python:   dd.read_parquet(...).ml.update(model"
              + (f", epochs={statement.epochs}" if statement.epochs != 1 else "")
              + (", shuffle=True" if statement.shuffle else "")
              + (", new=True" if statement.new else "")
              + (", include_changed=True" if statement.include_changed else "") + ")"]
    return "\n".join(lines)


def explain_train(plan: Plan, frame: Any, files: str, rows: int | None = None) -> str:
    """EXPLAIN TRAIN: source, schema, features, steps, every pass over the data, the cache,
    the equivalent Python (``rows``: the data's, from metadata, when known)."""
    from ..engine.checks import resolve_columns
    from ..estimators import build, is_boosted, task_of

    features = resolve_columns(plan, list(frame.columns))
    estimator = build(plan.estimator)
    task = task_of(estimator)
    schema = ", ".join(f"{c} {t}" for c, t in frame.dtypes.astype(str).items())
    lines = [
        f"TRAIN {plan.name or '(unnamed)'}",
        f"  source:     {plan.source}{files}",
        f"  schema:     {schema}",
        f"  features:   {', '.join(features)} ({len(features)})",
        f"  target:     {plan.target}",
    ]
    if plan.where is not None:
        pushed = parquet_filters(plan.where)
        lines.append(f"  where:      {to_text(plan.where)}"
                     + (f"  (pushed down to parquet: {pushed})" if pushed else ""))
    blocks = (f"{frame.npartitions} partitions" + (
        f", split into blocks of {plan.stream.block_rows:,} rows" if plan.stream.block_rows else ""))
    steps = " -> ".join(f"{s.kind} {s.method}" for s in plan.steps) or "(none)"
    encoders = _encoders_line(plan, frame, features)
    lines += [f"  steps:      {steps}", *encoders,
              f"  estimator:  {type(estimator).__name__}({_pairs(plan.estimator.params)})  [{task}]",
              f"  blocks:     {blocks}, at most {plan.stream.prefetch} partitions loaded ahead "
              f"of {'XGBoost' if is_boosted(estimator) else 'partial_fit'}",
              "  passes over the data:", *_passes(plan, task, frame.npartitions)]
    text = _text_line(plan, frame)
    if text is not None:
        lines.append(f"  text:       {text}")
    if is_boosted(estimator):
        lines += _boosted_lines(plan, estimator, len(features), rows)
    else:
        lines.append(f"  cache:      {_cache_line(plan, len(features), rows)}")
    if plan.search is not None:
        lines += _search_lines(plan)
    if plan.stream.checkpoint is not None:
        lines.append(f"  checkpoint: '{plan.stream.checkpoint}' every "
                     f"{plan.stream.checkpoint_every or CHECKPOINT_EVERY} partitions"
                     + (", resumed if it exists" if plan.stream.resume else ""))
    lines += ["  equivalent Python:",
              *("    " + line for line in format_plan_as_accessor(plan).splitlines())]
    return "\n".join(lines)


def _passes(plan: Plan, task: str, partitions: int) -> list[str]:
    """One line per pass over the data: statistics, projection, each epoch and its holdout."""
    stream = plan.stream
    statistics = ["row counts", "NaN/infinity checks of every feature"]
    what = {"impute": "{m} of each numeric feature", "scale": "{m} scaling moments",
            "encode": "value counts of each categorical feature ({m})"}
    for step in plan.steps:
        if step.kind in what and (step.kind, step.method) != ("encode", "hash"):
            statistics.append(what[step.kind].format(m=step.method))
    if task == "classification" and plan.classes is None:
        statistics.append(f"class labels of {plan.target}")
    order = _order(plan, partitions)
    if stream.holdout is not None:
        statistics[0] = f"row counts (statistics from the {1 - stream.holdout:.0%} training rows)"
        order += f", {stream.holdout:.0%} of rows held out by a hash of their values"
    lines = [f"    1. statistics, one parallel pass: {'; '.join(statistics)}"]
    reduction = next((s for s in plan.steps if s.kind == "reduce"), None)
    if reduction is not None:
        lines.append(f"    2. {reduction.method} projection: IncrementalPCA("
                     f"{_pairs(reduction.params)}).partial_fit on the preprocessed blocks")
    fit = ("partial_fit of every live TUNE candidate" if plan.search is not None
           else "score each block (progressive), then partial_fit" if stream.holdout is not None
           else "partial_fit")
    if stream.strategy == "average":
        fit += (" on every worker at once, one block each; the models averaged after each "
                "round (PARALLEL)")
    chain = " -> ".join(["select", *[s.kind for s in plan.steps]])
    if plan.estimator.qualname.startswith("oocml.boosting."):
        return lines + _boosted_passes(plan, len(lines) + 1)
    for epoch in range(stream.epochs):
        lines.append(f"    {len(lines) + 1}. training epoch {epoch + 1}/{stream.epochs}: blocks "
                     f"{order} -> {chain} -> {fit}")
        if stream.holdout is not None:
            stop = (f"; stop after {stream.patience} epoch(s) without gain, keep the best"
                    if stream.patience else "")
            lines.append(f"    {len(lines) + 1}. holdout score after epoch {epoch + 1}, one "
                         f"parallel pass{stop}")
    return lines


def _order(plan: Plan, partitions: int) -> str:
    """The order the blocks come in: as stored, or shuffled, mixed across a window."""
    from ..engine.mixing import window_size

    stream = plan.stream
    if not stream.shuffle:
        return "in order"
    window = window_size(stream.shuffle_window, True, partitions)
    if window is None:
        return f"shuffled (seed {plan.random_state}), rows permuted inside each block"
    together = ("one partition" if window == 1 else
                f"{window} partitions at a time read together and their rows mixed into every "
                "block")
    return (f"shuffled (seed {plan.random_state}), {together}, each partition's rows drawn "
            f"through a pool of 2 blocks (SHUFFLE WINDOW {stream.shuffle_window or window})")


def _boosted_passes(plan: Plan, first: int) -> list[str]:
    """Boosted trees: the matrices' passes over the blocks, then the rounds."""
    stream = plan.stream
    cached = "the first reads the source and writes the block cache, the next two read it"
    chain = " -> ".join(["select", *[s.kind for s in plan.steps if s.kind != "scale"]])
    lines = [f"    {first}. training matrix (XGBoost's external memory): three passes over the "
             f"training blocks, in order -> {chain} (SCALE changes no split: left out); {cached}"]
    if stream.holdout is not None:
        lines.append(f"    {first + 1}. holdout matrix: two passes over the {stream.holdout:.0%} "
                     "of rows held out by a hash of their values (the first from the source)")
    stop = (f", stopped after {stream.patience} round(s) without a better holdout loss, the "
            "best round kept" if stream.patience else "")
    scored = ", each scored on the holdout" if stream.holdout is not None else ""
    lines.append(f"    {first + len(lines)}. boosting: n_estimators rounds on every core{scored}"
                 f"{stop}; no further read of the data")
    return lines


def _boosted_lines(plan: Plan, estimator: Any, width: int, rows: int | None) -> list[str]:
    """Boosted trees: the rounds, what XGBoost holds in memory, and its page cache on disk."""
    from ..engine.boosted import LABEL_BYTES, ROW_STATE_BYTES, page_cache_bytes
    from ..engine.cache import MARGIN_BYTES, disk_room

    train = None if rows is None else int(rows * (1 - (plan.stream.holdout or 0)))
    lines = [f"  rounds:     {estimator.rounds} (n_estimators)"]
    if train is None:
        return lines + ["  memory:     labels held whole (4 bytes a training row) and about "
                        f"{ROW_STATE_BYTES} bytes a training row while XGBoost trains",
                        "  pages:      XGBoost's page cache in a temporary folder, removed after "
                        "the fit"]
    pages = page_cache_bytes(train, width)
    fits, free = disk_room(plan.stream.cache if isinstance(plan.stream.cache, str) else None,
                           pages)
    room = ("" if fits else f"; it would not fit in the {free / 2**20:,.0f} MB free (less a "
            f"margin of {MARGIN_BYTES >> 20} MB): the fit refuses, name a folder on a larger disk "
            "(CACHE 'folder')")
    return lines + [
        f"  memory:     labels held whole: {train:,} training rows x {LABEL_BYTES} bytes = "
        f"{train * LABEL_BYTES / 2**20:,.0f} MB; while XGBoost trains, about {ROW_STATE_BYTES} "
        f"bytes a training row ({train * ROW_STATE_BYTES / 2**20:,.0f} MB) beside the fixed "
        "part; none of the data",
        f"  pages:      XGBoost's page cache, at most about {pages / 2**20:,.0f} MB on disk "
        f"({width} columns, more with one-hot columns), removed after the fit{room}"]


def _cache_line(plan: Plan, width: int, rows: int | None) -> str:
    """Whether the prepared-block cache will be used, where, and about how big it will be."""
    from ..engine.cache import MARGIN_BYTES, cache_off, disk_room

    stream, wanted = plan.stream, plan.stream.cache
    reason = cache_off(plan)
    if reason is not None:
        return f"off ({reason})"
    where = (f"kept in {wanted!r} for later fits with the same data and preparation"
             if isinstance(wanted, str) else "a temporary folder, removed after the fit")
    size = ""
    if rows is not None:
        itemsize = 4 if stream.precision == "float32" else 8
        nbytes = int(rows * (1 - (stream.holdout or 0)) * width * itemsize)
        fits, free = disk_room(wanted if isinstance(wanted, str) else None, nbytes)
        if wanted is None and not fits:
            return (f"off: about {nbytes / 2**20:,.0f} MB would not fit in the "
                    f"{free / 2**20:,.0f} MB free (less a margin of {MARGIN_BYTES >> 20} MB); "
                    "name a folder on a larger disk (CACHE 'folder')")
        size = (f", about {nbytes / 2**20:,.0f} MB ({width} prepared columns of "
                f"{stream.precision or 'float64'} per training row; more with one-hot columns"
                f"{'' if fits else '; more than the disk has free: caching stops when full'})")
    return (f"on: epoch 1 writes the prepared blocks, later epochs read them ({where}{size}); "
            "not on a cluster")


def _text_line(plan: Plan, frame: Any) -> str | None:
    """How a text source is parsed: once, its parsed rows kept for the later passes."""
    from ..engine.parsed import is_text

    if not is_text(frame):
        return None
    if plan.stream.cache is False:
        return "parsed by every pass (CACHE OFF)"
    return ("parsed once: the statistics pass keeps the parsed rows (uncompressed Arrow, in "
            "a temporary folder removed after the fit, inside the CACHE folder if one is named) "
            "and every later pass reads them; not on a cluster")


def _pairs(params: tuple[tuple[str, Any], ...]) -> str:
    """``k=v, ...`` of a plan's frozen parameters."""
    return ", ".join(f"{k}={v!r}" for k, v in params)


def _reader(source: Source | None) -> str:
    if source is None:
        return "ddf"
    if source.table is not None:
        return source.table
    if source.format == "delta":
        version = f", version={source.version}" if source.version is not None else ""
        return f"oocml.read_delta({source.path!r}{version})"
    fmt = source.format or ("csv" if source.path.lower().endswith(".csv") else "parquet")
    return f"dd.read_{fmt}({source.path!r})"


def _estimator_text(plan: Plan) -> tuple[str, str]:
    """('from module import Class', 'Class(param=...)' or 'Class')."""
    from ..estimators import changed_params, import_class

    cls = import_class(plan.estimator.qualname)
    module = plan.estimator.qualname.rsplit(".", 1)[0]
    shown = {k: v for k, v in changed_params(cls, dict(plan.estimator.params)).items()
             if not (k == "random_state" and v == plan.random_state)}
    args = ", ".join(f"{k}={v!r}" for k, v in sorted(shown.items()))
    return f"from {module} import {cls.__name__}", f"{cls.__name__}({args})" if args else cls.__name__


def _encoders_line(plan: Plan, frame: Any, features: list[str]) -> list[str]:
    """Which column gets which encoder (none without an encoding step)."""
    from dask.dataframe.utils import make_meta

    from ..encoding import with_defaults
    from ..engine.checks import split_features
    from ..engine.steps import encoder_params, encoding_groups

    if not any(s.kind == "encode" for s in plan.steps):
        return []
    _, encoded = split_features(make_meta(frame), features, plan.steps)
    described = []
    for step, columns in encoding_groups(plan.steps, encoded):
        params = with_defaults(step.method, encoder_params(step))
        described.append(f"{', '.join(columns)}: {step.method} ({_encoder_text(step.method, params)})")
    return [f"  encoders:   {'; '.join(described) or '(no column to encode)'}"]


def _encoder_text(method: str, params: dict[str, Any]) -> str:
    if method == "onehot":
        return f"one-hot, the {params['max_categories']} most frequent values and one for the rest"
    if method == "ordinal":
        return "ordinal codes, -1 for unseen"
    if method == "hash":
        return f"hashed into {params['n_features']:,} signed columns"
    low, high = params["ngram_range"]
    grams = "words" if (low, high) == (1, 1) else f"word {low}- to {high}-grams"
    weighted = (", TF-IDF weighted (document frequencies counted in the statistics pass)"
                if params.get("tfidf") else "")
    return (f"{grams} hashed into {params['n_features']:,} columns (HashingVectorizer)"
            f"{weighted}, sparse")


def _search_options(search: Search) -> list[str]:
    """``search=``, ``n_candidates=``, ``reduction_factor=`` of a TUNE clause."""
    scipy = {"loguniform": "stats.loguniform({low!r}, {high!r})",
             "uniform": "stats.uniform({low!r}, {width!r})",
             "randint": "stats.randint({ilow!r}, {ihigh!r})"}
    space = []
    for name, values in search.space:
        if isinstance(values, Distribution):
            text = scipy[values.kind].format(low=values.low, high=values.high,
                                              width=values.high - values.low,
                                              ilow=int(values.low), ihigh=int(values.high) + 1)
        else:
            text = repr(list(values))
        space.append(f"{name!r}: {text}")
    options = [f"search={{{', '.join(space)}}}"]
    if search.trials is not None:
        options.append(f"n_candidates={search.trials!r}")
    if search.reduction_factor != REDUCTION_FACTOR:
        options.append(f"reduction_factor={search.reduction_factor!r}")
    return options


def _search_lines(plan: Plan) -> list[str]:
    """EXPLAIN's schedule of a TUNE: candidates per epoch, who they are, the passes."""
    from ..engine.search import candidate_params, survivors

    search, stream = plan.search, plan.stream
    candidates = candidate_params(search, plan.random_state)
    how = (f"{search.trials} drawn (seed {plan.random_state})" if search.trials is not None
           else "every point of the grid")
    if plan.estimator.qualname.startswith("oocml.boosting."):
        lines = [f"  tune:       {len(candidates)} candidates, {how}, boosted in turn on the same "
                 f"two matrices (built once); after each rung of rounds the best "
                 f"1/{search.reduction_factor} by holdout score go on"
                 + (f", each stopped after {stream.patience} round(s) without a better holdout "
                    "loss" if stream.patience else ""), *_rungs(plan, len(candidates))]
    else:
        lines = [f"  tune:       {len(candidates)} candidates, {how}, trained side by side on "
                 f"the same blocks; after each epoch the best 1/{search.reduction_factor} by "
                 "holdout score go on" + (f", each stopped after {stream.patience} epoch(s) "
                                          "without gain" if stream.patience else "")]
        live = len(candidates)
        for epoch in range(stream.epochs):
            lines.append(f"    epoch {epoch + 1}: {live} candidate(s) train on the epoch's "
                         f"{1 - stream.holdout:.0%} of rows, then one holdout pass scores them "
                         "all")
            live = survivors(live, search.reduction_factor)
    for k, params in enumerate(candidates[:12]):
        lines.append(f"    candidate {k}: {_pairs(tuple(params.items()))}")
    if len(candidates) > 12:
        lines.append(f"    ... and {len(candidates) - 12} more")
    return lines


def _rungs(plan: Plan, candidates: int) -> list[str]:
    """Boosted trees' TUNE: the rounds each rung grows its live candidates to."""
    from ..engine.boosted_search import rung_count, rung_rounds
    from ..engine.search import survivors

    eta = plan.search.reduction_factor
    rounds = plan.estimator.param_dict().get("n_estimators") or 100  # XGBoost's default
    rungs, live, lines = rung_count(candidates, eta), candidates, []
    for rung in range(rungs):
        lines.append(f"    rung {rung + 1}: {live} candidate(s) grow to "
                     f"{rung_rounds(rounds, rung, rungs, eta)} of {rounds} rounds (n_estimators), "
                     "scored on the holdout after each round")
        live = survivors(live, eta)
    return lines


def format_plan_as_accessor(plan: Plan) -> str:
    """The Python ``.ml`` chain that plans exactly ``plan``."""
    import_line, estimator = _estimator_text(plan)
    chain = [_reader(plan.source), ".ml"]
    if plan.where is not None:
        chain.append(f".where({to_text(plan.where)!r})")
    if plan.features is not None or plan.exclude:
        args = []
        if plan.features is not None:
            args.append(f"features={list(plan.features)!r}")
        if plan.exclude:
            args.append(f"exclude={list(plan.exclude)!r}")
        chain.append(f".select({', '.join(args)})")
    for step in plan.steps:
        params = "".join(f", {k}={v!r}" for k, v in step.params)
        chain.append(f".{step.kind}({step.method!r}{params})")
    options = [f"target={plan.target!r}"] if plan.target is not None else []
    stream, default = plan.stream, StreamOptions()
    for key in ("epochs", "block_rows", "shuffle", "shuffle_window", "strategy", "holdout",
                "patience",
                "checkpoint", "checkpoint_every", "resume", "cache", "precision"):
        if getattr(stream, key) != getattr(default, key):
            options.append(f"{key}={getattr(stream, key)!r}")
    if plan.classes is not None:
        options.append(f"classes={list(plan.classes)!r}")
    if plan.random_state != 0:
        options.append(f"random_state={plan.random_state!r}")
    head = ["import dask.dataframe as dd", "import oocml", import_line, ""]
    if plan.search is not None:
        options += _search_options(plan.search)
        if any(isinstance(v, Distribution) for _, v in plan.search.space):
            head.insert(2, "from scipy import stats")
    chain.append(f".fit_incremental({', '.join([estimator, *options])})")
    return "\n".join(head) + "model = " + "".join(chain)


