"""ONNX export: a fitted :class:`oocml.Model` as an ONNX graph that onnxruntime runs.

The graph has one input per feature column, named after it, shaped ``[rows, 1]``: numeric
columns as double (float64), so every step and estimator computes in double precision as
scikit-learn does; categorical columns as strings, a missing value fed as ``""`` (any value
the encoder never saw lands where scikit-learn puts a missing one: the ``infrequent``
column of ``onehot``, -1 for ``ordinal``). :func:`onnx_inputs` builds that feed from a
pandas frame. Outputs are skl2onnx's: ``label`` and ``probabilities`` (a tensor, never a
list of dicts) for classifiers, ``variable`` for regressors, ``label`` and ``scores`` (the
distance to each centre) for clustering. A classifier without ``predict_proba`` (hinge
loss, the perceptron) puts its ``decision_function`` in ``probabilities``: one column per
class, or ``-score, score`` for two.

What cannot be exported exactly is refused before anything is written, naming the step:
``ENCODE hash`` (oocml's own encoder has no ONNX counterpart) and any step or estimator
skl2onnx has no converter for. ``onehot``'s other bucket is converted by oocml, not by
skl2onnx (which refuses infrequent categories): a row whose value is none of the kept
categories gets 1 in the ``infrequent`` column, exactly as scikit-learn's encoder does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from .errors import ParameterError
from .estimators import is_boosted

MISSING = ""  # how a missing categorical value is fed to the graph


def to_onnx(model: Any, target_opset: int | None = None) -> Any:
    """The ONNX graph (an ``onnx.ModelProto``) computing ``model``'s predictions (the model is
    left as it was; :func:`opset` reads the graph's operator set). Refuses steps without an
    exact converter."""
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.exceptions import MissingConverter, MissingShapeCalculator
    except ImportError:
        raise ParameterError("ONNX export needs skl2onnx and onnxruntime: pip install "
                             "'oocml[onnx]'; or export the raw scikit-learn pipeline, "
                             "model.pipeline") from None
    _refuse_own(model.pipeline)
    _register_boosted(model.estimator)
    options = ({id(model.estimator): {"zipmap": False}}
               if model.task == "classification" else None)
    try:
        proto = convert_sklearn(model.pipeline, name="oocml", initial_types=_input_types(model),
                                target_opset=_opsets(model.estimator, target_opset),
                                options=options,
                                custom_conversion_functions={OneHotEncoder: _convert_onehot,
                                                             SimpleImputer: _convert_imputer})
    except (MissingConverter, MissingShapeCalculator, RuntimeError) as exc:
        if not isinstance(exc, MissingConverter | MissingShapeCalculator) and \
                "Unable to find" not in str(exc):
            raise
        raise ParameterError(f"cannot export to ONNX: {_culprit(model.pipeline, str(exc))} has "
                             "no ONNX converter in skl2onnx; save it as an oocml model "
                             "(SAVE MODEL ... TO 'm.oocml') or use the raw scikit-learn "
                             "pipeline, model.pipeline") from None
    return proto


def _opsets(estimator: Any, target_opset: int | None) -> Any:
    """skl2onnx's target: ``target_opset`` (None: its newest); with boosted trees, ONNX-ML's
    operator set 3, the newest onnxmltools' converter writes (its tree ensembles)."""
    from skl2onnx import get_latest_tested_opset_version

    if not is_boosted(estimator):
        return target_opset
    return {"": target_opset or get_latest_tested_opset_version(), "ai.onnx.ml": 3}


