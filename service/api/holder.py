"""Holds the engine the service answers with, and swaps it atomically on reload.

Requests take a reference to the current :class:`Engine` once and keep it for their whole
life, so replacing ``holder.engine`` never disturbs a request in flight. A reload that
fails (a broken or mismatching build) keeps the old engine serving and records the error.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from indexer.embedders import Embedder, load_embedders
from indexer.errors import TanyaError
from service.qa.answering import PassageReader
from service.qa.engine import Engine, EngineConfig, load_reranker

log = logging.getLogger("tanya.service")


@dataclass(frozen=True)
class ReloadResult:
    """Outcome of one reload attempt."""

    reloaded: bool
    build_id: str | None
    previous_build_id: str | None
    error: str | None = None


def current_target(index_dir: Path) -> str | None:
    """What the index link points at now (changes when a new build is swapped in)."""
    try:
        return os.readlink(index_dir) if index_dir.is_symlink() else str(index_dir.resolve())
    except OSError:
        return None


class EngineHolder:
    """The current engine (or the reason there is none)."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.engine: Engine | None = None
        self.error: str | None = None
        self.last_reload_error: str | None = None
        self._embedders: list[Embedder] | None = None
        self._reranker: PassageReader | None = None
        self._target: str | None = None
        self._lock = threading.Lock()

    def _embedders_loaded(self) -> list[Embedder]:
        if self._embedders is None:
            self._embedders = load_embedders(self.config.embedders, self.config.encoder_threads)
        return self._embedders

    def _reranker_loaded(self) -> PassageReader | None:
        # Loaded once per process, like the encoders: a new index build does not change it.
        if self._reranker is None:
            self._reranker = load_reranker(self.config.answer.reranker)
        return self._reranker

    def load(self) -> ReloadResult:
        """(Re)load the index at ``config.index_dir``; keep the old engine if that fails."""
        with self._lock:
            previous = self.engine.index.build_id if self.engine else None
            target = current_target(self.config.index_dir)
            try:
                engine = Engine.load(self.config, self._embedders_loaded(), reranker=self._reranker_loaded())
                engine.warm_up()
            except Exception as exc:  # any failure must leave the current engine serving
                detail = exc.detail if isinstance(exc, TanyaError) else f"{type(exc).__name__}: {exc}"
                log.warning("index not (re)loaded: %s", detail, exc_info=not isinstance(exc, TanyaError))
                # What clients see: the kind of failure, not paths or library internals (those are logged).
                public = f"{exc.title if isinstance(exc, TanyaError) else 'Internal error'}; details in the service log"
                self.last_reload_error = public
                if self.engine is None:
                    self.error = public
                self._target = target  # do not retry the same broken build on every poll
                return ReloadResult(False, previous, previous, public)
            self.engine = engine  # the atomic switch: one reference assignment
            self.error = None
            self.last_reload_error = None
            self._target = target
            log.info("index loaded: build %s", engine.index.build_id)
            return ReloadResult(True, engine.index.build_id, previous)

    def changed_on_disk(self) -> bool:
        """Whether the index link now points at a build other than the one last tried."""
        return current_target(self.config.index_dir) != self._target
