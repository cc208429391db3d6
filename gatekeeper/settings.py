"""Where the gatekeeper keeps its data and finds its policy.

Environment variables override the defaults:

* ``GATEKEEPER_DATA_DIR``   default ``./.gatekeeper`` — chroma/, gatekeeper.db, ledger.jsonl
* ``GATEKEEPER_POLICY_DIR`` default ``policies/`` of this checkout
* ``GATEKEEPER_CACHE``      default ``~/.cache/gatekeeper`` — trained classifier and screen artifacts,
  ONNX exports of the encoders
* ``GATEKEEPER_EMBED_BACKEND`` default ``onnx`` (onnxruntime); ``torch`` runs sentence-transformers
* ``GATEKEEPER_ENCODER_PROCESS`` default ``auto``: batches of writes run the int8 encoder in a child
  process beside the reviewer (``gatekeeper.encoder_process``); ``off`` keeps it on helper threads
* ``GATEKEEPER_TRAINING_NICE`` default ``19``: how much lower than the writes a classifier training started
  by a policy reload runs (``GatekeeperSettings.training_nice``)
* ``GATEKEEPER_TRAINING_PROCESS`` default ``on``: that training runs in a child process
  (``gatekeeper.training_process``); ``off`` runs it in a thread of the serving process
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gatekeeper.policy import default_policy_dir


def cache_root() -> Path:
    """Trained artifacts and ONNX exports (``$GATEKEEPER_CACHE``, default ``~/.cache/gatekeeper``)."""
    return Path(os.environ.get("GATEKEEPER_CACHE", Path.home() / ".cache" / "gatekeeper"))


def _data_dir() -> Path:
    return Path(os.environ.get("GATEKEEPER_DATA_DIR", ".gatekeeper"))


#: the nice value a background classifier training adds to its child process or thread unless configured
#: otherwise
DEFAULT_TRAINING_NICE = 19


def _training_nice() -> int:
    raw = os.environ.get("GATEKEEPER_TRAINING_NICE", str(DEFAULT_TRAINING_NICE))
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"GATEKEEPER_TRAINING_NICE must be a whole number from 0 to 19, not {raw!r}") from None


def _training_process() -> bool:
    raw = os.environ.get("GATEKEEPER_TRAINING_PROCESS", "on").strip().lower()
    if raw not in ("on", "off"):
        raise ValueError(f"GATEKEEPER_TRAINING_PROCESS must be on or off, not {raw!r}")
    return raw == "on"


class GatekeeperSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(default_factory=_data_dir)
    policy_dir: Path = Field(default_factory=default_policy_dir)
    #: the nice value added to a classifier training that a policy reload starts in the background (0-19):
    #: to its child process (``training_process``), or to its thread (Linux, where nice is per thread and
    #: the threads it starts inherit it), so that the writes served meanwhile keep most of the CPU; an idle
    #: machine still gives the training all of it.
    #: Measured with a training process beside 1,000 single writes on two cores (docs/performance.md):
    #: mean / p99 4.1 / 9-10 ms idle, 8.9-9.4 / 23-24 ms beside a training at nice 0, 6.6 / 16.6 at 10,
    #: 5.4 / 14.9 at 19
    training_nice: int = Field(default_factory=_training_nice, ge=0, le=19)
    #: run that training in a child process (the whole process at ``training_nice``; torch and its memory
    #: leave with it), where the classifier factory can be imported by name (the default one can); the
    #: serving process then only loads the finished artifact
    training_process: bool = Field(default_factory=_training_process)

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.jsonl"

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "gatekeeper.db"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"
