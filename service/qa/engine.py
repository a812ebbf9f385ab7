"""The question-answering library's front door, shared by the CLI, the HTTP service and the eval harness.

An :class:`Engine` owns the loaded encoders and one loaded index. It is built once per
process (CLI command, app lifespan) from a frozen :class:`EngineConfig` and passed to
whoever needs it. One question is checked and analysed once (``service.qa.query``), then
retrieved (``retrieval``) and answered (``answering``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from indexer.chunks import ChunkerConfig
from indexer.documents import Document
from indexer.embedders import Embedder, load_embedders
from indexer.errors import DocumentNotFoundError
from indexer.lexical import Analyzer
from indexer.store import IndexData, embedder_infos, load_index
from service.qa.answering import AnswerConfig, Answerer, PassageReader, RerankerConfig
from service.qa.fusion import FusionConfig
from service.qa.query import Query, QueryAnalyser, check_mode, check_top_k, clean_question
from service.qa.retrieval import Retriever
from service.qa.types import Answer, Mode, Passage


@dataclass(frozen=True)
class RetrievalConfig:
    """Retrieval defaults (from ``Settings.retrieval``)."""

    mode: Mode = "hybrid"
    top_k: int = 5
    fusion: FusionConfig = field(default_factory=FusionConfig)
    #: FAISS threads per search. 1: splitting one query's search over 2 cores cost more than it
    #: saved (12 ms against 3.5 ms per query at 10^4 chunks, bench/scale.py), and requests
    #: already run side by side. It is FAISS's process-wide setting, applied when an engine loads.
    search_threads: int = 1
    #: Distinct questions whose query vectors are kept (0: none); see ``QueryVectorCache``.
    query_cache_size: int = 1024
    #: Questions encoded in one pass when several wait for an encoder (1: each alone); see ``QueryBatcher``.
    query_batch: int = 16
    #: Batches each encoder runs at once (with ``query_batch`` above 1).
    query_batch_lanes: int = 2


def set_search_threads(threads: int) -> None:
    """FAISS's OpenMP threads (its own runtime: the E5 encoder's threads are not affected)."""
    import faiss

    faiss.omp_set_num_threads(threads)


@dataclass(frozen=True)
class EngineConfig:
    """Everything an engine needs to load and answer (from ``Settings.engine``)."""

    index_dir: Path
    embedders: tuple[str, ...]
    chunker: ChunkerConfig = field(default_factory=ChunkerConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    answer: AnswerConfig = field(default_factory=AnswerConfig)
    #: Threads each query encoder uses per call (``None``: the backend's default, every core).
    encoder_threads: int | None = 1


def load_reranker(config: RerankerConfig) -> PassageReader | None:
    """The shipped answer reader when ``config.enabled`` (a few seconds: dequantising e5), else ``None``."""
    if not config.enabled:
        return None
    from service.qa.reranker.reader import AnswerReader

    return AnswerReader.load(config.model_dir, num_threads=config.threads, precision=config.precision)


@dataclass
class Engine:
    """Encoders + index + analyser + retriever + answerer, ready to answer."""

    config: EngineConfig
    embedders: list[Embedder]
    index: IndexData
    analyser: QueryAnalyser
    retriever: Retriever
    answerer: Answerer
    loaded_at: float

    @classmethod
    def load(
        cls,
        config: EngineConfig,
        embedders: list[Embedder] | None = None,
        index_dir: Path | None = None,
        reranker: PassageReader | None = None,
    ) -> Engine:
        """Load the encoders and reranker (unless given) and the index, refusing a mismatching index."""
        live = embedders if embedders is not None else load_embedders(config.embedders, config.encoder_threads)
        index = load_index(index_dir or config.index_dir, embedder_infos(live), config.chunker)
        if reranker is None:
            reranker = load_reranker(config.answer.reranker)
        return cls.over(config, live, index, reranker)

    @classmethod
    def over(
        cls, config: EngineConfig, embedders: list[Embedder], index: IndexData, reranker: PassageReader | None = None
    ) -> Engine:
        """Wire an engine over an already loaded index (the reranker is used only when enabled)."""
        analyzer = Analyzer()
        set_search_threads(config.retrieval.search_threads)
        if not config.answer.reranker.enabled:
            reranker = None
        return cls(
            config=config,
            embedders=embedders,
            index=index,
            analyser=QueryAnalyser(
                analyzer,
                embedders,
                config.retrieval.query_cache_size,
                batch=config.retrieval.query_batch,
                lanes=config.retrieval.query_batch_lanes,
            ),
            retriever=Retriever(index, embedders, config.retrieval.fusion),
            answerer=Answerer(index, analyzer, embedders, config.answer, reranker),
            loaded_at=time.time(),
        )

    def warm_up(self) -> None:
        """Run one query through every encoder so the first user does not pay for lazy loading."""
        query = self.analyser.analyse("warm up", "hybrid")
        self.answerer.answer(query, self.retriever.search(query, 1))

    def _prepare(self, question: str, top_k: int | None, mode: str | None) -> tuple[Query, int]:
        """Check every argument (question, then mode, then ``top_k``) before any encoding, then analyse once."""
        text = clean_question(question)
        chosen = check_mode(mode or self.config.retrieval.mode)
        k = check_top_k(self.config.retrieval.top_k if top_k is None else top_k)
        return self.analyser.analyse(text, chosen), k

    def search(self, query: str, top_k: int | None = None, mode: str | None = None) -> list[Passage]:
        """The best passages for ``query``."""
        analysed, k = self._prepare(query, top_k, mode)
        return self.retriever.search(analysed, k)

    def ask(self, question: str, top_k: int | None = None, mode: str | None = None) -> Answer:
        """An extractive, cited answer (or an abstention) for ``question``."""
        return self.ask_with_passages(question, top_k, mode)[0]

    def ask_with_passages(
        self, question: str, top_k: int | None = None, mode: str | None = None
    ) -> tuple[Answer, list[Passage]]:
        """The answer and the ranked passages it was drawn from (the query is encoded once)."""
        started = time.perf_counter()
        query, k = self._prepare(question, top_k, mode)
        candidates = self.config.answer.candidate_passages
        retrieving = time.perf_counter()
        passages = self.retriever.search(query, max(k, candidates))
        answering = time.perf_counter()
        answer = self.answerer.answer(query, passages[:candidates])
        done = time.perf_counter()
        timings: dict[str, float] = {}
        if query.embed_ms is not None:
            timings["embed"] = query.embed_ms
        timings["retrieve"] = (answering - retrieving) * 1000
        timings.update({f"encoder:{name}": ms for name, ms in query.encoder_ms.items()})
        rerank = answer.timings_ms.get("rerank")
        if rerank is not None:
            timings["rerank"] = rerank
        # "answer" is the rest of answering: shortlisting, selection, citations.
        timings["answer"] = (done - answering) * 1000 - (rerank or 0.0)
        timings["total"] = (done - started) * 1000
        return answer.model_copy(update={"timings_ms": timings}), passages[:k]

    def document(self, doc_id: str) -> Document:
        """The document with ``doc_id`` (its text is what citation offsets refer to)."""
        doc = self.index.documents.get(doc_id)
        if doc is None:
            raise DocumentNotFoundError(f"no document {doc_id!r} in the index")
        return doc