def opset(proto: Any) -> int:
    """The version of the main ONNX operator set a graph uses."""
    return next(int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def onnx_inputs(model: Any, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The onnxruntime feed for ``frame``'s rows: one ``[rows, 1]`` array per feature column,
    float64 for numbers (NaN stays NaN), strings for categories (missing as ``""``)."""
    model.check_columns(frame)
    encoded, feed = set(_encoded_columns(model.pipeline)), {}
    for column in model.features:
        values = frame[column]
        if column in encoded:
            text = values.astype(object).where(values.notna(), MISSING).map(str)
            feed[column] = text.to_numpy(dtype=object).reshape(-1, 1)
        else:
            feed[column] = values.to_numpy(dtype=np.float64, na_value=np.nan).reshape(-1, 1)
    return feed


def _input_types(model: Any) -> list[tuple[str, Any]]:
    """One graph input per feature column: strings for the encoded ones, double otherwise."""
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    encoded = set(_encoded_columns(model.pipeline))
    return [(c, StringTensorType([None, 1]) if c in encoded else DoubleTensorType([None, 1]))
            for c in model.features]


def _encoded_columns(pipeline: Pipeline) -> list[str]:
    """The feature columns an encoder reads: the graph takes them as strings."""
    first = pipeline[0]
    if not isinstance(first, ColumnTransformer):
        return []
    return [c for name, step, columns in first.transformers_
            if name != "numeric" and not _passthrough(step) for c in columns]


def _passthrough(step: Any) -> bool:
    """A ColumnTransformer's 'passthrough' or 'drop' (fitted, 'passthrough' becomes an
    identity FunctionTransformer)."""
    return isinstance(step, str) or (isinstance(step, FunctionTransformer) and step.func is None)


def _leaves(step: Any, path: str) -> list[tuple[str, Any]]:
    """Every fitted transformer and estimator inside ``step``, with where it sits."""
    if isinstance(step, Pipeline):
        return [leaf for name, s in step.steps for leaf in _leaves(s, f"{path}{name}/")]
    if isinstance(step, ColumnTransformer):
        return [leaf for name, s, _ in step.transformers_ if not isinstance(s, str)
                for leaf in _leaves(s, f"{path}{name}/")]
    return [(path.rstrip("/"), step)]


def _refuse_own(pipeline: Pipeline) -> None:
    """oocml's own transformers (the hash and text encoders) have no ONNX converter; an
    encoder that kept the category "" could not tell it from a missing value."""
    for where, leaf in _leaves(pipeline, ""):
        if any(MISSING in list(c) for c in getattr(leaf, "categories_", [])):
            raise ParameterError(f"cannot export to ONNX: step {where!r} keeps the empty string "
                                 "as a category, and the graph feeds a missing value as ''; "
                                 "replace '' in the data first, or use the raw scikit-learn "
                                 "pipeline, model.pipeline")
        if type(leaf).__module__.split(".")[0] == "oocml" and not is_boosted(leaf):
            method = _method(where)
            instead = ("skl2onnx converts no HashingVectorizer" if method == "text"
                       else "train with ENCODE onehot / ordinal instead")
            raise ParameterError(f"cannot export to ONNX: step {where!r} is oocml's own "
                                 f"{type(leaf).__name__} (ENCODE {method}), which has no ONNX "
                                 f"counterpart; {instead}, or save it as an oocml model (SAVE "
                                 "MODEL ... TO 'm.oocml') or use the raw scikit-learn pipeline, "
                                 "model.pipeline")


def _method(where: str) -> str:
    """The encoding a ColumnTransformer step is named after ('features/hash_1' -> 'hash')."""
    return where.rsplit("/", 1)[-1].split("_")[0]


def _culprit(pipeline: Pipeline, message: str) -> str:
    """The step a skl2onnx error is about, by its class name in the message."""
    for where, leaf in _leaves(pipeline, ""):
        if type(leaf).__name__ in message:
            return f"step {where!r} ({type(leaf).__name__})"
    return "a step of the pipeline"


def _convert_onehot(scope: Any, operator: Any, container: Any) -> None:
    """``OneHotEncoder`` with an other bucket, per categorical column: ONNX's one-hot of the
    kept categories (all zeros for any other value), then ``infrequent`` = 1 - their sum."""
    encoder = operator.raw_operator
    pieces, starts = [], np.cumsum([0] + [i.type.shape[1] for i in operator.inputs])
    for index, categories in enumerate(encoder.categories_):
        slot = int(np.searchsorted(starts, index, side="right")) - 1
        source = operator.inputs[slot].full_name
        if operator.inputs[slot].type.shape[1] != 1:
            source = _gather(scope, container, source, index - int(starts[slot]))
        rare = encoder.infrequent_categories_[index]  # None: no other bucket in this column
        other = rare is not None
        kept = [c for c in categories if not other or c not in set(rare)]  # sklearn's order
        hot = scope.get_unique_variable_name("onehot")
        container.add_node("OneHotEncoder", source, hot, op_domain="ai.onnx.ml", zeros=1,
                           cats_strings=[str(c).encode() for c in kept],
                           name=scope.get_unique_operator_name("OneHotEncoder"))
        flat = scope.get_unique_variable_name("onehot_flat")
        container.add_node("Squeeze", [hot, _constant(scope, container, [1])], flat,
                           name=scope.get_unique_operator_name("Squeeze"))
        pieces.append(flat)
        if other:
            pieces.append(_other_bucket(scope, container, flat))
    container.add_node("Concat", pieces, operator.outputs[0].full_name, axis=1,
                       name=scope.get_unique_operator_name("Concat"))


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """``SimpleImputer`` in double precision (skl2onnx's goes through float32): each NaN
    replaced by its column's statistic."""
    imputer = operator.raw_operator
    if not (isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values)):
        raise ParameterError(f"cannot export to ONNX: an imputer of {imputer.missing_values!r} "
                             "(oocml's impute NaN); use the raw pipeline, model.pipeline")
    names = [i.full_name for i in operator.inputs]
    source = names[0]
    if len(names) > 1:
        source = scope.get_unique_variable_name("columns")
        container.add_node("Concat", names, source, axis=1,
                           name=scope.get_unique_operator_name("Concat"))
    missing, fill = scope.get_unique_variable_name("missing"), scope.get_unique_variable_name("fill")
    container.add_initializer(fill, 11, [1, imputer.statistics_.size],  # TensorProto.DOUBLE
                              imputer.statistics_.astype(np.float64).tolist())
    container.add_node("IsNaN", source, missing, name=scope.get_unique_operator_name("IsNaN"))
    container.add_node("Where", [missing, fill, source], operator.outputs[0].full_name,
                       name=scope.get_unique_operator_name("Where"))


def _other_bucket(scope: Any, container: Any, hot: str) -> str:
    """1 where a row's value is none of the kept categories (its one-hot row sums to 0)."""
    total, other = scope.get_unique_variable_name("kept"), scope.get_unique_variable_name("other")
    container.add_node("ReduceSum", [hot, _constant(scope, container, [1])], total, keepdims=1,
                       name=scope.get_unique_operator_name("ReduceSum"))
    one = scope.get_unique_variable_name("one")
    container.add_initializer(one, 1, [], [1.0])  # TensorProto.FLOAT
    container.add_node("Sub", [one, total], other, name=scope.get_unique_operator_name("Sub"))
    return other


def _gather(scope: Any, container: Any, source: str, column: int) -> str:
    out = scope.get_unique_variable_name("column")
    container.add_node("Gather", [source, _constant(scope, container, [column])], out, axis=1,
                       name=scope.get_unique_operator_name("Gather"))
    return out


def _constant(scope: Any, container: Any, values: list[int]) -> str:
    name = scope.get_unique_variable_name("axes")
    container.add_initializer(name, 7, [len(values)], values)  # TensorProto.INT64
    return name


def _register_boosted(estimator: Any) -> None:
    """Teach skl2onnx oocml's boosted trees (onnxmltools converts XGBoost's trees), when the
    model holds them; what the converter cannot compute exactly is refused first."""
    if not is_boosted(estimator):
        return
    try:
        import onnxmltools  # noqa: F401  (its XGBoost converter is imported where it is used)
    except ImportError:
        raise ParameterError("exporting boosted trees to ONNX needs onnxmltools: pip install "
                             "'oocml[onnx]'") from None
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    from .boosting import BoostedTreesClassifier, BoostedTreesRegressor

    update_registered_converter(BoostedTreesClassifier, "OocmlBoostedTreesClassifier",
                                calculate_linear_classifier_output_shapes, _convert_boosted,
                                options={"zipmap": [True, False, "columns"], "nocl": [True, False]})
    update_registered_converter(BoostedTreesRegressor, "OocmlBoostedTreesRegressor",
                                calculate_linear_regressor_output_shapes, _convert_boosted)


def _convert_boosted(scope: Any, operator: Any, container: Any) -> None:
    """XGBoost's trees through onnxmltools' converter, fed float32 as XGBoost compares them
    (a double just below a split can round onto it), scores cast to the declared type."""
    from types import SimpleNamespace

    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost

    source = scope.get_unique_variable_name("float32")
    container.add_node("Cast", operator.inputs[0].full_name, source, to=1,  # TensorProto.FLOAT
                       name=scope.get_unique_operator_name("Cast"))
    scores, raw = operator.outputs[-1], scope.get_unique_variable_name("tree_scores")
    trees = SimpleNamespace(raw_operator=_served(operator.raw_operator), inputs=operator.inputs,
                            input_full_names=[source],
                            output_full_names=[o.full_name for o in operator.outputs[:-1]] + [raw])
    convert_xgboost(scope, trees, container)
    double = type(scores.type).__name__ == "DoubleTensorType"
    container.add_node("Cast", raw, scores.full_name, to=11 if double else 1,
                       name=scope.get_unique_operator_name("Cast"))


def _served(estimator: Any) -> Any:
    """A copy of ``estimator`` holding the trees its predictions use: up to the round early
    stopping chose, as XGBoost predicts; features named f0, f1, ..., as onnxmltools reads
    them."""
    booster = estimator.get_booster()
    best = booster.attr("best_iteration")
    rounds = int(best) + 1 if best is not None else booster.num_boosted_rounds()
    trees = booster[:rounds]
    trees.feature_names = [f"f{i}" for i in range(trees.num_features())]
    served = type(estimator)(**estimator.get_params())
    served.adopt(trees, getattr(estimator, "labels_", None))
    served.n_estimators = rounds
    return served
