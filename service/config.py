"""The one configuration object, read from ``TANYA_*`` environment variables (and ``.env``).

Build it once at an entry point (a CLI command, ``create_app``) with :func:`load_settings`
and pass down only the frozen groups it exposes: ``index`` (building), ``retrieval``,
``answer``, ``engine`` (the two together, for loading), and ``http`` (serving). Nothing else
in the code base reads the environment.

The fields stay flat on purpose: their names are the documented ``TANYA_*`` variables that
deployments set (``TANYA_ABSTAIN_THRESHOLD``, not ``TANYA_ANSWER__ABSTAIN_THRESHOLD``), and
flat fields let pydantic-settings read and validate them with no custom source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from indexer.chunks import ChunkerConfig
from indexer.errors import ConfigError
from indexer.pipeline import IndexConfig
from indexer.store import DenseIndexConfig
from service.qa.answering import AnswerConfig, RerankerConfig
from service.qa.engine import EngineConfig, RetrievalConfig
from service.qa.fusion import FusionConfig, FusionMethod
from service.qa.types import TOP_K_MAX, TOP_K_MIN, Mode


def _split_list(value: object) -> object:
    """Accept ``a,b`` as well as a JSON list for list-valued environment variables."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


@dataclass(frozen=True)
class HttpConfig:
    """How the HTTP service runs (from ``Settings.http``)."""

    host: str = "127.0.0.1"
    port: int = 8000
    log_questions: bool = False
    api_keys: tuple[str, ...] = ()
    rate_limit_per_minute: int = 0
    auth_failures_per_minute: int = 10
    cors_origins: tuple[str, ...] = ()
    request_timeout_s: float = 10.0
    max_concurrency: int = 16
    max_body_bytes: int = 16 * 1024
    reload_poll_s: float = 2.0
    shutdown_grace_s: float = 10.0
    keep_alive_s: int = 5
    request_read_timeout_s: float = 10.0
    max_connections: int = 200
    forwarded_allow_ips: tuple[str, ...] = ()


