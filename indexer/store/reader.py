"""Load an index build into memory, refusing one this Tanya cannot use."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.chunks import Chunk, ChunkerConfig, Sentence
from indexer.documents import Document
from indexer.errors import IndexCorruptError
from indexer.lexical import LexicalIndex, SegmentedLexical
from indexer.store.format import (
    CHUNK_SCALES,
    CHUNK_VECTORS,
    SENTENCE_SCALES,
    SENTENCE_VECTORS,
    EmbedderInfo,
    IndexData,
    QuantizedRows,
    RowMatrix,
    StackedRows,
    base_dir,
    check_compatible,
    flat_vectors,
    read_manifest,
    vector_stem,
)
from indexer.store.records import (
    RECORDS_FILE,
    ChunkTable,
    DocumentTable,
    DocumentUnion,
    RecordFile,
    SentenceTable,
    StackedSequence,
    column,
    offset_problem,
)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _check_offsets(index_dir: Path, documents: Mapping[str, Document], spans: list[Chunk | Sentence]) -> None:
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


@dataclass
class _Segment:
    """The records and vectors one build folder holds itself (a delta build's own part)."""

    documents: Mapping[str, Document]
    chunks: Sequence[Chunk]
    sentences: Sequence[Sentence]
    faiss: dict[str, Any]
    #: Float32 views of a flat FAISS index's storage, or the rows stored beside a quantised index (int8 or float16).
    chunk_vectors: dict[str, np.ndarray | QuantizedRows]
    sentence_vectors: dict[str, np.ndarray | QuantizedRows]
    lexical: LexicalIndex


def _read_records(root: Path, where: Path) -> tuple[Mapping[str, Document], Sequence[Chunk], Sequence[Sentence]]:
    """A build's records: from ``records.sqlite``, read on demand; or, in a format-1 build, parsed from JSON lines."""
    if (root / RECORDS_FILE).exists():
        try:
            records = RecordFile(root / RECORDS_FILE)
            problem = offset_problem(records)
            tables = DocumentTable(records), ChunkTable(records), SentenceTable(records)
        except sqlite3.Error as exc:
            raise IndexCorruptError(f"index at {where}: cannot read {RECORDS_FILE}: {exc}") from exc
        if problem is not None:
            raise IndexCorruptError(f"index at {where}: {problem}")
        return tables
    documents = {d["doc_id"]: Document.from_record(d) for d in _read_jsonl(root / "documents.jsonl")}
    chunks = [Chunk(**c) for c in _read_jsonl(root / "chunks.jsonl")]
    sentences = [Sentence(**s) for s in _read_jsonl(root / "sentences.jsonl")]
    _check_offsets(where, documents, [*chunks, *sentences])
    return documents, chunks, sentences


def _without(documents: Mapping[str, Document], deleted: set[str]) -> Mapping[str, Document]:
    if isinstance(documents, DocumentTable):
        return DocumentTable(documents.records, deleted)
    return {k: v for k, v in documents.items() if k not in deleted}


def _stored_rows(vectors: Path, scales: Path) -> np.ndarray | QuantizedRows:
    """Stored vectors, memory-mapped (a query reads only the rows it scores).

    int8 codes with their scales (sentences from format 3, chunks beside a quantised index from format 4),
    or float16 / float32 rows before: told by the file itself, so a delta written now stacks on a base
    written before.
    """
    rows = np.load(vectors, mmap_mode="r")
    if rows.dtype != np.int8:
        return rows
    return QuantizedRows(rows, np.load(scales, mmap_mode="r"))


def _read_segment(root: Path, infos: list[EmbedderInfo], where: Path) -> _Segment:
    try:
        import faiss

        documents, chunks, sentences = _read_records(root, where)
        faiss_indexes: dict[str, Any] = {}
        chunk_vectors: dict[str, np.ndarray | QuantizedRows] = {}
        sentence_vectors: dict[str, np.ndarray | QuantizedRows] = {}
        for info in infos:
            faiss_indexes[info.id] = faiss.read_index(str(root / "dense" / f"{vector_stem(info.id)}.faiss"))
            dense, stem = root / "dense", vector_stem(info.id)
            separate = dense / f"{stem}.{CHUNK_VECTORS}"
            chunk_vectors[info.id] = (
                _stored_rows(separate, dense / f"{stem}.{CHUNK_SCALES}")
                if separate.exists()
                else flat_vectors(faiss_indexes[info.id])
            )
            sentence_vectors[info.id] = _stored_rows(dense / f"{stem}.{SENTENCE_VECTORS}", dense / f"{stem}.{SENTENCE_SCALES}")
        lexical = LexicalIndex.load(root / "bm25")
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexCorruptError(f"index at {where} is incomplete or damaged: {exc}") from exc
    for info in infos:
        if (
            faiss_indexes[info.id].ntotal != len(chunks) or len(chunk_vectors[info.id]) != len(chunks)
            or len(sentence_vectors[info.id]) != len(sentences)
        ):
            raise IndexCorruptError(f"index at {where}: {info.id} vectors do not match the chunk records")
    return _Segment(documents, chunks, sentences, faiss_indexes, chunk_vectors, sentence_vectors, lexical)


def _encoders_and_chunker(manifest: dict[str, Any], index_dir: Path) -> tuple[list[EmbedderInfo], ChunkerConfig]:
    """The manifest's encoder entries and chunker; :class:`IndexCorruptError` if they are malformed."""
    try:
        return [EmbedderInfo(**e) for e in manifest["embedders"]], ChunkerConfig(**manifest["chunker"])
    except (KeyError, TypeError) as exc:
        raise IndexCorruptError(f"index at {index_dir} is incomplete or damaged: {exc}") from exc


def load_index(
    index_dir: Path, embedders: list[EmbedderInfo] | None = None, chunker: ChunkerConfig | None = None
) -> IndexData:
    """Load the current build; with ``embedders``/``chunker`` given, refuse a mismatching index.

    A delta build is stacked on its base: base rows first, the rows of base documents it deleted
    or replaced masked out (``IndexData.live``).
    """
    # Resolve the link once, so that a swap during loading cannot mix two builds.
    root = index_dir.resolve()
    manifest = read_manifest(root)
    if embedders is not None and chunker is not None:
        check_compatible(manifest, embedders, chunker, index_dir)
    infos, chunker_config = _encoders_and_chunker(manifest, index_dir)
    own = _read_segment(root, infos, index_dir)
    base_root = base_dir(root, manifest)
    live: np.ndarray | None = None
    sentence_live: np.ndarray | None = None
    if base_root is None:
        documents, chunks, sentences = own.documents, own.chunks, own.sentences
        faiss_indexes = own.faiss
        chunk_vectors: dict[str, RowMatrix] = dict(own.chunk_vectors)
        lexical: LexicalIndex | SegmentedLexical = own.lexical
        sentence_vectors: dict[str, RowMatrix] = dict(own.sentence_vectors)
    else:
        base = _read_segment(base_root, infos, index_dir)
        deleted = set(manifest["base"].get("deleted", []))
        documents = DocumentUnion(_without(base.documents, deleted), own.documents)
        chunks = StackedSequence([base.chunks, own.chunks])
        sentences = StackedSequence([base.sentences, own.sentences])
        live = np.array([d not in deleted for d in column(base.chunks, "doc_id")] + [True] * len(own.chunks), dtype=bool)
        sentence_live = np.array(
            [d not in deleted for d in column(base.sentences, "doc_id")] + [True] * len(own.sentences), dtype=bool
        )
        if live.all() and sentence_live.all():  # nothing masked: search without a filter
            live = sentence_live = None
        faiss_indexes = {}
        chunk_vectors = {}
        for info in infos:
            # The delta's few vectors join the base's FAISS index in memory (an HNSW insert or a flat append).
            index = base.faiss[info.id]
            if own.faiss[info.id].ntotal:
                index.add(np.ascontiguousarray(own.chunk_vectors[info.id]))
            faiss_indexes[info.id] = index
            # Rows stored beside an index of quantised codes are stacked with the delta's; otherwise the base
            # index's own storage holds both parts now (viewed after the add: adding may have moved it).
            stored = base.chunk_vectors[info.id]
            chunk_vectors[info.id] = (
                StackedRows([stored, own.chunk_vectors[info.id]]) if isinstance(stored, (np.memmap, QuantizedRows))
                else flat_vectors(index)
            )
        sentence_vectors = {
            info.id: StackedRows([base.sentence_vectors[info.id], own.sentence_vectors[info.id]]) for info in infos
        }
        lexical = SegmentedLexical([base.lexical, own.lexical], live)
    data = IndexData(
        documents=documents,
        chunks=chunks,
        sentences=sentences,
        embedders=infos,
        chunker=chunker_config,
        chunk_vectors=chunk_vectors,
        sentence_vectors=sentence_vectors,
        lexical=lexical,
        manifest=manifest,
        path=root,
        live=live,
        sentence_live=sentence_live,
    )
    for embedder_id, index in faiss_indexes.items():
        data.adopt_faiss(embedder_id, index)  # keeps the memory the chunk vectors view alive
    if base_root is not None:
        # Stacked under the base's stored rows, the delta's chunk vectors are views of its own flat FAISS
        # index: freed with it, they read whatever memory is reused (rankings that changed run to run).
        data.hold(own.faiss)
    return data


def load_segment(index_dir: Path, manifest: dict[str, Any] | None = None) -> IndexData:
    """Only the rows the current build holds itself (for a delta build: its delta, without the base).

    The next incremental run reuses these rows; its manifest is returned without the base, so
    the result reads as a complete build of just these documents. ``manifest``, when the caller
    has read it already, is used if it is the current build's (at 10^6 chunks it is tens of MB).
    """
    root = index_dir.resolve()
    if manifest is None or manifest.get("build_id") != root.name:
        manifest = read_manifest(root)
    infos, chunker = _encoders_and_chunker(manifest, index_dir)
    own = _read_segment(root, infos, index_dir)
    data = IndexData(
        documents=own.documents, chunks=own.chunks, sentences=own.sentences, embedders=infos, chunker=chunker,
        chunk_vectors=dict(own.chunk_vectors),
        sentence_vectors=dict(own.sentence_vectors), lexical=own.lexical,
        manifest={k: v for k, v in manifest.items() if k != "base"}, path=root,
    )
    for embedder_id, index in own.faiss.items():
        data.adopt_faiss(embedder_id, index)
    return data
