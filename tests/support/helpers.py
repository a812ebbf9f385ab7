"""Constants and helpers shared by the test rooms (``from tests.support.helpers import ...``)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from indexer.chunks import ChunkerConfig
from indexer.documents import Document
from indexer.language import Lang
from indexer.pipeline import IndexReport, build_index
from indexer.tokens import TokenCounter
from service.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIR = REPO_ROOT / "corpus"
CORPUS_FILES = sorted(
    p for p in CORPUS_DIR.iterdir() if p.is_file() and not p.name.endswith(".meta.json") and not p.name.startswith(".")
)
CORPUS_IDS = [p.name for p in CORPUS_FILES]

METI = "meti-japan-internship-program"
TOKUTEI = "tokutei-ginou-bilateral-cooperation"
KEMNAKER = "kemnaker-im-japan-magang-2024"


class ExplicitSettings(Settings):
    """Settings that read neither ``TANYA_*`` variables nor ``.env``: only what the test passes."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_sources):  # type: ignore[no-untyped-def, override]
        return (init_settings,)


def make_settings(index_dir: Path, **overrides: object) -> Settings:
    """Settings from explicit values only (fake embedder unless overridden)."""
    # The reranker is off unless a test asks for it: the fake encoders go with the support-only path.
    values: dict[str, object] = {"index_dir": index_dir, "embedders": ["fake"], "reranker": "off"}
    values.update(overrides)
    return ExplicitSettings(**values)  # type: ignore[arg-type]


def run_build(
    paths: Sequence[Path],
    settings: Settings,
    embedders: Sequence[object],
    counter: TokenCounter | None = None,
    chunker: ChunkerConfig | None = None,
) -> IndexReport:
    """``build_index`` with the values taken from ``settings``."""
    config = settings.index if chunker is None else replace(settings.index, chunker=chunker)
    return build_index(list(paths), config, embedders, counter)  # type: ignore[arg-type]


def doc_from_text(text: str, lang: Lang = "en", doc_id: str = "synthetic", fmt: str = "txt") -> Document:
    """An in-memory document (for chunker tests)."""
    return Document(
        doc_id=doc_id,
        source=f"{doc_id}.{fmt}",
        title=doc_id,
        lang=lang,
        text=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        format=fmt,
    )
