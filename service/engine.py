"""The query-side library the CLI, the HTTP service and the eval harness share.

An :class:`Engine` owns the loaded encoders and one loaded index. It is built once per
process (CLI command, app lifespan) and passed to whoever needs it.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from indexer.chunks import ChunkerConfig
from indexer.documents import Document
from indexer.embedders import Embedder, create_embedder
from indexer.errors import DocumentNotFoundError, InvalidQueryError
from indexer.lexical import Analyzer
from indexer.pipeline import embedder_infos
from indexer.settings import MODES, Mode, Settings
from indexer.store import IndexData, load_index
from service.answers import Answer, Answerer
from service.retrieval import FusionConfig, Passage, Retriever

MAX_QUESTION_CHARS = 1000


def chunker_config(settings: Settings) -> ChunkerConfig:
    """The chunker parameters the settings ask for."""
    return ChunkerConfig(max_tokens=settings.chunk_max_tokens, overlap_sentences=settings.chunk_overlap_sentences)


def load_embedders(specs: Sequence[str]) -> list[Embedder]:
    """Instantiate (load) the configured encoders, in order."""
    return [create_embedder(spec) for spec in specs]


def clean_question(question: str) -> str:
    """Strip the question and reject empty, control-only or over-long input."""
    if not isinstance(question, str):
        raise InvalidQueryError("the question must be a string")
    text = question.strip()
    printable = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\t\n")
    if not printable.strip():
        raise InvalidQueryError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQueryError(f"the question is longer than {MAX_QUESTION_CHARS} characters ({len(text)})")
    return text


@dataclass
class Engine:
    """Encoders + index + retriever + answerer, ready to answer."""

    settings: Settings
    embedders: list[Embedder]
    index: IndexData
    retriever: Retriever
    answerer: Answerer
    loaded_at: float

    @classmethod
    def load(
        cls, settings: Settings, embedders: list[Embedder] | None = None, index_dir: Path | None = None
    ) -> Engine:
        """Load the encoders (unless given) and the index, refusing a mismatching index."""
        live = embedders if embedders is not None else load_embedders(settings.embedders)
        index = load_index(index_dir or settings.index_dir, embedder_infos(live), chunker_config(settings))
        return cls.over(settings, live, index)

    @classmethod
    def over(cls, settings: Settings, embedders: list[Embedder], index: IndexData) -> Engine:
        """Wire an engine over an already loaded index."""
        analyzer = Analyzer()
        fusion = FusionConfig(method=settings.fusion, rrf_k=settings.rrf_k, weights=settings.fusion_weights)
        return cls(
            settings=settings,
            embedders=embedders,
            index=index,
            retriever=Retriever(index, embedders, analyzer, fusion),
            answerer=Answerer(
                index, analyzer, {m: settings.threshold_for(m) for m in MODES}, settings.answer_max_sentences
            ),
            loaded_at=time.time(),
        )

    def warm_up(self) -> None:
        """Run one query through every encoder so the first user does not pay for lazy loading."""
        analysis = self.retriever.analyse("warm up", "hybrid")
        self.retriever.search(analysis, "hybrid", 1)

    def reloaded(self) -> Engine:
        """A new engine over the current build on disk, reusing the loaded encoders."""
        return Engine.load(self.settings, self.embedders)

    def _mode(self, mode: str | None) -> Mode:
        chosen = mode or self.settings.mode
        if chosen not in MODES:
            raise InvalidQueryError(f"unknown mode {chosen!r}; choose one of {', '.join(MODES)}")
        return chosen

    def _top_k(self, top_k: int | None) -> int:
        k = self.settings.top_k if top_k is None else top_k
        if not 1 <= k <= 20:
            raise InvalidQueryError(f"top_k must be between 1 and 20 (got {k})")
        return k

    def search(self, query: str, top_k: int | None = None, mode: str | None = None) -> list[Passage]:
        """The best passages for ``query``."""
        text, chosen = clean_question(query), self._mode(mode)
        analysis = self.retriever.analyse(text, chosen)
        return self.retriever.search(analysis, chosen, self._top_k(top_k))

    def ask(self, question: str, top_k: int | None = None, mode: str | None = None) -> Answer:
        """An extractive, cited answer (or an abstention) for ``question``."""
        return self.ask_with_passages(question, top_k, mode)[0]

    def ask_with_passages(
        self, question: str, top_k: int | None = None, mode: str | None = None
    ) -> tuple[Answer, list[Passage]]:
        """The answer and the ranked passages it was drawn from (the query is encoded once)."""
        started = time.perf_counter()
        text, chosen = clean_question(question), self._mode(mode)
        k = self._top_k(top_k)
        analysis = self.retriever.analyse(text, chosen)
        depth = max(k, self.settings.answer_candidate_passages)
        passages = self.retriever.search(analysis, chosen, depth)
        answer = self.answerer.answer(text, analysis, passages[: self.settings.answer_candidate_passages], chosen)
        answer.timings_ms["total"] = (time.perf_counter() - started) * 1000
        return answer, passages[:k]

    def document(self, doc_id: str) -> Document:
        """The document with ``doc_id`` (its text is what citation offsets refer to)."""
        doc = self.index.documents.get(doc_id)
        if doc is None:
            raise DocumentNotFoundError(f"no document {doc_id!r} in the index")
        return doc
