"""The one configuration object, read from ``TANYA_*`` environment variables (and ``.env``).

Build it once at an entry point (CLI command, ``create_app``) and pass it down; nothing
else in the code base reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")


def _split_list(value: object) -> object:
    """Accept ``a,b`` as well as a JSON list for list-valued environment variables."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every tunable of indexing, retrieval, answering and serving."""

    model_config = SettingsConfigDict(env_prefix="TANYA_", env_file=".env", extra="ignore")

    # --- where things live
    index_dir: Path = Path("var/index")
    corpus_paths: Annotated[list[Path], NoDecode] = [Path("corpus")]
    tiktoken_cache_dir: Path | None = Field(
        default=None, description="Where the cl100k_base file is seeded; default ~/.cache/tanya/tiktoken"
    )

    # --- documents
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1)

    # --- chunking (tuned with the eval; see eval/README.md)
    chunk_max_tokens: int = Field(default=256, ge=16, le=2048)
    chunk_overlap_sentences: int = Field(default=1, ge=0, le=5)

    # --- embedding and retrieval
    embedders: Annotated[list[str], NoDecode] = ["e5-small", "use-m3"]
    mode: Mode = "hybrid"
    fusion: Literal["rrf", "score"] = "rrf"
    rrf_k: int = Field(default=60, ge=1)
    # Weight of each signal in the fusion, by signal name ("bm25" or an embedder id); default 1.0.
    fusion_weights: dict[str, float] = {}
    top_k: int = Field(default=5, ge=1, le=20)
    embed_batch_size: int = Field(default=32, ge=1)

    # --- answering
    answer_max_sentences: int = Field(default=3, ge=1, le=5)
    answer_candidate_passages: int = Field(default=5, ge=1, le=20)
    abstain_threshold: float = Field(default=0.20, ge=0.0, le=1.0, description="Minimum support (dense, hybrid)")
    # Lexical mode scores support by word overlap alone, on another scale (eval/README.md).
    abstain_threshold_lexical: float = Field(default=0.10, ge=0.0, le=1.0)

    def threshold_for(self, mode: str) -> float:
        """The abstention threshold calibrated for ``mode``."""
        return self.abstain_threshold_lexical if mode == "lexical" else self.abstain_threshold

    # --- service (used by the HTTP app)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_questions: bool = Field(default=False, description="Log question text (off: questions are private)")
    api_keys: Annotated[list[str], NoDecode] = Field(default=[], description="When set, /v1/* needs one of these")
    rate_limit_per_minute: int = Field(default=0, ge=0, description="Requests per client per minute; 0 = off")
    cors_origins: Annotated[list[str], NoDecode] = []
    request_timeout_s: float = Field(default=10.0, gt=0)
    max_concurrency: int = Field(default=2, ge=1, description="Questions encoded/searched at once")
    max_body_bytes: int = Field(default=16 * 1024, ge=256)
    reload_poll_s: float = Field(default=2.0, ge=0, description="How often to look for a new index; 0 = never")
    shutdown_grace_s: float = Field(default=10.0, ge=0)

    @field_validator("corpus_paths", "embedders", "api_keys", "cors_origins", mode="before")
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
