"""Gradient-boosted trees (XGBoost) as scikit-learn estimators that a model file can hold.

The engine trains them out-of-core (:mod:`oocml.engine.boosted`: XGBoost's external-memory
matrix fed the prepared blocks); these classes are what a fitted Model keeps. They are
XGBoost's own scikit-learn estimators with two differences:
- a model file holds the booster in XGBoost's own UBJSON format, as a byte array: never
  pickle, and no type that skops must be told to trust beyond these two classes;
- a classifier predicts the labels it was trained on (strings too): XGBoost's codes 0..k-1
  are their positions among the sorted labels.

``import oocml.boosting`` needs the ``xgboost`` extra (the CPU-only ``xgboost-cpu`` wheel).
OpenMP threads wait passively for work unless ``OMP_WAIT_POLICY`` says otherwise: on a busy
2-core machine, threads spinning for work took the cores from the loaders and from each other,
and boosting slowed several times over. It must be set before XGBoost loads its OpenMP
runtime, so here.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import xgboost
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f'boosted trees need XGBoost, which is not installed ({exc}): '
                      'pip install "oocml[xgboost]"') from None

MAX_BIN = 256  # XGBoost's default; the external-memory matrix and the training must agree
DEFAULT_ROUNDS = 100  # n_estimators=None: XGBoost's own default number of boosting rounds


def xgboost_message(exc: Exception) -> str:
    """The first line of an XGBoost error, without its time stamp and source file."""
    first = str(exc).strip().splitlines()[0]
    return re.sub(r"^\[[\d:]+\] \S+: ", "", first)


class _Boosted:
    """What both estimators share: their state in a model file, and the booster parameters
    oocml trains with."""

    def __copy__(self) -> _Boosted:
        """A shallow copy, as XGBoost's ``get_params`` makes one (not through the state that a
        model file holds, which serializes the booster)."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __getstate__(self) -> dict[str, Any]:
        state = {"params": self.get_params(deep=False)}
        if self.__sklearn_is_fitted__():
            raw = self.get_booster().save_raw("ubj")
            state["booster"] = np.frombuffer(bytes(raw), dtype=np.uint8).copy()
            state["labels"] = getattr(self, "labels_", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["params"])
        if "booster" in state:
            self.load_model(bytearray(state["booster"].tobytes()))
            if state.get("labels") is not None:
                self.labels_ = np.asarray(state["labels"])

    def booster_params(self, n_classes: int | None = None) -> dict[str, Any]:
        """The parameters of ``xgboost.train`` for these estimator parameters: the histogram
        method (the only one external memory takes), ``max_bin``, and for a classifier the
        objective its classes need (unless one was given)."""
        params = {k: v for k, v in self.get_xgb_params().items() if v is not None}
        params.update(tree_method="hist", max_bin=self.max_bin or MAX_BIN)
        params.setdefault("nthread", os.cpu_count() or 1)
        # XGBoost's random engine is one per thread, shared by every booster: reseeded from the
        # seed and the round before each round, a booster samples the same rows and columns
        # whether it trains alone or in turn with TUNE's other candidates
        params.setdefault("seed_per_iteration", True)
        if n_classes is not None and self.objective in (None, "binary:logistic"):
            if n_classes > 2:
                params.update(objective="multi:softprob", num_class=n_classes)
            else:
                params["objective"] = "binary:logistic"
        elif n_classes is not None and str(self.objective).startswith("multi:"):
            params["num_class"] = n_classes
        return params

    @property
    def rounds(self) -> int:
        """Boosting rounds to train (``n_estimators``)."""
        return int(self.n_estimators or DEFAULT_ROUNDS)

    def check_params(self) -> None:
        """Train one round on two rows: XGBoost refuses a bad parameter value now, before any
        data is read (a ValueError naming it)."""
        # labels every objective takes: classes 0 and 1; values in (0, 1) for a regressor
        # (positive for Poisson and gamma, a probability for reg:logistic)
        labels = [0.0, 1.0] if self._is_classifier() else [0.25, 0.75]
        try:
            matrix = xgboost.DMatrix(np.array([[0.0], [1.0]]), label=np.array(labels))
            xgboost.train(self.booster_params(2 if self._is_classifier() else None), matrix, 1)
        except xgboost.core.XGBoostError as exc:
            raise ValueError(xgboost_message(exc)) from None

    def _is_classifier(self) -> bool:
        return isinstance(self, xgboost.XGBClassifier)


class BoostedTreesClassifier(_Boosted, xgboost.XGBClassifier):
    """XGBoost's classifier, predicting the labels it was trained on (``labels_``)."""

    def fit(self, X: Any, y: Any, **kwargs: Any) -> BoostedTreesClassifier:
        """In memory, as XGBoost fits (the labels encoded as their positions)."""
        labels, codes = np.unique(np.asarray(y), return_inverse=True)
        self.__dict__.pop("labels_", None)  # XGBoost checks its own classes, 0..k-1, while it fits
        super().fit(X, codes, **kwargs)
        self.labels_ = labels
        return self

    def adopt(self, booster: xgboost.Booster, labels: Any) -> BoostedTreesClassifier:
        """This estimator holding ``booster`` (trained by ``xgboost.train``) for ``labels``."""
        self.load_model(bytearray(booster.save_raw("ubj")))
        self.labels_ = np.asarray(labels)
        return self

    @property
    def classes_(self) -> np.ndarray:
        labels = self.__dict__.get("labels_")
        return labels if labels is not None else super().classes_

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        return self.labels_[np.asarray(super().predict(X, **kwargs), dtype=np.int64)]


class BoostedTreesRegressor(_Boosted, xgboost.XGBRegressor):
    """XGBoost's regressor."""

    def adopt(self, booster: xgboost.Booster, labels: Any = None) -> BoostedTreesRegressor:
        """This estimator holding ``booster`` (trained by ``xgboost.train``)."""
        self.load_model(bytearray(booster.save_raw("ubj")))
        return self
