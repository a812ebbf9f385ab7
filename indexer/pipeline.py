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

Streaming: documents go through chunking, embedding and the :class:`~indexer.store.writer.BuildWriter`
a group at a time, and each group's records, vectors and terms are on disk before the next is
chunked; a reused document's rows are read from the previous build as its turn comes. What a run
holds grows with the index only by the FAISS index and the BM25 token ids (4 bytes a token), and
by the texts of the files read before the run starts (``load_documents``).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from indexer.chunks import ChunkerConfig, chunk_document
from indexer.documents import Document, IdCollision, LoadedDocuments, SkippedFile, load_documents
from indexer.embedders import Embedder
from indexer.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, NoDocumentsError
from indexer.lexical import Analyzer
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
)
from indexer.store.embedding_cache import EmbeddingCache, cache_path, embed_cached
from indexer.store.format import DeltaBase, missing_files
from indexer.store.reader import load_segment
from indexer.store.records import chunk_terms, column, records_at
from indexer.store.writer import BuildWriter
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
    #: Characters of document text held between reading the files and writing them (see ``load_documents``).
    text_budget_chars: int = 64_000_000


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
    # The planning below parses the manifest (a million objects at 10^6 chunks) and makes a few per
    # file; the cyclic collector's full passes over that heap were a third of adding one document
    # there (0.7 of 2.3 s, gc.callbacks). Nothing planned makes cycles, so the collector waits until
    # the plan is made; a delta's writing (which may embed for hours) and a complete build run with it.
    with _collector_paused():
        # The manifest alone says which files the current build was made from (path, size, mtime):
        # those are not read again, and when nothing changed the build itself is never loaded.
        manifest = _compatible_manifest(index_dir, infos, chunker)
        recorded = {d["doc_id"]: d for d in manifest.get("documents", [])} if manifest else {}
        known = {d["stamp"]["key"]: (doc_id, d["stamp"]) for doc_id, d in recorded.items() if d.get("stamp")}
        loaded = load_documents(paths, config.max_file_bytes, config.follow_symlinks, known, config.text_budget_chars)
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
        loaded = load_documents(paths, config.max_file_bytes, config.follow_symlinks, None, config.text_budget_chars)
    read = {d.doc_id: d for d in loaded.documents}
    loaded.documents = []
    stamps = {**loaded.unchanged, **loaded.stamps}
    old_fingerprints: dict[str, str] = {}
    old_metadata: dict[str, str] = {}
    if previous is not None:
        old_fingerprints = {d["doc_id"]: d["fingerprint"] for d in previous.manifest.get("documents", [])}
        old_metadata = {d["doc_id"]: d.get("metadata_hash", "") for d in previous.manifest.get("documents", [])}

    # A file not read (its stamp unchanged) is reused as it is; one read is reused if its content is the same.
    reused = [
        i for i in loaded.order
        if previous is not None and (i not in read or old_fingerprints.get(i) == document_fingerprint(read[i]))
    ]
    reused_ids = set(reused)
    fresh = {i: read[i] for i in loaded.order if i not in reused_ids}
    removed = sorted(set(old_fingerprints) - set(loaded.order))
    report = IndexReport(
        index_dir=str(index_dir),
        build_id=previous.build_id if previous else "",
        # A sidecar edit alone (date, description...) reuses every vector but still needs a new build.
        changed=bool(
            fresh or removed or previous is None
            or any(i in read and old_metadata.get(i) != metadata_hash(read[i]) for i in reused)
        ),
        documents=len(loaded.order),
        reused_documents=reused,
        embedded_documents=list(fresh),
        removed_documents=removed,
        skipped=loaded.skipped,
        collisions=loaded.collisions,
        full_rebuild_reason=reason,
    )
    if not report.changed and previous is not None:
        report.chunks, report.sentences = previous.live_chunks, previous.live_sentences
        report.seconds = time.perf_counter() - started
        return report
    reread = {i: read[i] for i in reused if i in read}  # reused rows, metadata as read now
    read.clear()  # ``fresh`` and ``reread`` are the holders now: each text is dropped once written
    manifest = _write(
        config, embedders, counter, loaded, fresh, reread, previous, stamps, report, progress, None
    )
    report.build_id = str(manifest["build_id"])
    report.chunks, report.sentences = int(manifest["counts"]["chunks"]), int(manifest["counts"]["sentences"])
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (objects are still freed by reference
    counting), then restore it as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def _collector_resumed() -> Iterator[None]:
    """Run the cyclic collector again inside a :func:`_collector_paused` block, over the objects made from
    here on: those alive now (the parsed manifest, the plan) are frozen, so its passes skip them."""
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.enable()
    try:
        yield
    finally:
        if not was_enabled:
            gc.disable()
        gc.unfreeze()


