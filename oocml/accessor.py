"""The ``.ml`` accessor on dask and pandas DataFrames: an immutable chain that builds a Plan.

``ddf.ml.scale().fit_incremental(SGDClassifier, target="y")``: each call
returns a new :class:`Chain`; nothing is read until ``fit_incremental``. The
accessor keeps no state (dask caches one accessor object per DataFrame).
A column named ``ml`` is shadowed by the accessor; ``ddf["ml"]`` still works.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .errors import ParameterError
from .import_hook import after_import
from .plan import REDUCTION_FACTOR, Condition, Plan, Search, Step, StreamOptions, conjunction, freeze_params
from .plan_rules import ENCODINGS, SCALINGS, SEARCH_HOLDOUT, check_step, one_of, search_space, validate

if TYPE_CHECKING:
    import pandas as pd

    from .model import Model


@dataclass(frozen=True)
class Chain:
    """Preprocessing steps and column choices recorded against one DataFrame, ready to fit."""

    frame: Any = field(repr=False, compare=False)
    steps: tuple[Step, ...] = ()
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    condition: Condition | None = None

    def __repr__(self) -> str:
        from .io.conditions import to_text

        steps = " -> ".join(f"{s.kind} {s.method}" for s in self.steps) or "no steps"
        where = f" where {to_text(self.condition)}" if self.condition is not None else ""
        chosen = f" features={len(self.features)}" if self.features is not None else ""
        parts = getattr(self.frame, "npartitions", 1)
        return f"<oocml.Chain {steps}{where}{chosen} on {parts} partition(s)>"

    def _repr_html_(self) -> str:
        """What a notebook shows: the data (from metadata), the steps, the passes a fit makes."""
        from .evaluation.display import chain_html

        return chain_html(self)

    def scale(self, kind: str = "standard", **params: Any) -> Chain:
        """Add a scaling step: ``standard``, ``minmax`` or ``maxabs`` (``none`` adds nothing)."""
        if one_of("scaling", kind, (*SCALINGS, "none")) == "none":
            return self
        return self._with(Step("scale", kind, freeze_params(params)))

    def impute(self, kind: str = "mean") -> Chain:
        """Fill missing values per column: ``mean``, ``median`` (streaming sketch) or ``zero``."""
        return self._with(Step("impute", kind))

    def encode(self, kind: str | None = None, *, columns: Sequence[str] | None = None,
               **params: Any) -> Chain:
        """Turn the categorical (string, categorical) features into numbers.

        ``onehot`` (``max_categories=32`` per column, rarer values share one column),
        ``ordinal`` (every value seen gets a number; -1 for unseen), ``hash``
        (``n_features=256`` signed hashed columns, no statistics needed) or ``text`` (free
        text as hashed word n-grams: scikit-learn's ``HashingVectorizer``, ``n_features=2**20``,
        ``ngram_range``, ``lowercase``, ``stop_words``, ``alternate_sign``, ``norm``, ``binary``,
        and ``tfidf=True`` to weight by document frequencies counted in the statistics pass;
        sparse blocks). With ``columns``, only those columns (call once per encoding); without,
        every categorical column no other encoding names. Per column in one call:
        ``.encode(text=["review"], onehot=["country"])``.
        """
        by_method = {k: params.pop(k) for k in list(params) if k in ENCODINGS}
        if by_method:
            if kind is not None or columns is not None or params:
                raise ParameterError("encode(text=[...], onehot=[...]) names columns per "
                                     "encoding; give parameters in one call per encoding: "
                                     ".encode('text', columns=[...], n_features=...)")
            chain = self
            for method, names in by_method.items():
                chain = chain.encode(method, columns=[names] if isinstance(names, str) else names)
            return chain
        if columns is not None:
            params["columns"] = [columns] if isinstance(columns, str) else list(columns)
        return self._with(Step("encode", kind or "onehot", freeze_params(params)))

    def reduce(self, kind: str = "pca", n_components: int = 10) -> Chain:
        """Project onto ``n_components`` principal components (scikit-learn's IncrementalPCA,
        fitted by its own ``partial_fit`` pass); the last step, after every other one."""
        return self._with(Step("reduce", kind, freeze_params({"n_components": n_components})))

    def _with(self, step: Step) -> Chain:
        """This chain with ``step`` added, checked now rather than after a pass over the data."""
        return replace(self, steps=self.steps + (check_step(step),))

    def where(self, condition: str | Condition) -> Chain:
        """Keep the rows satisfying ``condition`` (the language's WHERE syntax, or a plan condition).

        Repeated calls are combined with AND. Parquet sources skip row groups when
        the language's ``TRAIN ... WHERE`` can push the filter down.
        """
        if isinstance(condition, str):
            from .dsl.parser import parse_condition

            condition = parse_condition(condition)
        return replace(self, condition=conjunction(self.condition, condition))

    def select(self, features: Sequence[str] | None = None, exclude: Sequence[str] = ()) -> Chain:
        """Choose the feature columns: these ones, or all but ``exclude`` (and the target)."""
        if isinstance(features, str) or isinstance(exclude, str):
            raise ParameterError("features= and exclude= take lists of column names, not a string")
        return replace(self, features=None if features is None else tuple(features),
                       exclude=tuple(exclude))

    def plan(self, estimator: Any, target: str | None = None, *,
             features: Sequence[str] | None = None, classes: Sequence | None = None,
             epochs: int = 1, shuffle: bool = False, shuffle_window: int | None = None,
             random_state: int | None = 0,
             block_rows: int | None = None, prefetch: int = 2, strategy: str = "sequential",
             holdout: float | None = None, patience: int | None = None,
             checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
             resume: bool = False, cache: bool | str | os.PathLike | None = None,
             precision: str | None = None, search: dict | None = None,
             n_candidates: int | None = None, reduction_factor: int = REDUCTION_FACTOR,
             **params: Any) -> Plan:
        """The Plan ``fit_incremental`` would run, without running it.

        ``holdout``: a fraction of rows (picked by a hash of their values) kept out of
        training and scored after each epoch; ``patience``: stop after that many epochs
        without a better holdout score and keep the best epoch's model. ``checkpoint``:
        a file where the training state is written atomically every ``checkpoint_every``
        partitions (default 10); ``resume=True`` continues from it after a crash.
        ``strategy="average"``: every worker (core, or thread of the active
        ``distributed.Client``) trains on its own partition each round and the models are
        averaged (SGD-family linear models only); the default trains sequentially.
        ``cache``: the prepared-block cache (see :mod:`oocml.engine.cache`): ``True``,
        ``False``, or a folder in which it is kept for later fits on the same data with the
        same preparation; by default on when more than one epoch streams on this machine.
        ``precision="float32"``: train on float32 blocks whatever the data's dtype (half the
        memory and cache, a faster ``partial_fit``).

        ``search``: hyperparameter search (the language's TUNE), ``{name: [values]}`` for a
        grid or ``{name: scipy.stats.loguniform(a, b)}`` (also ``uniform``, ``randint``)
        with ``n_candidates`` drawn; every candidate trains on the same blocks, and after
        each epoch the best ``1 / reduction_factor`` by holdout score go on. ``holdout``
        defaults to 0.2 with a search; ``patience`` then applies to each candidate.
        """
        from .estimators import spec_for

        chosen = self.select(features, self.exclude) if features is not None else self
        tune = None
        if search is not None or n_candidates is not None:
            tune = Search(search_space(search), n_candidates, reduction_factor)
            holdout = SEARCH_HOLDOUT if holdout is None else holdout
        return validate(Plan(
            estimator=spec_for(estimator, params, random_state),
            target=target,
            features=chosen.features,
            exclude=chosen.exclude,
            where=self.condition,
            steps=self.steps,
            classes=None if classes is None else tuple(classes),
            stream=StreamOptions(epochs=epochs, block_rows=block_rows, shuffle=shuffle,
                                 shuffle_window=shuffle_window,
                                 prefetch=prefetch, strategy=strategy,
                                 holdout=holdout,
                                 patience=patience,
                                 checkpoint=None if checkpoint is None else os.fspath(checkpoint),
                                 checkpoint_every=checkpoint_every, resume=bool(resume),
                                 cache=os.fspath(cache) if isinstance(cache, os.PathLike)
                                 else cache, precision=precision),
            random_state=random_state,
            search=tune,
        ))

    def fit_incremental(self, estimator: Any, target: str | None = None, *,
                        progress: bool | None = None, storage_options: dict | None = None,
                        **options: Any) -> Model:
        """Fit ``estimator`` (class, instance or name) out-of-core; options as in :meth:`plan`.

        Extra keyword arguments that are not options set the estimator's parameters,
        e.g. ``fit_incremental(SGDClassifier, target="y", alpha=1e-4)``. ``storage_options``
        reach the filesystem of a ``checkpoint`` URL (the data's own are given to dask).
        """
        from .engine.fit import fit_plan
        from .model import Model

        model = Model.from_fit(fit_plan(self.plan(estimator, target, **options), self.frame,
                                        progress=progress, storage_options=storage_options))
        return _tracked(model)

    def update(self, model: Model, *, epochs: int = 1, shuffle: bool = False, new: bool = False,
               include_changed: bool = False, progress: bool | None = None) -> Model:
        """``model`` trained further on these rows (the language's UPDATE): a new Model; ``model``
        is not changed. Its preprocessing stays as fitted and its estimator continues from its
        state, so fitting on A then updating on B gives the model of one stream over A then B.
        Rows a ``where()`` of this chain rejects are left out, as are those the model's own
        WHERE rejected. Each block is predicted before the model trains on it: the first
        epoch's ``report.history[0]["progressive_score"]`` is the update's score.

        ``new=True`` trains only on the files the model's lineage does not hold (the frame must
        be read from files, e.g. ``dd.read_parquet``); a file it holds whose size or ETag/mtime
        changed is refused, unless ``include_changed=True``. When no file is new, ``model``
        itself is returned, with a warning.
        """
        if self.steps or self.features is not None or self.exclude:
            raise ParameterError("update() keeps the model's preprocessing and columns as fitted: "
                                 "call it on ddf.ml (or after .where()), without steps or select()")
        from .engine.update import update_fit
        from .model import Model

        fitted = update_fit(start_of(model), self.frame, where=self.condition, epochs=epochs,
                            shuffle=shuffle, new=new, include_changed=include_changed,
                            progress=progress)
        if fitted is None:
            import warnings

            warnings.warn("no file of this data is new to the model: nothing was trained, and "
                          "the model is returned unchanged", UserWarning, stacklevel=2)
            return model
        return _tracked(Model.from_fit(fitted, before=model))

    def profile(self, *, progress: bool | None = None) -> pd.DataFrame:
        """One row per column of the chain's rows (its WHERE) and columns (its select(): the
        chosen features, else every column): dtype, rows, missing, mean, std, min, max,
        distinct and top values, in one parallel pass (see :func:`oocml.evaluation.profile.profile`).
        The steps are not applied: this is the data as read."""
        from .evaluation.profile import profile

        return profile(self.frame, columns=self.features, exclude=self.exclude,
                       where=self.condition, progress=progress)


def _tracked(model: Model) -> Model:
    """``model``, its fit logged first when ``OOCML_TRACKING`` asks (see :mod:`oocml.tracking`)."""
    from .tracking import log_fit, tracker

    if tracker(None) is not None:
        log_fit(model)
    return model


def start_of(model: Model) -> Any:
    """What an update of ``model`` continues from (:class:`oocml.engine.update.Start`)."""
    from .engine.update import Start
    from .model import Model

    if not isinstance(model, Model):
        raise ParameterError(f"update() takes an oocml.Model, not {type(model).__name__}")
    return Start(model.pipeline, model.features, model.target, model.task, model.classes,
                 model.plan, model.report.search is not None, model.lineage)


class MLAccessor:
    """``df.ml``: starts a :class:`Chain` on this DataFrame. Each method is the Chain's method
    of the same name on a new, empty chain (``df.ml.scale()`` is ``Chain(df).scale()``)."""

    STARTERS = ("scale", "impute", "encode", "reduce", "where", "select", "plan",
                "fit_incremental", "update", "profile")

    def __init__(self, frame: Any):
        self._frame = frame


def _starter(name: str) -> Callable[..., Any]:
    method = getattr(Chain, name)

    @functools.wraps(method)
    def start(self: MLAccessor, *args: Any, **kwargs: Any) -> Any:
        return method(Chain(self._frame), *args, **kwargs)

    return start


for _name in MLAccessor.STARTERS:
    setattr(MLAccessor, _name, _starter(_name))


def register() -> None:
    """Register ``.ml`` on pandas and dask DataFrames: now if the library is imported, else
    the moment it is (before its importer sees it), so ``import oocml`` imports neither."""
    after_import("pandas", _register_pandas)
    after_import("dask.dataframe", _register_dask)


def _register_pandas() -> None:
    import warnings

    import pandas as pd

    with warnings.catch_warnings():  # pandas warns when an accessor is registered again
        warnings.simplefilter("ignore", UserWarning)
        pd.api.extensions.register_dataframe_accessor("ml")(MLAccessor)


def _register_dask() -> None:
    import warnings

    from dask.dataframe.extensions import register_dataframe_accessor

    with warnings.catch_warnings():  # so does dask
        warnings.simplefilter("ignore", UserWarning)
        register_dataframe_accessor("ml")(MLAccessor)
