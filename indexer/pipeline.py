"""``tanya index``: documents → sentences and chunks → vectors and postings → a new build.

Incremental: a document whose fingerprint (content hash, title, language, format) is
unchanged since the previous build keeps its chunks and vectors; only new or changed
documents are embedded, removed ones drop out, and when nothing changed at all no new
build is written.

Cost in proportion to the change: once the index has ``delta_min_chunks`` chunks, a change is
written as a *delta build* (``indexer.store.format``): only the new and changed documents'
records, vectors and postings, stacked at load time on the last complete build, whose removed
or replaced documents are masked. The previous build is never loaded for that; its manifest
says what it holds. When the delta (its chunks plus the base's deleted ones) would pass
``max_delta_share`` of the base, the run writes a complete build instead, merging the two.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.chunks import Chunk, ChunkerConfig, Sentence, chunk_document
from indexer.documents import Document, IdCollision, LoadedDocuments, SkippedFile, load_documents
from indexer.embedders import Embedder
from indexer.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, NoDocumentsError
from indexer.lexical import Analyzer, LexicalIndex
from indexer.store import (
    DenseIndexConfig,
    EmbedderInfo,
    IndexData,
    check_compatible,
    document_fingerprint,
    embedder_infos,
    load_index,
    metadata_hash,
    read_manifest,
    write_index,
)
from indexer.store.embedding_cache import EmbeddingCache, cache_path, embed_cached
from indexer.store.format import DeltaBase, missing_files, read_build_terms
from indexer.store.reader import load_segment
from indexer.tokens import TokenCounter, get_counter

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class IndexProgress:
    """How far the embedding of an indexing run is: texts (chunks and sentences, per encoder) and documents."""

    texts_done: int
    texts_total: int
    documents_done: int
    documents_total: int


#: ``progress(state)`` is called as texts are embedded.
ProgressCallback = Callable[[IndexProgress], None]
#: Documents embedded together: the progress counts documents, and a killed run loses at most one group's
#: work that is not yet in the cache (none: every batch is committed as it is encoded).
DOCUMENT_GROUP = 64


@dataclass(frozen=True)
class IndexConfig:
    """Everything a build needs besides the documents and the encoders (from ``Settings.index``)."""

    index_dir: Path
    chunker: ChunkerConfig = field(default_factory=ChunkerConfig)
    max_file_bytes: int = 20 * 1024 * 1024
    #: Index files reached through a link that leads outside the folder being indexed.
    follow_symlinks: bool = False
    batch_size: int = 32
    #: Where the cl100k_base file is seeded; ``None`` is the per-user cache.
    tiktoken_cache_dir: Path | None = None
    #: Exact FAISS search below a size, HNSW above it.
    dense_index: DenseIndexConfig = field(default_factory=DenseIndexConfig)
    #: From this many chunks in the last complete build, a change is written as a delta build.
    delta_min_chunks: int = 2_000
    #: Largest delta (chunks, plus the base's deleted chunks) as a share of its base.
    max_delta_share: float = 0.25


@dataclass
class IndexReport:
    """What an indexing run did; printed by the CLI and returned as JSON with ``--json``."""

    index_dir: str
    build_id: str
    changed: bool
    documents: int
    reused_documents: list[str] = field(default_factory=list)
    embedded_documents: list[str] = field(default_factory=list)
    removed_documents: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    collisions: list[IdCollision] = field(default_factory=list)
    chunks: int = 0
    sentences: int = 0
    texts_embedded: int = 0
    #: Encoder passes over distinct texts in this run, and vectors read back from a killed run's cache.
    texts_encoded: int = 0
    texts_from_cache: int = 0
    seconds: float = 0.0
    full_rebuild_reason: str | None = None
    #: For a delta build: the complete build it stacks on (``None`` for a complete build).
    delta_of: str | None = None

    @property
    def summary(self) -> str:
        """One human line."""
        if not self.changed:
            return (
                f"index up to date: {self.documents} documents unchanged, nothing embedded "
                f"({self.index_dir}, build {self.build_id})"
            )
        renamed = f", {len(self.collisions)} renamed after an id collision" if self.collisions else ""
        resumed = f" ({self.texts_from_cache} read back from an interrupted run)" if self.texts_from_cache else ""
        delta = f" (a delta build on {self.delta_of})" if self.delta_of else ""
        return (
            f"indexed {self.documents} documents ({len(self.embedded_documents)} embedded, "
            f"{len(self.reused_documents)} reused, {len(self.removed_documents)} removed, "
            f"{len(self.skipped)} skipped{renamed}): {self.chunks} chunks, {self.sentences} sentences, "
            f"{self.texts_embedded} texts embedded{resumed} in {self.seconds:.1f}s → {self.index_dir}{delta}"
        )


def _previous(index_dir: Path, infos: list[EmbedderInfo], chunker: ChunkerConfig) -> tuple[IndexData | None, str | None]:
    """The previous build if its vectors can be reused, else ``None`` and why not."""
    try:
        previous = load_index(index_dir)
        check_compatible(previous.manifest, infos, chunker, index_dir)
    except IndexNotFoundError:
        return None, None
    except (IndexMismatchError, IndexCorruptError) as exc:
        log.warning("previous index not reusable, embedding everything: %s", exc.detail)
        return None, exc.detail
    return previous, None


def _embed(
    embedders: Sequence[Embedder],
    texts: list[str],
    batch_size: int,
    tick: Callable[[int], None],
    cache: EmbeddingCache,
    counts: dict[str, int],
) -> dict[str, np.ndarray]:
    """Passage vectors of ``texts`` under every encoder; what a killed run already encoded comes from ``cache``.

    ``counts["cached"]`` and ``counts["encoded"]`` grow by the texts read back and encoded.
    """
    vectors = {}
    for e in embedders:
        vectors[e.id], hits, encoded = embed_cached(
            e.embed_passages, f"{e.id}@{e.version}", e.dim, texts, cache, batch_size, tick
        )
        counts["cached"] += hits
        counts["encoded"] += encoded
    return vectors


def _compatible_manifest(index_dir: Path, infos: list[EmbedderInfo], chunker: ChunkerConfig) -> dict[str, Any] | None:
    """The current build's manifest if its vectors could be reused, else ``None`` (read nothing else)."""
    try:
        manifest = read_manifest(index_dir)
        check_compatible(manifest, infos, chunker, index_dir)
    except (IndexNotFoundError, IndexMismatchError, IndexCorruptError):
        return None
    # A damaged build must not pass for an unchanged one: then the full load says what is wrong.
    return None if missing_files(index_dir, manifest) else manifest