def _write(
    config: IndexConfig,
    embedders: Sequence[Embedder],
    counter: TokenCounter,
    loaded: LoadedDocuments,
    fresh: dict[str, Document],
    reread: dict[str, Document],
    previous: IndexData | None,
    stamps: dict[str, dict[str, Any]],
    report: IndexReport,
    progress: ProgressCallback | None,
    base: DeltaBase | None,
) -> dict[str, Any]:
    """Write a build of the documents in ``loaded.order`` and return its manifest, streaming a group at a time.

    ``fresh`` documents are chunked, analysed and embedded (through the resume cache); the others
    take their rows, vectors and terms from ``previous`` (with their metadata from ``reread`` where
    the file was read again). Each group goes to the :class:`BuildWriter` as soon as it is done and
    is then dropped, so memory does not grow with the corpus: a killed run loses at most one group's
    work beyond what the cache holds.
    """
    order = loaded.order
    embedded_total = len(fresh)
    progress_state = {"texts": 0, "documents": 0, "known": 0, "chunked": 0}

    def tick(n: int) -> None:
        progress_state["texts"] += n
        if progress:
            progress(IndexProgress(
                progress_state["texts"], _estimate_total(progress_state, embedded_total, len(embedders)),
                progress_state["documents"], embedded_total,
            ))

    reuse = _PreviousRows(previous) if previous is not None and len(fresh) < len(order) else None
    analyzer = Analyzer()
    tick(0)
    # Every encoded batch is committed to the cache at once: a run killed now resumes from there.
    cache = EmbeddingCache(cache_path(config.index_dir))
    try:
        counts = {"cached": 0, "encoded": 0}
        with BuildWriter(config.index_dir, embedder_infos(embedders), config.chunker, config.dense_index, base) as writer:
            for start in range(0, len(order), DOCUMENT_GROUP):
                group = order[start : start + DOCUMENT_GROUP]
                new = [loaded.with_text(fresh.pop(i)) for i in group if i in fresh]
                parts = {doc.doc_id: chunk_document(doc, counter, config.chunker) for doc in new}
                progress_state["known"] += sum(len(c) + len(t) for t, c in parts.values())
                progress_state["chunked"] += len(new)
                chunk_texts = [c.embedding_text(doc.title) for doc in new for c in parts[doc.doc_id][1]]
                sentence_texts = [t.text for doc in new for t in parts[doc.doc_id][0]]
                chunk_vectors = _embed(embedders, chunk_texts, config.batch_size, tick, cache, counts)
                sentence_vectors = _embed(embedders, sentence_texts, config.batch_size, tick, cache, counts)
                chunk_at = sentence_at = 0
                new_by_id = {doc.doc_id: doc for doc in new}
                for doc_id in group:
                    if doc_id in new_by_id:
                        doc = new_by_id[doc_id]
                        sentences, chunks = parts[doc_id]
                        rows_c = slice(chunk_at, chunk_at + len(chunks))
                        rows_s = slice(sentence_at, sentence_at + len(sentences))
                        chunk_at, sentence_at = rows_c.stop, rows_s.stop
                        writer.add(
                            doc, stamps.get(doc_id), chunks, sentences,
                            {k: v[rows_c] for k, v in chunk_vectors.items()},
                            {k: v[rows_s] for k, v in sentence_vectors.items()},
                            [analyzer.analyse(c.text, c.lang) for c in chunks],
                        )
                    else:
                        assert reuse is not None
                        again = reread.pop(doc_id, None)
                        document = loaded.with_text(again) if again is not None else None
                        reuse.write(writer, doc_id, document, stamps.get(doc_id), analyzer)
                progress_state["documents"] += len(new)
                tick(0)
            report.texts_encoded, report.texts_from_cache = counts["encoded"], counts["cached"]
            report.texts_embedded = progress_state["known"]
            manifest = writer.commit()
        # The build holds these vectors now; the cache is only for runs that die before this point.
        cache.clear()
    finally:
        cache.close()
    return manifest


