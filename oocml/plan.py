"""The Plan: what to train, as frozen dataclasses.

Both faces (the ``.ml`` accessor and the language) build a :class:`Plan`; the
engine decides how to run it. A Plan holds no data and does no work, so two
Plans compare equal exactly when they ask for the same model. The rules every
Plan must meet are :mod:`oocml.plan_rules` (:func:`~oocml.plan_rules.validate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from .redaction import redact, redact_url

Params = tuple[tuple[str, Any], ...]
REDUCTION_FACTOR = 3  # TUNE keeps the best 1/3 of its candidates after each epoch, by default


def freeze_params(params: dict[str, Any] | None) -> Params:
    """Sorted, hashable ``(name, value)`` pairs; lists become tuples."""

    def freeze(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(freeze(v) for v in value)
        return value

    return tuple(sorted((str(k), freeze(v)) for k, v in (params or {}).items()))


@dataclass(frozen=True)
class Source:
    """Where the data comes from: a path/glob/URL, or a table registered in a session."""

    path: str | None = None
    format: str | None = None  # "parquet" | "csv" | "json" | "delta" | None: by extension
    table: str | None = None
    options: Params = ()  # storage options of the path's filesystem (OPTIONS (...))
    version: int | None = None  # a Delta table's version (None: the latest)

    def options_over(self, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
        """The storage options for this path: ``defaults`` (a session's), then its own."""
        return {**dict(defaults or {}), **dict(self.options)}

    def __str__(self) -> str:
        """The source as the language writes it, with secret option values masked."""
        if self.table is not None:
            return self.table
        shown = ", ".join(f"{k} = {v!r}" for k, v in redact(self.options_over()).items())
        options = f" OPTIONS ({shown})" if shown else ""
        if self.format == "delta":
            version = f" VERSION {self.version}" if self.version is not None else ""
            return f"delta '{redact_url(self.path)}'{version}{options}"
        fmt = f" FORMAT {self.format}" if self.format else ""
        return f"'{redact_url(self.path)}'{fmt}{options}"

    def __repr__(self) -> str:
        return (f"Source(path={self.path!r}, format={self.format!r}, table={self.table!r}, "
                f"options={tuple(redact(self.options_over()).items())!r}, version={self.version!r})")


@dataclass(frozen=True)
class Compare:
    """``column op value`` with op one of = != < <= > >=."""

    column: str
    op: str
    value: Any


@dataclass(frozen=True)
class In:
    """``column [NOT] IN (v, ...)``."""

    column: str
    values: tuple[Any, ...]
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    """``column IS [NOT] NULL``."""

    column: str
    negated: bool = False


@dataclass(frozen=True)
class And:
    items: tuple[Condition, ...]


def conjunction(*conditions: Condition | None) -> Condition | None:
    """The rows every one of ``conditions`` keeps (None ones keep every row)."""
    given = tuple(c for c in conditions if c is not None)
    return None if not given else given[0] if len(given) == 1 else And(given)


@dataclass(frozen=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Compare | In | IsNull | And | Or | Not


@dataclass(frozen=True)
class Step:
    """One preprocessing step, in order.

    ``kind``/``method``: scale standard|minmax|maxabs, impute mean|median|zero,
    encode onehot|ordinal|hash (params: n_features), reduce pca (params: n_components).
    """

    kind: str
    method: str
    params: Params = ()


@dataclass(frozen=True)
class EstimatorSpec:
    """An estimator by its importable class name and its (frozen) parameters."""

    qualname: str
    params: Params = ()

    @property
    def class_name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    def param_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params}


@dataclass(frozen=True)
class StreamOptions:
    """How blocks are fed to ``partial_fit``: epochs, block size, shuffling, prefetch depth."""

    epochs: int = 1
    block_rows: int | None = None  # rows per partial_fit call; None: blocks of ~BLOCK_BYTES (8 MB)
    shuffle: bool = False
    shuffle_window: int | None = None  # SHUFFLE: partitions mixed at once; None: the default
    prefetch: int = 2  # partitions loaded ahead of partial_fit, at most
    strategy: str = "sequential"  # one of STRATEGIES
    holdout: float | None = None  # fraction of rows held out (stable hash split)
    patience: int | None = None  # early stop after this many epochs without holdout gain
    checkpoint: str | None = None  # path of the checkpoint file
    checkpoint_every: int | None = None  # partitions between checkpoints
    resume: bool = False
    cache: bool | str | None = None  # prepared-block cache: a folder to keep it in, True, False;
    # None: on when more than one epoch streams on this machine (oocml.engine.cache)
    precision: str | None = None  # "float32": train on float32 blocks; None: the data's dtype


@dataclass(frozen=True)
class Distribution:
    """A random-search distribution over [low, high]: ``loguniform``, ``uniform``, or
    ``randint`` (whole numbers, both bounds included)."""

    kind: str
    low: float
    high: float


@dataclass(frozen=True)
class Search:
    """TUNE: each parameter's values to try (a grid) or a :class:`Distribution` to sample;
    ``trials`` candidates drawn (None: every grid point); after each epoch the best
    ``1 / reduction_factor`` of the live candidates, by holdout score, go on."""

    space: tuple[tuple[str, tuple | Distribution], ...]
    trials: int | None = None
    reduction_factor: int = REDUCTION_FACTOR


@dataclass(frozen=True)
class Plan:
    """Everything a fit needs to know, none of the data."""

    estimator: EstimatorSpec
    target: str | None
    features: tuple[str, ...] | None = None  # None: every column but the target
    exclude: tuple[str, ...] = ()
    where: Condition | None = None
    steps: tuple[Step, ...] = ()
    classes: tuple[Any, ...] | None = None  # None: discovered in the statistics pass
    stream: StreamOptions = field(default_factory=StreamOptions)
    random_state: int | None = 0  # seeds shuffling (and the estimator, see estimators.spec_for)
    source: Source | None = None
    name: str | None = None
    search: Search | None = None  # TUNE: candidates trained side by side, halved by holdout

    def without_source(self) -> Plan:
        """The same plan with no source and no name: what the accessor and the DSL share."""
        return replace(self, source=None, name=None)

    def masked(self) -> Plan:
        """The same plan with the values of its source's secret-looking options masked: what a
        Model keeps, shows and saves."""
        if self.source is None or not self.source.options:
            return self
        masked = tuple(redact(self.source.options_over()).items())
        return replace(self, source=replace(self.source, options=masked))

    def as_dict(self) -> dict:
        """A JSON-friendly dict of the plan (model files); secrets masked; conditions tagged by
        kind, so that :meth:`from_dict` reads it back to an equal plan."""
        import json
        from dataclasses import asdict

        plan = self.masked()
        data = json.loads(json.dumps(asdict(plan), default=repr))
        data["where"] = None if plan.where is None else condition_dict(plan.where)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        """The plan :meth:`as_dict` wrote (also by oocml 0.1, whose conditions were untagged:
        one that mixes AND and OR cannot be read back, a ValueError)."""
        search = data.get("search")
        source = data.get("source")
        return cls(
            estimator=EstimatorSpec(data["estimator"]["qualname"],
                                    _pairs(data["estimator"].get("params", ()))),
            target=data.get("target"),
            features=None if data.get("features") is None else tuple(data["features"]),
            exclude=tuple(data.get("exclude", ())),
            where=None if data.get("where") is None else condition_from_dict(data["where"]),
            steps=tuple(Step(s["kind"], s["method"], _pairs(s.get("params", ())))
                        for s in data.get("steps", ())),
            classes=None if data.get("classes") is None else tuple(data["classes"]),
            stream=StreamOptions(**{f.name: data["stream"][f.name] for f in fields(StreamOptions)
                                    if f.name in data.get("stream", {})}),
            random_state=data.get("random_state"),
            source=None if source is None else Source(source.get("path"), source.get("format"),
                                                      source.get("table"),
                                                      _pairs(source.get("options", ())),
                                                      source.get("version")),
            name=data.get("name"),
            search=None if search is None else Search(
                tuple((name, Distribution(**values) if isinstance(values, dict)
                       else freeze_params({"v": values})[0][1]) for name, values in search["space"]),
                search.get("trials"), search.get("reduction_factor", REDUCTION_FACTOR)))


def _pairs(items: Any) -> Params:
    """``(name, value)`` pairs as a plan holds them (lists of a JSON file become tuples)."""
    return tuple((str(k), freeze_params({"v": v})[0][1]) for k, v in items)


_CONDITIONS: dict[str, type] = {"compare": Compare, "in": In, "is_null": IsNull, "and": And,
                                "or": Or, "not": Not}


def condition_dict(condition: Condition) -> dict:
    """A condition as a JSON-friendly dict tagged with its ``kind``."""
    kind = next(k for k, t in _CONDITIONS.items() if type(condition) is t)
    if isinstance(condition, And | Or):
        return {"kind": kind, "items": [condition_dict(item) for item in condition.items]}
    if isinstance(condition, Not):
        return {"kind": kind, "item": condition_dict(condition.item)}
    values = {f.name: getattr(condition, f.name) for f in fields(condition)}
    if isinstance(condition, In):
        values["values"] = list(condition.values)
    return {"kind": kind, **values}


def condition_from_dict(data: dict) -> Condition:
    """The condition :func:`condition_dict` wrote (or oocml 0.1's untagged dataclass dict)."""
    kind = data.get("kind") or _untagged_kind(data)
    if kind in ("and", "or"):
        return _CONDITIONS[kind](tuple(condition_from_dict(item) for item in data["items"]))
    if kind == "not":
        return Not(condition_from_dict(data["item"]))
    if kind == "in":
        return In(data["column"], tuple(data["values"]), data.get("negated", False))
    if kind == "is_null":
        return IsNull(data["column"], data.get("negated", False))
    return Compare(data["column"], data["op"], data["value"])


def _untagged_kind(data: dict) -> str:
    if "items" in data:
        raise ValueError("an untagged AND or OR (oocml 0.1 wrote both alike)")
    return ("not" if "item" in data else "compare" if "op" in data
            else "in" if "values" in data else "is_null")