def _nothing_changed(loaded: LoadedDocuments, recorded: dict[str, dict[str, Any]]) -> bool:
    """Whether the files found make exactly the recorded build: same ids, and every file read unchanged."""
    if set(loaded.order) != set(recorded):
        return False
    return all(
        recorded[d.doc_id].get("fingerprint") == document_fingerprint(d)
        and recorded[d.doc_id].get("metadata_hash") == metadata_hash(d)
        for d in loaded.documents
    )


def build_index(
    paths: Sequence[Path],
    config: IndexConfig,
    embedders: Sequence[Embedder],
    counter: TokenCounter | None = None,
    progress: ProgressCallback | None = None,
) -> IndexReport:
    """Index every readable document under ``paths`` into ``config.index_dir`` (incrementally, atomically).

    ``counter`` defaults to the cl100k_base counter seeded under ``config.tiktoken_cache_dir``.
    """
    started = time.perf_counter()
    index_dir, chunker = config.index_dir, config.chunker
    counter = counter or get_counter(config.tiktoken_cache_dir)
    infos = embedder_infos(embedders)
    # The manifest alone says which files the current build was made from (path, size, mtime):
    # those are not read again, and when nothing changed the build itself is never loaded.
    manifest = _compatible_manifest(index_dir, infos, chunker)
    recorded = {d["doc_id"]: d for d in manifest.get("documents", [])} if manifest else {}
    known = {d["stamp"]["key"]: (doc_id, d["stamp"]) for doc_id, d in recorded.items() if d.get("stamp")}
    loaded = load_documents(paths, config.max_file_bytes, config.follow_symlinks, known)
    if not loaded.order:
        where = ", ".join(str(p) for p in paths)
        raise NoDocumentsError(f"no readable .txt/.md/.html/.pdf document under {where}; the index was left as it was")
    if manifest and _nothing_changed(loaded, recorded):
        return IndexReport(
            index_dir=str(index_dir), build_id=str(manifest.get("build_id", "")), changed=False,
            documents=len(loaded.order), reused_documents=list(loaded.order), skipped=loaded.skipped,
            collisions=loaded.collisions, chunks=int(manifest.get("counts", {}).get("chunks", 0)),
            sentences=int(manifest.get("counts", {}).get("sentences", 0)), seconds=time.perf_counter() - started,
        )
    if manifest:
        report = _build_delta(loaded, manifest, config, embedders, counter, progress, started)
        if report is not None:
            return report
    previous, reason = _previous(index_dir, infos, chunker)
    if loaded.unchanged and (previous is None or not set(loaded.unchanged) <= set(previous.documents)):
        # The build those stamps came from cannot be read now: read every file after all.
        loaded = load_documents(paths, config.max_file_bytes, config.follow_symlinks)
    by_id = {d.doc_id: d for d in loaded.documents}
    documents = [by_id[i] if i in by_id else previous.documents[i] for i in loaded.order]  # type: ignore[union-attr]
    stamps = {**loaded.unchanged, **loaded.stamps}
    old_fingerprints: dict[str, str] = {}
    old_metadata: dict[str, str] = {}
    if previous is not None:
        old_fingerprints = {d["doc_id"]: d["fingerprint"] for d in previous.manifest.get("documents", [])}
        old_metadata = {d["doc_id"]: d.get("metadata_hash", "") for d in previous.manifest.get("documents", [])}

    reuse = [d for d in documents if previous is not None and old_fingerprints.get(d.doc_id) == document_fingerprint(d)]
    reused_ids = {d.doc_id for d in reuse}
    fresh = [d for d in documents if d.doc_id not in reused_ids]
    removed = sorted(set(old_fingerprints) - {d.doc_id for d in documents})
    report = IndexReport(
        index_dir=str(index_dir),
        build_id=previous.build_id if previous else "",
        # A sidecar edit alone (date, description...) reuses every vector but still needs a new build.
        changed=bool(
            fresh or removed or previous is None or any(old_metadata.get(d.doc_id) != metadata_hash(d) for d in reuse)
        ),
        documents=len(documents),
        reused_documents=[d.doc_id for d in reuse],
        embedded_documents=[d.doc_id for d in fresh],
        removed_documents=removed,
        skipped=loaded.skipped,
        collisions=loaded.collisions,
        full_rebuild_reason=reason,
    )
    if not report.changed and previous is not None:
        report.chunks, report.sentences = len(previous.chunks), len(previous.sentences)
        report.seconds = time.perf_counter() - started
        return report

    # Chunk the new and changed documents.
    new_parts: dict[str, tuple[list[Sentence], list[Chunk]]] = {}
    for doc in fresh:
        new_parts[doc.doc_id] = chunk_document(doc, counter, chunker)
    data = _embed_and_write(
        config, embedders, documents, new_parts, previous, stamps, report, progress, base=None
    )
    report.build_id = data.build_id
    report.chunks, report.sentences = len(data.chunks), len(data.sentences)
    report.seconds = time.perf_counter() - started
    return report


