"""CHECKPOINT / RESUME: the training state, written atomically every few blocks.

A checkpoint holds the estimator (skops, no pickle), the stream position and the
training log. It is tied to a fingerprint of the plan and of the data's
statistics (recomputed by the resumed run's own statistics pass), so a run can
only resume the very training it interrupted, and then ends with the same model,
bit for bit, as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from typing import Any

import numpy as np

from ..errors import ModelFileError, ParameterError
from ..io.storage import exists, read_bytes, remove, write_bytes
from ..modelfile import dumps, loads_trusted
from ..plan import Plan
from .stats import Summary
from .stream import Position, TrainingLog
from .validation import HoldoutMonitor, ProgressiveScore

log = logging.getLogger("oocml")

FORMAT = "oocml.checkpoint"
DEFAULT_EVERY = 10


def fingerprint(plan: Plan, summary: Summary) -> str:
    """A digest of what the training depends on: the plan and the data's statistics."""
    stream = dataclasses.replace(plan.stream, resume=False, checkpoint_every=None, prefetch=0)
    digest = hashlib.sha256()
    digest.update(repr(dataclasses.replace(plan, stream=stream, source=None, name=None)).encode())
    digest.update(repr(summary.partition_rows).encode())
    for array in (summary.moments.mean, summary.moments.m2, summary.moments.count,
                  summary.labels if summary.labels is not None else np.zeros(0)):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclasses.dataclass
class Checkpoint:
    """Writes and reads one checkpoint file (a path or any fsspec URL);
    ``self(estimator, position, log)`` writes it."""

    path: str
    fingerprint: str
    monitor: HoldoutMonitor | None = None
    writes: int = 0
    options: dict | None = None  # storage options of the path's filesystem

    def __call__(self, estimator: Any, position: Position, record: TrainingLog) -> None:
        state = {
            "fingerprint": self.fingerprint,
            "position": {"epoch": position.epoch, "done": position.done,
                         "epoch_rows": position.epoch_rows,
                         "scored": (None if position.scored is None
                                    else dataclasses.asdict(position.scored))},
            "log": dataclasses.asdict(record),
            "monitor": None if self.monitor is None else {
                "best_score": self.monitor.best_score, "best_epoch": self.monitor.best_epoch,
                "waited": self.monitor.waited},
        }
        payload = {"format": FORMAT, "estimator": estimator,
                   "best": None if self.monitor is None else self.monitor.best_estimator,
                   "state": json.dumps(state)}
        write_bytes(self.path, dumps(payload), self.options)
        self.writes += 1

    def read(self) -> tuple[Any, Position, TrainingLog] | None:
        """The saved (estimator, position, log), or None when there is no checkpoint yet."""
        if not exists(self.path, self.options):
            log.info("no checkpoint at %s yet: training from the start", self.path)
            return None
        data = read_bytes(self.path, self.options)
        try:
            payload = loads_trusted(data, f"checkpoint {self.path!r}")
            state = json.loads(payload["state"])
        except ModelFileError:
            raise
        except Exception as exc:  # a truncated or foreign file: say so, never run it
            raise ModelFileError(f"{self.path!r} is not a readable oocml checkpoint "
                                 f"({type(exc).__name__}: {exc})") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ModelFileError(f"{self.path!r} is not an oocml checkpoint")
        if state["fingerprint"] != self.fingerprint:
            raise ParameterError(
                f"the checkpoint {self.path!r} was written by a different training (other "
                "plan, parameters or data): delete it, or train without RESUME / resume=True"
            )
        saved = state["position"]
        scored = None if saved["scored"] is None else ProgressiveScore(**saved["scored"])
        position = Position(saved["epoch"], saved["done"], saved["epoch_rows"], scored)
        record = TrainingLog(**state["log"])
        if self.monitor is not None and state["monitor"] is not None:
            self.monitor.best_score = state["monitor"]["best_score"]
            self.monitor.best_epoch = state["monitor"]["best_epoch"]
            self.monitor.waited = state["monitor"]["waited"]
            self.monitor.best_estimator = payload["best"]
        log.info("resuming from %s: epoch %d, %d partitions done", self.path, position.epoch + 1,
                 position.done)
        return payload["estimator"], position, record

    def remove(self) -> None:
        """Training completed: the model now holds everything the checkpoint did."""
        remove(self.path, self.options)