class Settings(BaseSettings):
    """Every tunable of indexing, retrieval, answering and serving."""

    model_config = SettingsConfigDict(env_prefix="TANYA_", env_file=".env", extra="ignore")

    # --- index: where things live, documents, chunking (tuned with the eval; see eval/README.md)
    index_dir: Path = Path("var/index")
    corpus_paths: Annotated[list[Path], NoDecode] = [Path("corpus")]
    tiktoken_cache_dir: Path | None = Field(
        default=None, description="Where the cl100k_base file is seeded; default ~/.cache/tanya/tiktoken"
    )
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    # Off by default: a link inside the corpus folder must not publish a file from elsewhere.
    follow_symlinks: bool = Field(
        default=False, description="Index files that links in a corpus folder point to outside it"
    )
    chunk_max_tokens: int = Field(default=256, ge=16, le=2048)
    chunk_overlap_sentences: int = Field(default=1, ge=0, le=5)
    embedders: Annotated[list[str], NoDecode] = ["e5-small", "use-m3"]
    embed_batch_size: int = Field(default=32, ge=1)
    pq_min_chunks: int = Field(
        default=50_000,
        ge=0,
        description="Chunks from which FAISS scans 4-bit PQ codes (the best rescored exactly) instead of every "
        "float32 vector; 0 = never",
    )
    ann_min_chunks: int = Field(
        default=200_000,
        ge=0,
        description="Chunks from which FAISS uses an approximate index (ann_index) instead of a full scan; 0 = never",
    )
    ann_index: Literal["ivf", "hnsw"] = Field(
        default="ivf",
        description="The approximate index: ivf = inverted lists over 4-bit PQ codes, a quarter of them probed; "
        "hnsw = a graph over 8-bit (hnsw_storage) codes",
    )
    hnsw_storage: Literal["sq8", "flat"] = Field(
        default="sq8",
        description="What HNSW keeps of each vector: sq8 = 8-bit codes, its pool rescored from int8 vectors "
        "stored beside it (a quarter of the memory); flat = float32",
    )
    delta_min_chunks: int = Field(
        default=2_000,
        ge=0,
        description="Index size (chunks) from which a small change is written as a delta build on top of the last complete one",
    )
    max_delta_share: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="Largest delta (its chunks plus the base's deleted ones, as a share of the base) before a complete build",
    )
    index_text_budget_chars: int = Field(
        default=64_000_000,
        ge=0,
        description="Document text an indexing run keeps in memory between reading files and writing them; "
        "files past it are read again when their turn comes (memory stays bounded on any corpus)",
    )

    # --- retrieval
    mode: Mode = "hybrid"
    fusion: FusionMethod = "rrf"
    rrf_k: int = Field(default=60, ge=1)
    # Weight of each signal in the fusion, by signal name ("bm25" or an embedder id); default 1.0.
    fusion_weights: dict[str, float] = {}
    top_k: int = Field(default=5, ge=TOP_K_MIN, le=TOP_K_MAX)
    search_threads: int = Field(default=1, ge=1, description="FAISS threads per search (1 is fastest on few cores)")
    query_encoder_threads: int = Field(
        default=1,
        ge=0,
        description="Threads each encoder uses per question when answering (0: every core); requests run side by side",
    )
    query_cache_size: int = Field(
        default=1024, ge=0, description="Distinct questions whose query vectors are kept in memory (0: no cache)"
    )
    # 16, with max_concurrency 16: under 32 clients 6-13 % more questions a second than one at a time
    # (make bench-qps, alternating runs, README "Speed"); a lone question is still encoded alone, at once.
    query_batch: int = Field(
        default=16,
        ge=1,
        le=64,
        description="Questions waiting for an encoder at once encoded in one pass (1: each alone)",
    )
    query_batch_lanes: int = Field(default=2, ge=1, description="Batches each encoder runs at once (query_batch > 1)")

    # --- answer
    answer_max_sentences: int = Field(default=3, ge=1, le=5)
    answer_candidate_passages: int = Field(default=5, ge=1, le=TOP_K_MAX)
    abstain_threshold: float = Field(default=0.20, ge=0.0, le=1.0, description="Minimum support (dense, hybrid)")
    # Lexical mode scores support by word overlap alone, on another scale (eval/README.md).
    abstain_threshold_lexical: float = Field(default=0.10, ge=0.0, le=1.0)
    # The trained answer reranker (service/qa/reranker; eval/README.md has the measurements). It
    # beats the support path on the gold set too (answer hit 0.779 against 0.691, citation precision
    # 0.778 against 0.633, same abstention), but stays off by default: the page's own example
    # question ("Who selects Tokutei Ginou workers?") is led by a restatement and loses its BP2MI
    # card with it, and it costs about 7x the time (243 against 32 ms p50 on the gold set, fp32)
    # (eval/README.md, "A fourth stage on cross-lingual train questions").
    reranker: Literal["on", "off"] = Field(default="off", description="on: the trained answer reader picks answers")
    reranker_candidates: int = Field(
        default=64, ge=1, le=512, description="Most sentences the reader reads (the candidate passages' in order)"
    )
    reranker_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Calibrated P(answerable) to answer, any language; default: shipped per language with the model",
    )
    reranker_threads: int = Field(default=2, ge=1, le=64, description="torch threads for the reranker")
    reranker_model_dir: Path | None = Field(
        default=None,
        description="Folder of another trained reader (python -m training reranker --out); default: shipped",
    )
    reranker_precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        default="auto", description="The reader's arithmetic: auto = bf16 where the CPU has it natively, else fp32"
    )
    reranker_type_gates: bool = Field(default=False, description="Keep the answer-type gates with the reranker")
    reranker_abstain: Literal["support", "reranker", "either"] = Field(
        default="support", description="What decides abstention with the reranker on (eval/README.md)"
    )
    # Two-step reading (service.qa.answering.Cascade): the reader's cost grows with the tokens it
    # reads, and most answers are in the first two passages (eval/README.md, "Reading in two steps").
    reranker_first_passages: int = Field(
        default=2, ge=0, le=TOP_K_MAX, description="Passages the reader reads first; the rest only if none is confident (0: all at once)"
    )
    reranker_confident: float = Field(
        default=0.3, ge=0.0, le=1.0, description="Calibrated P(answer) of a first-step sentence that stops the reading"
    )

    # --- http
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_questions: bool = Field(default=False, description="Log question text (off: questions are private)")
    api_keys: Annotated[list[str], NoDecode] = Field(default=[], description="When set, /v1/* needs one of these")
    rate_limit_per_minute: int = Field(default=0, ge=0, description="Requests per client per minute; 0 = off")
    auth_failures_per_minute: int = Field(
        default=10, ge=0, description="Wrong or missing API keys per client address per minute before 429; 0 = off"
    )
    cors_origins: Annotated[list[str], NoDecode] = []
    request_timeout_s: float = Field(default=10.0, gt=0)
    # As many as query_batch, so that concurrent questions can meet in one encoder pass (2 before batching).
    max_concurrency: int = Field(default=16, ge=1, description="Questions encoded/searched at once")
    max_body_bytes: int = Field(default=16 * 1024, ge=256)
    reload_poll_s: float = Field(default=2.0, ge=0, description="How often to look for a new index; 0 = never")
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    keep_alive_s: int = Field(default=5, ge=1, description="Idle seconds a connection is kept open between requests")
    request_read_timeout_s: float = Field(
        default=10.0, gt=0, description="Seconds a client has to send a whole request (head and body)"
    )
    max_connections: int = Field(
        default=200, ge=0, description="Connections served at once, beyond which 503; 0 = no cap"
    )
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default=[], description="Reverse proxies whose X-Forwarded-For is trusted for the client address"
    )

    @field_validator("corpus_paths", "embedders", "api_keys", "cors_origins", "forwarded_allow_ips", mode="before")
    @classmethod
    def _lists_from_env(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("embedders")
    @classmethod
    def _at_least_one_embedder(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one embedder is required (for example e5-small)")
        if len(set(value)) != len(value):
            raise ValueError("embedders must not repeat")
        return value

    # --- the frozen groups handed to the rest of the code --------------------------------
    @property
    def chunker(self) -> ChunkerConfig:
        """Chunker parameters (recorded in the index manifest)."""
        return ChunkerConfig(max_tokens=self.chunk_max_tokens, overlap_sentences=self.chunk_overlap_sentences)

    @property
    def index(self) -> IndexConfig:
        """What ``build_index`` needs."""
        return IndexConfig(
            index_dir=self.index_dir,
            chunker=self.chunker,
            max_file_bytes=self.max_file_bytes,
            follow_symlinks=self.follow_symlinks,
            batch_size=self.embed_batch_size,
            tiktoken_cache_dir=self.tiktoken_cache_dir,
            dense_index=DenseIndexConfig(
                pq_min_chunks=self.pq_min_chunks,
                ann_min_chunks=self.ann_min_chunks,
                ann_index=self.ann_index,
                hnsw_storage=self.hnsw_storage,
            ),
            delta_min_chunks=self.delta_min_chunks,
            max_delta_share=self.max_delta_share,
            text_budget_chars=self.index_text_budget_chars,
        )

    @property
    def retrieval(self) -> RetrievalConfig:
        """Retrieval defaults and fusion."""
        fusion = FusionConfig(method=self.fusion, rrf_k=self.rrf_k, weights=dict(self.fusion_weights))
        return RetrievalConfig(
            mode=self.mode,
            top_k=self.top_k,
            fusion=fusion,
            search_threads=self.search_threads,
            query_cache_size=self.query_cache_size,
            query_batch=self.query_batch,
            query_batch_lanes=self.query_batch_lanes,
        )

    @property
    def answer(self) -> AnswerConfig:
        """How answers are built and when Tanya abstains."""
        return AnswerConfig(
            max_sentences=self.answer_max_sentences,
            candidate_passages=self.answer_candidate_passages,
            abstain_threshold=self.abstain_threshold,
            abstain_threshold_lexical=self.abstain_threshold_lexical,
            reranker=RerankerConfig(
                enabled=self.reranker == "on",
                candidates=self.reranker_candidates,
                threshold=self.reranker_threshold,
                threads=self.reranker_threads,
                model_dir=self.reranker_model_dir,
                precision=self.reranker_precision,
                type_gates=self.reranker_type_gates,
                abstain=self.reranker_abstain,
                first_passages=self.reranker_first_passages,
                confident=self.reranker_confident,
            ),
        )

    @property
    def engine(self) -> EngineConfig:
        """What loading and answering need."""
        return EngineConfig(
            index_dir=self.index_dir,
            embedders=tuple(self.embedders),
            chunker=self.chunker,
            retrieval=self.retrieval,
            answer=self.answer,
            encoder_threads=self.query_encoder_threads or None,
        )

    @property
    def http(self) -> HttpConfig:
        """How the HTTP service runs."""
        return HttpConfig(
            host=self.host,
            port=self.port,
            log_questions=self.log_questions,
            api_keys=tuple(self.api_keys),
            rate_limit_per_minute=self.rate_limit_per_minute,
            auth_failures_per_minute=self.auth_failures_per_minute,
            cors_origins=tuple(self.cors_origins),
            request_timeout_s=self.request_timeout_s,
            max_concurrency=self.max_concurrency,
            max_body_bytes=self.max_body_bytes,
            reload_poll_s=self.reload_poll_s,
            shutdown_grace_s=self.shutdown_grace_s,
            keep_alive_s=self.keep_alive_s,
            request_read_timeout_s=self.request_read_timeout_s,
            max_connections=self.max_connections,
            forwarded_allow_ips=tuple(self.forwarded_allow_ips),
        )


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with ``overrides`` (``None`` values ignored) applied.

    An invalid variable is a :class:`ConfigError` naming it, not a validation traceback.
    """
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting TANYA_{where.upper()}: {first['msg']}") from exc
    update = {key: value for key, value in overrides.items() if value is not None}
    return settings.model_copy(update=update) if update else settings