def _embed_and_write(
    config: IndexConfig,
    embedders: Sequence[Embedder],
    documents: list[Document],
    new_parts: dict[str, tuple[list[Sentence], list[Chunk]]],
    previous: IndexData | None,
    stamps: dict[str, dict[str, Any]],
    report: IndexReport,
    progress: ProgressCallback | None,
    base: DeltaBase | None,
) -> IndexData:
    """Embed the new chunks and sentences (through the resume cache), assemble the build and write it.

    Documents are embedded a group at a time (all their chunks and sentences under every encoder),
    so the progress can say how many documents are done.
    """
    fresh = [d for d in documents if d.doc_id in new_parts]
    chunk_count = sum(len(new_parts[d.doc_id][1]) for d in fresh)
    sentence_count = sum(len(new_parts[d.doc_id][0]) for d in fresh)
    total = (chunk_count + sentence_count) * len(embedders)
    done = 0
    documents_done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(IndexProgress(done, total, documents_done, len(fresh)))

    tick(0)
    # Every encoded batch is committed to the cache at once: a run killed now resumes from there.
    cache = EmbeddingCache(cache_path(config.index_dir))
    try:
        counts = {"cached": 0, "encoded": 0}
        chunk_parts: dict[str, list[np.ndarray]] = {e.id: [] for e in embedders}
        sentence_parts: dict[str, list[np.ndarray]] = {e.id: [] for e in embedders}
        for start in range(0, len(fresh), DOCUMENT_GROUP):
            group = fresh[start : start + DOCUMENT_GROUP]
            chunk_texts = [c.embedding_text(doc.title) for doc in group for c in new_parts[doc.doc_id][1]]
            sentence_texts = [s.text for doc in group for s in new_parts[doc.doc_id][0]]
            for parts, texts in ((chunk_parts, chunk_texts), (sentence_parts, sentence_texts)):
                for embedder_id, vectors in _embed(embedders, texts, config.batch_size, tick, cache, counts).items():
                    parts[embedder_id].append(vectors)
            documents_done += len(group)
            tick(0)
        new_chunk_vectors = {e.id: _stack(chunk_parts[e.id], e.dim) for e in embedders}
        new_sentence_vectors = {e.id: _stack(sentence_parts[e.id], e.dim) for e in embedders}
        report.texts_encoded, report.texts_from_cache = counts["encoded"], counts["cached"]
        new_build = _assemble(documents, new_parts, new_chunk_vectors, new_sentence_vectors, previous, embedders)
        data = IndexData(
            documents={d.doc_id: d for d in documents},
            stamps=stamps,
            dense_index=config.dense_index,
            embedders=embedder_infos(embedders),
            chunker=config.chunker,
            base=base,
            **new_build,
        )
        write_index(config.index_dir, data)
        # The build holds these vectors now; the cache is only for runs that die before this point.
        cache.clear()
    finally:
        cache.close()
    report.texts_embedded = chunk_count + sentence_count
    return data


