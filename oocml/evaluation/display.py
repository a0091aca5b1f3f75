"""Rich display in notebooks: the HTML a Jupyter cell shows for a Model or a Chain.

Built from what the object already holds: nothing here reads data or computes a metric. Each
section is drawn on its own, and a section that cannot be drawn (a model file of an older
oocml, an estimator without the attribute) shows why instead, so displaying never raises.
scikit-learn's own pipeline diagram is embedded for the fitted pipeline.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

STYLE = ("<style>.oocml-box{font-family:sans-serif;font-size:13px;border:1px solid #ccc;"
         "border-radius:4px;padding:8px;margin:4px 0}.oocml-box table{border-collapse:collapse;"
         "margin:4px 0}.oocml-box td,.oocml-box th{border:1px solid #ddd;padding:2px 8px;"
         "text-align:left}.oocml-box h4{margin:8px 0 4px}</style>")
SHOWN_FEATURES = 12  # features named before "... (n in all)"
SHOWN_FITS = 10  # lineage rows shown, the newest


def model_html(model: Any) -> str:
    """The HTML of an :class:`oocml.Model`: what it is, how it was trained, its learning curve,
    the fitted pipeline, a search's leaderboard, its lineage and latest evaluation."""
    sections = [_section("Model", lambda: _facts(_model_facts(model))),
                _section("Learning curve", lambda: _learning_curve(model.report.history)),
                _section("Latest evaluation", lambda: _evaluation(model)),
                _section("TUNE leaderboard", lambda: _leaderboard(model)),
                _section("Lineage", lambda: _lineage(model.lineage)),
                _section("Fitted pipeline", lambda: _pipeline(model.pipeline))]
    name = html.escape(type(getattr(model, "estimator", None)).__name__)
    return (f"{STYLE}<div class='oocml-box'><b>oocml.Model</b> {name}"
            + "".join(s for s in sections if s) + "</div>")


def chain_html(chain: Any) -> str:
    """The HTML of an accessor :class:`oocml.Chain`: the data (partitions, columns and dtypes,
    from metadata), its steps and choices, and the passes a fit would make."""
    return (f"{STYLE}<div class='oocml-box'><b>oocml.Chain</b> (nothing read until "
            "<code>fit_incremental</code>)"
            + _section("Data", lambda: _facts(_frame_facts(chain.frame)))
            + _section("Steps", lambda: _facts(_chain_facts(chain)))
            + _section("A fit would", lambda: _passes(chain)) + "</div>")


def _section(title: str, draw: Callable[[], str | None]) -> str:
    try:
        body = draw()
    except Exception as exc:  # noqa: BLE001  (a display must show what it can, never raise)
        body = f"<i>not available: {html.escape(str(exc) or type(exc).__name__)}</i>"
    return "" if body is None else f"<h4>{html.escape(title)}</h4>{body}"


def _facts(rows: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in rows if v is not None)
    return f"<table>{cells}</table>"


def _table(frame: Any) -> str:
    return frame.to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}")


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(map(str, items[:SHOWN_FEATURES]))
    return shown + (f", ... ({len(items)} in all)" if len(items) > SHOWN_FEATURES else "")


def _model_facts(model: Any) -> list[tuple[str, Any]]:
    report = model.report
    return [("task", model.task), ("target", model.target),
            ("features", _names(model.features)),
            ("classes", None if model.classes is None else _names([str(c) for c in model.classes])),
            ("rows seen", f"{report.rows_seen:,} in {report.epochs} epoch(s)"),
            ("seconds", f"{report.stats_seconds + report.train_seconds:.2f} "
                        f"(statistics {report.stats_seconds:.2f}, training {report.train_seconds:.2f})"),
            ("holdout score", None if report.holdout_score is None
             else f"{report.holdout_score:.4f} (best epoch {report.best_epoch})")]


def _learning_curve(history: Sequence[dict]) -> str | None:
    """The holdout score per epoch (else the progressive score) as a small inline SVG."""
    for key in ("holdout_score", "progressive_score"):
        scores = [e[key] for e in history if e.get(key) is not None]
        if len(scores) >= 2:
            return svg_line(scores) + f" <small>{key.replace('_', ' ')} per epoch, " \
                f"{min(scores):.4f} .. {max(scores):.4f}</small>"
    return None


def svg_line(values: Sequence[float], width: int = 220, height: int = 48) -> str:
    """A polyline of ``values`` (left to right) with a dot on each, in an inline SVG."""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 8) / max(len(values) - 1, 1)
    points = [(4 + i * step, height - 4 - (v - low) / span * (height - 8))
              for i, v in enumerate(values)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2' fill='#1f77b4'/>" for x, y in points)
    return (f"<svg width='{width}' height='{height}' role='img'>"
            f"<polyline points='{path}' fill='none' stroke='#1f77b4' stroke-width='1.5'/>"
            f"{dots}</svg>")


def _evaluation(model: Any) -> str | None:
    found = getattr(model, "last_evaluation", None)
    return None if found is None else _table(found)


def _leaderboard(model: Any) -> str | None:
    if model.report.search is None:
        return None
    table = model.search_results_.sort_values("rank").head(5)
    return _table(table[["rank", "params", "best_score", "rows_seen"]].astype({"params": str}))


def _lineage(lineage: Sequence[Any]) -> str | None:
    if not lineage:
        return None
    import pandas as pd

    rows = [{"fit": i, "kind": s.kind, "at": s.at, "source": s.source or "a DataFrame",
             "files": None if s.files is None else len(s.files), "rows": s.rows,
             "score": s.score} for i, s in enumerate(lineage)][-SHOWN_FITS:]
    return _table(pd.DataFrame(rows))


def _pipeline(pipeline: Any) -> str:
    from sklearn.utils import estimator_html_repr

    return estimator_html_repr(pipeline)


def _frame_facts(frame: Any) -> list[tuple[str, Any]]:
    columns = [f"{c} {t}" for c, t in frame.dtypes.astype(str).items()]
    return [("type", type(frame).__module__.split(".")[0] + " DataFrame"),
            ("partitions", getattr(frame, "npartitions", 1)), ("columns", _names(columns))]


def _chain_facts(chain: Any) -> list[tuple[str, Any]]:
    from ..io.conditions import to_text

    steps = [f"{s.kind} {s.method}" + (f" {dict(s.params)}" if s.params else "")
             for s in chain.steps]
    return [("steps", " -> ".join(steps) or "(none: features as they are)"),
            ("where", None if chain.condition is None else to_text(chain.condition)),
            ("features", None if chain.features is None else _names(list(chain.features))),
            ("excluded", ", ".join(chain.exclude) or None)]


def _passes(chain: Any) -> str:
    needs = sorted({_STATISTIC.get(s.kind, s.kind) for s in chain.steps})
    lines = ["one parallel statistics pass: row counts, NaN and infinity checks, class labels"
             + "".join(f", {n}" for n in needs)]
    if any(s.kind == "reduce" for s in chain.steps):
        lines.append("one pass to fit the projection (IncrementalPCA)")
    lines.append("then per epoch, one pass of blocks through the fitted steps to partial_fit")
    return "<ol>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ol>"


_STATISTIC = {"scale": "the scalers' moments", "impute": "the imputers' statistics",
              "encode": "category counts for the encoders", "reduce": "(the projection's pass)"}
