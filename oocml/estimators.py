"""The algorithm registry: names -> scikit-learn estimators with ``partial_fit``.

:func:`spec_for` turns whatever a user names (a registry name, a dotted
scikit-learn path, a class or an instance) into an :class:`EstimatorSpec`;
:func:`build` turns a spec back into a fresh, validated estimator.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._compat import validate_params
from .errors import MissingPackageError, ParameterError, UnknownAlgorithmError, did_you_mean, listing
from .plan import EstimatorSpec, Params, freeze_params

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator


@dataclass(frozen=True)
class Algorithm:
    """A named algorithm: the estimator class, fixed defaults, and its task."""

    name: str
    qualname: str
    task: str  # "classification" | "regression" | "clustering"
    summary: str
    defaults: Params = ()


_PA = {"penalty": None, "learning_rate": "pa1", "eta0": 1.0}  # scikit-learn 1.8's advice

ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in [
        Algorithm("sgd", "sklearn.linear_model.SGDClassifier", "classification",
                  "linear classifier (hinge, log_loss, ...) by stochastic gradient descent"),
        Algorithm("sgd_regressor", "sklearn.linear_model.SGDRegressor", "regression",
                  "linear regression by stochastic gradient descent"),
        Algorithm("passive_aggressive", "sklearn.linear_model.SGDClassifier", "classification",
                  "passive-aggressive classifier (SGD with learning_rate='pa1')",
                  freeze_params({"loss": "hinge", **_PA})),
        Algorithm("passive_aggressive_regressor", "sklearn.linear_model.SGDRegressor", "regression",
                  "passive-aggressive regressor (SGD with learning_rate='pa1')",
                  freeze_params({"loss": "epsilon_insensitive", **_PA})),
        Algorithm("perceptron", "sklearn.linear_model.Perceptron", "classification",
                  "the perceptron"),
        Algorithm("mlp", "sklearn.neural_network.MLPClassifier", "classification",
                  "multi-layer perceptron classifier"),
        Algorithm("mlp_regressor", "sklearn.neural_network.MLPRegressor", "regression",
                  "multi-layer perceptron regressor"),
        Algorithm("naive_bayes", "sklearn.naive_bayes.GaussianNB", "classification",
                  "Gaussian naive Bayes"),
        Algorithm("multinomial_nb", "sklearn.naive_bayes.MultinomialNB", "classification",
                  "multinomial naive Bayes (non-negative features)"),
        Algorithm("bernoulli_nb", "sklearn.naive_bayes.BernoulliNB", "classification",
                  "Bernoulli naive Bayes"),
        Algorithm("minibatch_kmeans", "sklearn.cluster.MiniBatchKMeans", "clustering",
                  "k-means clustering on mini-batches"),
        Algorithm("xgboost", "oocml.boosting.BoostedTreesClassifier", "classification",
                  "gradient-boosted trees (XGBoost, out-of-core through its external memory)"),
        Algorithm("xgboost_regressor", "oocml.boosting.BoostedTreesRegressor", "regression",
                  "gradient-boosted regression trees (XGBoost, out-of-core)"),
    ]
}
BOOSTED = "oocml.boosting"  # the module of the estimators the engine boosts from external memory
EXTRAS = {BOOSTED: ("XGBoost", "xgboost")}  # registry modules that need an extra: (package, extra)


def is_boosted(estimator: Any) -> bool:
    """Whether the engine trains ``estimator`` (or its class) as boosted trees, from an
    external-memory matrix of the prepared blocks, rather than by ``partial_fit``."""
    cls = estimator if isinstance(estimator, type) else type(estimator)
    return cls.__module__ == BOOSTED


def import_class(qualname: str, *, sklearn_only: bool = False) -> type:
    """Import ``package.module.Class``; with ``sklearn_only`` refuse anything outside scikit-learn."""
    module_name, _, class_name = qualname.rpartition(".")
    if sklearn_only and not (module_name == "sklearn" or module_name.startswith("sklearn.")):
        raise UnknownAlgorithmError(
            f"unknown algorithm {qualname!r}: only scikit-learn classes may be named by path "
            f"(e.g. 'sklearn.linear_model.SGDClassifier'); known names: {listing(ALGORITHMS)}"
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        if module_name in EXTRAS:
            package, extra = EXTRAS[module_name]
            raise MissingPackageError(f"{class_name} needs {package}, which is not installed: "
                                      f'pip install "oocml[{extra}]"') from None
        raise UnknownAlgorithmError(f"cannot import estimator class {qualname!r}: {exc}") from None
    except (AttributeError, ValueError) as exc:
        raise UnknownAlgorithmError(f"cannot import estimator class {qualname!r}: {exc}") from None
    if not (isinstance(cls, type) and (hasattr(cls, "partial_fit") or is_boosted(cls))):
        raise UnknownAlgorithmError(f"{qualname!r} is not an estimator class with partial_fit")
    return cls


def _qualname(cls: type) -> str:
    if "<locals>" in cls.__qualname__:
        raise ParameterError(
            f"estimator class {cls.__qualname__!r} is defined inside a function; "
            "define it at module level so the plan can name it"
        )
    module = cls.__module__
    # Prefer the public path (sklearn.linear_model.SGDClassifier, not ..._stochastic_gradient...).
    if module.startswith("sklearn."):
        public = ".".join(module.split(".")[:2])
        if getattr(importlib.import_module(public), cls.__name__, None) is cls:
            module = public
    return f"{module}.{cls.__qualname__}"


def accepted_params(cls: type) -> list[str]:
    """The constructor parameters of an estimator class, as scikit-learn's get_params sees them
    (an ``__init__`` that takes ``**kwargs``, as XGBoost's, lists them in ``get_params``)."""
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return list(cls().get_params(deep=False))
    return [p for p in parameters if p != "self"]


def spec_for(
    estimator: Any,
    params: dict[str, Any] | None = None,
    random_state: int | None = 0,
    *,
    sklearn_only: bool = False,
) -> EstimatorSpec:
    """Normalise a name, dotted path, class or instance (plus overriding params) to a spec.

    ``random_state`` seeds the estimator when it takes one and was not given one,
    so that a plan is reproducible by default.
    """
    merged: dict[str, Any] = {}
    if isinstance(estimator, str):
        algo = ALGORITHMS.get(estimator.lower())
        if algo is not None:
            cls = import_class(algo.qualname)
            merged.update(dict(algo.defaults))
        elif "." in estimator:
            cls = import_class(estimator, sklearn_only=sklearn_only)
        else:
            raise UnknownAlgorithmError(
                f"unknown algorithm {estimator!r}{did_you_mean(estimator, ALGORITHMS)}; "
                f"known algorithms: {listing(ALGORITHMS)}"
            )
    elif isinstance(estimator, type):
        cls = estimator
    elif (hasattr(estimator, "partial_fit") or is_boosted(estimator)) and hasattr(estimator, "get_params"):
        cls = type(estimator)
        merged.update(estimator.get_params(deep=False))
    else:
        raise ParameterError(
            f"{estimator!r} is not an estimator with partial_fit; pass a scikit-learn class such as "
            "SGDClassifier, an instance of one, or an algorithm name"
        )
    if not (hasattr(cls, "partial_fit") or is_boosted(cls)):
        raise ParameterError(f"{cls.__name__} has no partial_fit, so it cannot learn out-of-core")
    merged.update(params or {})
    allowed = accepted_params(cls)
    for name in merged:
        if name not in allowed:
            raise ParameterError(
                f"{cls.__name__} has no parameter {name!r}{did_you_mean(name, allowed)}; "
                f"its parameters: {listing(allowed, 40)}"
            )
    if random_state is not None and "random_state" in allowed and merged.get("random_state") is None:
        merged["random_state"] = random_state
    # Canonical: only what differs from the class defaults, so equal estimators give equal specs.
    merged = changed_params(cls, merged)
    spec = EstimatorSpec(_qualname(cls), freeze_params(merged))
    build(spec)  # validate names and values now, before any data is read
    return spec


_MISSING = object()


def changed_params(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """The ``params`` of an estimator class that differ from its defaults: what a spec keeps,
    what EXPLAIN's Python passes and what DESCRIBE shows (one rule, so they agree)."""
    defaults = cls().get_params(deep=False)
    return {k: v for k, v in params.items() if not _same(v, defaults.get(k, _MISSING))}


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b) and type(a) is type(b)
    except Exception:  # array-like parameters compare element-wise
        return False


def build(spec: EstimatorSpec) -> BaseEstimator:
    """A fresh estimator from a spec, its parameter values checked by scikit-learn itself."""
    cls = import_class(spec.qualname)
    try:
        estimator = cls(**spec.param_dict())
        if is_boosted(estimator):
            estimator.check_params()  # XGBoost's own checks (it has no _parameter_constraints)
        else:
            validate_params(estimator)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"bad parameter for {cls.__name__}: {exc}") from None
    return estimator


def task_of(estimator: Any) -> str:
    """'classification', 'regression' or 'clustering', from scikit-learn's tags."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    return "clustering"


def algorithms_table() -> list[dict[str, Any]]:
    """One row per registry algorithm: name, task, estimator, summary, whether it takes the
    sparse blocks of ENCODE text and hash, parameters (SHOW ALGORITHMS)."""
    from sklearn.utils import get_tags

    rows = []
    for algo in ALGORITHMS.values():
        try:
            cls = import_class(algo.qualname)
        except MissingPackageError as exc:
            rows.append({"name": algo.name, "task": algo.task, "estimator": "(not installed)",
                         "summary": f"{algo.summary}; {str(exc).split(': ', 1)[-1]}",
                         "encode text/hash": "", "parameters": ""})
            continue
        fixed = dict(algo.defaults)
        params = [p for p in cls().get_params(deep=False) if p not in fixed]
        rows.append({"name": algo.name, "task": algo.task, "estimator": cls.__name__,
                     "summary": algo.summary,
                     # sparse blocks: what ENCODE hash and ENCODE text make
                     "encode text/hash": "yes" if get_tags(cls()).input_tags.sparse else "no",
                     "parameters": ", ".join(params)})
    return rows