def _stack(parts: list[np.ndarray], dim: int) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)


def _build_delta(
    loaded: LoadedDocuments,
    manifest: dict[str, Any],
    config: IndexConfig,
    embedders: Sequence[Embedder],
    counter: TokenCounter,
    progress: ProgressCallback | None,
    started: float,
) -> IndexReport | None:
    """Write the change as a delta build, reading only the manifest and the current delta; ``None`` if it
    does not qualify (a small index, a delta grown too large, a base that is not there)."""
    base_info = manifest.get("base") if isinstance(manifest.get("base"), dict) else None
    counts = manifest.get("counts", {})
    base_chunks = int(counts.get("base_chunks" if base_info else "chunks", 0))
    if base_chunks < max(1, config.delta_min_chunks):
        return None
    recorded = {d["doc_id"]: d for d in manifest.get("documents", [])}
    read = {d.doc_id: d for d in loaded.documents}
    changed = {
        doc_id for doc_id, doc in read.items()
        if doc_id not in recorded
        or recorded[doc_id].get("fingerprint") != document_fingerprint(doc)
        or recorded[doc_id].get("metadata_hash") != metadata_hash(doc)
    }
    current = set(loaded.order)
    removed = sorted(set(recorded) - current)
    in_base = {doc_id for doc_id, d in recorded.items() if d.get("segment", "base") == "base"}
    deleted = set(base_info.get("deleted", [])) if base_info else set()
    deleted_chunks = int(base_info.get("deleted_chunks", 0)) if base_info else 0
    newly_deleted = (changed | set(removed)) & in_base
    deleted_chunks += sum(int(recorded[d].get("chunks", 0)) for d in newly_deleted)
    deleted |= newly_deleted

    previous: IndexData | None = None
    if base_info:
        try:
            previous = load_segment(config.index_dir)
        except (IndexCorruptError, IndexNotFoundError):
            return None
    kept_delta = [
        previous.documents[d] for d in loaded.order
        if previous is not None and d in previous.documents and d not in changed
    ]
    fresh = [read[d] for d in loaded.order if d in changed]
    new_parts = {doc.doc_id: chunk_document(doc, counter, config.chunker) for doc in fresh}
    delta_chunks = sum(int(recorded[d.doc_id].get("chunks", 0)) for d in kept_delta)
    delta_chunks += sum(len(parts[1]) for parts in new_parts.values())
    if delta_chunks + deleted_chunks > config.max_delta_share * base_chunks:
        return None  # merge: the caller writes a complete build

    stamps = {**loaded.unchanged, **loaded.stamps}
    base_entries = [
        {**{k: v for k, v in recorded[d].items() if k != "segment"}, "stamp": stamps.get(d, recorded[d].get("stamp"))}
        for d in loaded.order if d in in_base and d not in deleted
    ]
    base = DeltaBase(
        build_id=str(base_info["build_id"]) if base_info else str(manifest.get("build_id", "")),
        deleted=sorted(deleted),
        documents=base_entries,
        chunks=base_chunks,
        dense_index={k: v for k, v in manifest.get("dense_index", {}).items() if k != "delta"},
        deleted_chunks=deleted_chunks,
    )
    report = IndexReport(
        index_dir=str(config.index_dir), build_id="", changed=True, documents=len(current),
        reused_documents=[d for d in loaded.order if d not in changed],
        embedded_documents=[d.doc_id for d in fresh], removed_documents=removed,
        skipped=loaded.skipped, collisions=loaded.collisions, delta_of=base.build_id,
    )
    data = _embed_and_write(
        config, embedders, kept_delta + fresh, new_parts, previous, stamps, report, progress, base=base
    )
    report.build_id = data.build_id
    report.chunks = int(data.manifest["counts"]["chunks"])
    report.sentences = int(data.manifest["counts"]["sentences"])
    report.seconds = time.perf_counter() - started
    return report


