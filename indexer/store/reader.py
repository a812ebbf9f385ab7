"""Load an index build into memory, refusing one this Tanya cannot use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from indexer.chunks import Chunk, ChunkerConfig, Sentence
from indexer.documents import Document
from indexer.errors import IndexCorruptError
from indexer.lexical import LexicalIndex
from indexer.store.format import EmbedderInfo, IndexData, check_compatible, flat_vectors, read_manifest, vector_stem


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _check_offsets(index_dir: Path, documents: dict[str, Document], spans: list[Chunk | Sentence]) -> None:
    """Refuse a build whose chunks or sentences point outside their documents.

    Every citation is ``document_text[start:end]``; an offset past the end (a hand-edited or
    half-written file) would serve a truncated or empty "quotation", so the build is refused.
    """
    for span in spans:
        document = documents.get(span.doc_id)
        kind = type(span).__name__.lower()
        if document is None:
            raise IndexCorruptError(f"index at {index_dir}: a {kind} of {span.doc_id!r} names no document")
        if not 0 <= span.start <= span.end <= len(document.text):
            raise IndexCorruptError(
                f"index at {index_dir}: {kind} {span.ordinal} of {span.doc_id!r} spans {span.start}-{span.end}, "
                f"outside its document ({len(document.text)} characters)"
            )


def load_index(
    index_dir: Path, embedders: list[EmbedderInfo] | None = None, chunker: ChunkerConfig | None = None
) -> IndexData:
    """Load the current build; with ``embedders``/``chunker`` given, refuse a mismatching index."""
    # Resolve the link once, so that a swap during loading cannot mix two builds.
    root = index_dir.resolve()
    manifest = read_manifest(root)
    if embedders is not None and chunker is not None:
        check_compatible(manifest, embedders, chunker, index_dir)
    try:
        import faiss

        documents = {d["doc_id"]: Document.from_record(d) for d in _read_jsonl(root / "documents.jsonl")}
        chunks = [Chunk(**c) for c in _read_jsonl(root / "chunks.jsonl")]
        sentences = [Sentence(**s) for s in _read_jsonl(root / "sentences.jsonl")]
        infos = [EmbedderInfo(**e) for e in manifest["embedders"]]
        chunk_vectors: dict[str, np.ndarray] = {}
        sentence_vectors: dict[str, np.ndarray] = {}
        faiss_indexes: dict[str, Any] = {}
        for info in infos:
            index: Any = faiss.read_index(str(root / "dense" / f"{vector_stem(info.id)}.faiss"))
            faiss_indexes[info.id] = index
            # A view of the vectors FAISS already holds (flat or HNSW storage), not a second copy.
            chunk_vectors[info.id] = flat_vectors(index)
            # Memory-mapped: a query reads only its candidate pool's rows (float16 in new builds).
            sentence_vectors[info.id] = np.load(
                root / "dense" / f"{vector_stem(info.id)}.sentences.npy", mmap_mode="r"
            )
        lexical = LexicalIndex.load(root / "bm25")
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexCorruptError(f"index at {index_dir} is incomplete or damaged: {exc}") from exc
    for info in infos:
        if len(chunk_vectors[info.id]) != len(chunks) or len(sentence_vectors[info.id]) != len(sentences):
            raise IndexCorruptError(f"index at {index_dir}: {info.id} vectors do not match the chunk records")
    _check_offsets(index_dir, documents, [*chunks, *sentences])
    data = IndexData(
        documents=documents,
        chunks=chunks,
        sentences=sentences,
        embedders=infos,
        chunker=ChunkerConfig(**manifest["chunker"]),
        chunk_vectors=chunk_vectors,
        sentence_vectors=sentence_vectors,
        lexical=lexical,
        manifest=manifest,
        path=root,
    )
    for embedder_id, index in faiss_indexes.items():
        data.adopt_faiss(embedder_id, index)  # keeps the memory the chunk vectors view alive
    return data