def _estimate_total(state: dict[str, int], documents_total: int, encoders: int) -> int:
    """Texts to embed in all: exact once every document is chunked, before that scaled by the documents left.

    (Documents are chunked a group at a time, as they are embedded, so the total is not known up front.)
    """
    chunked = state["chunked"]
    if chunked >= documents_total or not chunked:
        return state["known"] * encoders
    return max(state["texts"], round(state["known"] * encoders * documents_total / chunked))


class _PreviousRows:
    """A previous build's rows, vectors and BM25 terms, fetched one document at a time for a new build."""

    def __init__(self, previous: IndexData) -> None:
        self.previous = previous
        # Only current rows: a loaded delta build also holds the masked rows of documents it replaced.
        self.chunk_rows = _rows_by_document(column(previous.chunks, "doc_id"), previous.live)
        self.sentence_rows = _rows_by_document(column(previous.sentences, "doc_id"), previous.sentence_live)

    def write(
        self, writer: BuildWriter, doc_id: str, document: Document | None, stamp: dict[str, Any] | None,
        analyzer: Analyzer,
    ) -> None:
        """Add document ``doc_id`` to ``writer`` as the previous build holds it (``document``: its metadata now)."""
        previous = self.previous
        chunk_rows = self.chunk_rows.get(doc_id, [])
        sentence_rows = self.sentence_rows.get(doc_id, [])
        chunks = records_at(previous.chunks, chunk_rows)
        # An unchanged chunk's terms come from the previous build (analysing every chunk again was the
        # largest part of adding one document at 10^5 chunks); builds that kept none are analysed.
        terms = chunk_terms(previous.chunks, chunk_rows) if chunk_rows else []
        if terms is None:
            terms = [analyzer.analyse(c.text, c.lang) for c in chunks]
        writer.add(
            document if document is not None else previous.documents[doc_id], stamp, chunks,
            records_at(previous.sentences, sentence_rows),
            {k: np.asarray(v[chunk_rows]) for k, v in previous.chunk_vectors.items()},
            {k: np.asarray(v[sentence_rows]) for k, v in previous.sentence_vectors.items()},
            terms,
        )


def _rows_by_document(doc_ids: list[str], live: np.ndarray | None) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {}
    for row, doc_id in enumerate(doc_ids):
        if live is None or live[row]:
            rows.setdefault(doc_id, []).append(row)
    return rows


def _base_entry(entry: dict[str, Any], stamp: dict[str, Any] | None) -> dict[str, Any]:
    """A base document's manifest entry as the next delta records it: in the base segment, with its stamp now.

    Changed in place: the entries were parsed from the manifest for this run alone. Copying them cost
    0.44-0.53 s of a 2-4 s one-document change at 10^6 chunks (82,645 entries; cProfile, 2026-12-03)."""
    entry["segment"] = "base"
    if stamp is not None:
        entry["stamp"] = stamp
    else:
        entry.setdefault("stamp", None)
    return entry


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
            previous = load_segment(config.index_dir, manifest)
        except (IndexCorruptError, IndexNotFoundError):
            return None
    kept_delta = [d for d in loaded.order if previous is not None and d in previous.documents and d not in changed]
    fresh = {d: read[d] for d in loaded.order if d in changed}
    # Chunked here only to be counted (and dropped): the writer chunks them again a group at a time,
    # and a change too large for a delta stops the count early.
    allowed = config.max_delta_share * base_chunks - deleted_chunks
    delta_chunks = sum(int(recorded[d].get("chunks", 0)) for d in kept_delta)
    for doc in fresh.values():
        if delta_chunks > allowed:
            break
        delta_chunks += len(chunk_document(loaded.with_text(doc), counter, config.chunker)[1])
    if delta_chunks > allowed:
        return None  # merge: the caller writes a complete build

    stamps = {**loaded.unchanged, **loaded.stamps}
    base_entries = [_base_entry(recorded[d], stamps.get(d)) for d in loaded.order if d in in_base and d not in deleted]
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
        embedded_documents=list(fresh), removed_documents=removed,
        skipped=loaded.skipped, collisions=loaded.collisions, delta_of=base.build_id,
    )
    in_order = replace(loaded, order=kept_delta + list(fresh))
    with _collector_resumed():
        written = _write(config, embedders, counter, in_order, fresh, {}, previous, stamps, report, progress, base)
    report.build_id = str(written["build_id"])
    report.chunks, report.sentences = int(written["counts"]["chunks"]), int(written["counts"]["sentences"])
    report.seconds = time.perf_counter() - started
    return report


__all__ = ["IndexConfig", "IndexProgress", "IndexReport", "build_index"]