def _assemble(
    documents: list[Document],
    new_parts: dict[str, tuple[list[Sentence], list[Chunk]]],
    new_chunk_vectors: dict[str, np.ndarray],
    new_sentence_vectors: dict[str, np.ndarray],
    previous: IndexData | None,
    embedders: Sequence[Embedder],
) -> dict[str, Any]:
    """Chunks, sentences, vectors and BM25 of the new build in document order, reusing the previous build's rows."""

    # Assemble the new build in document order. Vector rows are planned first (each row of the
    # new build comes from the previous build or from this run's vectors) and gathered in one
    # step per matrix: concatenating a slice per document cost seconds at 10^5 chunks.
    chunks: list[Chunk] = []
    sentences: list[Sentence] = []
    chunk_plan: tuple[list[int], list[int]] = ([], [])  # (previous row or -1, new row or -1) per row
    sentence_plan: tuple[list[int], list[int]] = ([], [])
    old_chunk_rows: dict[str, list[int]] = {}
    old_sentence_rows: dict[str, list[int]] = {}
    previous_chunks: list[Chunk] = list(previous.chunks) if previous is not None else []  # one read, not one per row
    previous_sentences: list[Sentence] = list(previous.sentences) if previous is not None else []
    if previous is not None:
        # Only current rows: a loaded delta build also holds the masked rows of documents it replaced.
        for i, c in enumerate(previous_chunks):
            if previous.live_chunk(i):
                old_chunk_rows.setdefault(c.doc_id, []).append(i)
        for i, s in enumerate(previous_sentences):
            if previous.live_sentence(i):
                old_sentence_rows.setdefault(s.doc_id, []).append(i)
    new_chunk_cursor = 0
    new_sentence_cursor = 0
    for doc in documents:
        if doc.doc_id in new_parts:
            doc_sentences, doc_chunks = new_parts[doc.doc_id]
            _plan(chunk_plan, new=range(new_chunk_cursor, new_chunk_cursor + len(doc_chunks)))
            _plan(sentence_plan, new=range(new_sentence_cursor, new_sentence_cursor + len(doc_sentences)))
            new_chunk_cursor += len(doc_chunks)
            new_sentence_cursor += len(doc_sentences)
        else:
            assert previous is not None
            c_idx = old_chunk_rows.get(doc.doc_id, [])
            s_idx = old_sentence_rows.get(doc.doc_id, [])
            doc_chunks = [previous_chunks[i] for i in c_idx]
            doc_sentences = [previous_sentences[i] for i in s_idx]
            _plan(chunk_plan, old=c_idx)
            _plan(sentence_plan, old=s_idx)
        chunks.extend(doc_chunks)
        sentences.extend(doc_sentences)

    def old(matrices: str, embedder_id: str) -> np.ndarray | None:
        return getattr(previous, matrices)[embedder_id] if previous is not None else None

    # BM25 terms: an unchanged chunk's come from the previous build (analysing every chunk again
    # was the largest part of adding one document at 10^5 chunks).
    analyzer = Analyzer()
    old_terms = read_build_terms(previous) if previous is not None else None
    terms = [
        old_terms[old_row] if old_terms is not None and old_row >= 0 else analyzer.analyse(chunk.text, chunk.lang)
        for chunk, old_row in zip(chunks, chunk_plan[0], strict=True)
    ]
    return {
        "chunks": chunks,
        "sentences": sentences,
        "chunk_vectors": {
            e.id: _gather(chunk_plan, old("chunk_vectors", e.id), new_chunk_vectors[e.id], e.dim, np.float32)
            for e in embedders
        },
        # float16 is what a build stores (store.writer), so the reused rows are not widened and narrowed again.
        "sentence_vectors": {
            e.id: _gather(sentence_plan, old("sentence_vectors", e.id), new_sentence_vectors[e.id], e.dim, np.float16)
            for e in embedders
        },
        "lexical": LexicalIndex.build(terms),
        "chunk_terms": terms,
    }


def _plan(plan: tuple[list[int], list[int]], old: Sequence[int] = (), new: Sequence[int] = ()) -> None:
    """Append rows taken from the previous build (``old``) or from this run's vectors (``new``)."""
    plan[0].extend(old)
    plan[1].extend([-1] * len(old))
    plan[0].extend([-1] * len(new))
    plan[1].extend(new)


def _gather(
    plan: tuple[list[int], list[int]], old: np.ndarray | None, new: np.ndarray, dim: int, dtype: type
) -> np.ndarray:
    """The matrix the plan describes, filled with two fancy-indexed copies."""
    old_rows, new_rows = np.asarray(plan[0], dtype=np.int64), np.asarray(plan[1], dtype=np.int64)
    out: np.ndarray = np.empty((len(old_rows), dim), dtype=dtype)
    from_old = old_rows >= 0
    if from_old.any():
        assert old is not None
        out[from_old] = old[old_rows[from_old]]
    if (~from_old).any():
        out[~from_old] = new[new_rows[~from_old]]
    return out


__all__ = ["IndexConfig", "IndexProgress", "IndexReport", "build_index"]
