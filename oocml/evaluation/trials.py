"""TUNE's trials as a table: ``search_results_`` and SHOW TRIALS, from the records a search
keeps in the model (one per candidate: its parameters, holdout score per epoch, rows seen, and
when and why it stopped)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def trials_table(trials: list[dict]) -> pd.DataFrame:
    """``search_results_``: one row per candidate, in the spirit of scikit-learn's
    ``cv_results_``: ``param_<name>`` columns, ``params``, the holdout score per rung,
    the best, the rank, the rows each saw, and when and why it stopped."""
    rungs = max((len(t["scores"]) for t in trials), default=0)
    rows = []
    for t in trials:
        row = {f"param_{k}": v for k, v in t["params"].items()}
        row["params"] = t["params"]
        for r in range(rungs):
            row[f"score_epoch_{r + 1}"] = t["scores"][r] if r < len(t["scores"]) else np.nan
        row.update(best_score=t["best_score"], rank=0, rows_seen=t["rows_seen"],
                   dropped_after_epoch=t["dropped_after"], stopped=t["reason"] or "")
        rows.append(row)
    # As halving chose: those that went further first, then the better best score (ties: the
    # first candidate), so rank 1 is the model the search returned.
    order = sorted(range(len(trials)), key=lambda k: (-len(trials[k]["scores"]),
                                                     -(trials[k]["best_score"] or -math.inf), k))
    for position, k in enumerate(order):
        rows[k]["rank"] = position + 1
    return pd.DataFrame(rows)
