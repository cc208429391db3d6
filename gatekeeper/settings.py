"""Where the gatekeeper keeps its data and finds its policy.

Environment variables override the defaults:

* ``GATEKEEPER_DATA_DIR``   default ``./.gatekeeper`` — chroma/, gatekeeper.db, ledger.jsonl
* ``GATEKEEPER_POLICY_DIR`` default ``policies/`` of this checkout
* ``GATEKEEPER_CACHE``      default ``~/.cache/gatekeeper`` — trained classifier and screen artifacts,
  ONNX exports of the encoders
* ``GATEKEEPER_EMBED_BACKEND`` default ``onnx`` (onnxruntime); ``torch`` runs sentence-transformers
* ``GATEKEEPER_ENCODER_PROCESS`` default ``auto``: batches of writes run the int8 encoder in a child
  process beside the reviewer (``gatekeeper.encoder_process``); ``off`` keeps it on helper threads
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


class GatekeeperSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(default_factory=_data_dir)
    policy_dir: Path = Field(default_factory=default_policy_dir)

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.jsonl"

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "gatekeeper.db"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"
