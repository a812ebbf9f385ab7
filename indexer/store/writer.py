"""Write an index build beside the current one and swap it in atomically.

A new build is written completely under ``<index_dir>.builds/<build_id>.partial``, renamed
to its final name once its manifest is in, and ``index_dir`` (a symbolic link) is swapped
with one atomic ``rename``: readers see either the old index or the new one, never a mix,
and an interrupted run leaves the previous index in place.

Writers take an exclusive lock on ``<index_dir>.builds/.lock`` (released by the kernel even
when the process is killed with SIGKILL), so a writer holding it knows that any
``.partial`` folder or half-made link it finds is debris from a run that died, and removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from indexer.chunks import Chunk, ChunkerConfig, Sentence
from indexer.documents import Document
from indexer.lexical import LexicalIndex, TermIds
from indexer.store.format import (
    BASE_FILE,
    CHUNK_SCALES,
    CHUNK_VECTORS,
    KEEP_BUILDS,
    MANIFEST,
    SENTENCE_SCALES,
    SENTENCE_VECTORS,
    BuildContents,
    DeltaBase,
    DenseIndexConfig,
    EmbedderInfo,
    base_dir,
    build_manifest,
    builds_dir,
    document_entry,
    manifest_bytes,
    quantize_rows,
    vector_stem,
)
from indexer.store.records import RECORDS_FILE, RecordWriter


class BuildWriter:
    """Writes one build as its documents arrive and, on :meth:`commit`, swaps it in atomically.

    Memory stays bounded whatever the build's size: records go straight to SQLite, vectors to
    spool files on disk, BM25 terms into one int32 array (:class:`indexer.lexical.TermIds`).
    The FAISS index and the BM25 postings are made at the end, from those; they are the index
    itself. Leaving the ``with`` block without a commit (an error, a kill) discards the build,
    so the previous one keeps serving.

    ``base`` makes it a delta build on that complete build (its vectors are then stored flat:
    loading adds them to the base's index).
    """

    def __init__(
        self,
        index_dir: Path,
        embedders: Sequence[EmbedderInfo],
        chunker: ChunkerConfig,
        dense_index: DenseIndexConfig,
        base: DeltaBase | None = None,
    ) -> None:
        self.index_dir = index_dir
        self.embedders = list(embedders)
        self.chunker = chunker
        # What this build's own FAISS index is (a delta's is flat), and what the manifest records (the
        # configured index: a delta's manifest describes its base's).
        self.dense_index = DenseIndexConfig(pq_min_chunks=0, ann_min_chunks=0) if base is not None else dense_index
        self._recorded_index = dense_index
        self.base = base
        self.build_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
        self.path: Path | None = None
        self.manifest: dict[str, Any] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> BuildWriter:
        builds = builds_dir(self.index_dir)
        builds.mkdir(parents=True, exist_ok=True)
        self._builds = builds
        self._partial = builds / f"{self.build_id}.partial"
        self._stack.enter_context(_writer_lock(builds))
        try:
            _remove_debris(builds, self.index_dir)
            (self._partial / "dense").mkdir(parents=True)
            self._stack.callback(self._discard_unless_committed)
            self._records = RecordWriter(self._partial / RECORDS_FILE)
            self._spools = {
                info.id: (
                    # Closed by the exit stack (or by commit, before the spools are read back).
                    self._stack.enter_context(open(self._spool(info, "chunks"), "wb")),  # noqa: SIM115
                    self._stack.enter_context(open(self._spool(info, "sentences"), "wb")),  # noqa: SIM115
                )
                for info in self.embedders
            }
        except BaseException:
            self._stack.close()
            raise
        self._terms = TermIds()
        self._entries: list[dict[str, Any]] = []
        # One float32 a sentence (20 MB at 5 million sentences): held, written at commit.
        self._sentence_scales: dict[str, list[np.ndarray]] = {info.id: [] for info in self.embedders}
        return self

    def _discard_unless_committed(self) -> None:
        if self.path is None:
            records = getattr(self, "_records", None)
            if records is not None:
                records.close(commit=False)
            shutil.rmtree(self._partial, ignore_errors=True)

    def _spool(self, info: EmbedderInfo, kind: str) -> Path:
        return self._partial / "dense" / f"{vector_stem(info.id)}.{kind}.spool"

    def add(
        self,
        document: Document,
        stamp: dict[str, Any] | None,
        chunks: Sequence[Chunk],
        sentences: Sequence[Sentence],
        chunk_vectors: Mapping[str, np.ndarray],
        sentence_vectors: Mapping[str, np.ndarray],
        terms: Sequence[Sequence[str]],
    ) -> None:
        """Append one document with its chunks (vectors and BM25 terms, one per chunk) and sentences (vectors)."""
        for info in self.embedders:
            if chunk_vectors[info.id].shape != (len(chunks), info.dim) or sentence_vectors[info.id].shape != (
                len(sentences), info.dim
            ):
                raise ValueError(f"{document.doc_id}: {info.id} vectors do not match its chunks and sentences")
        if len(terms) != len(chunks):
            raise ValueError(f"{document.doc_id}: one list of BM25 terms per chunk is needed")
        self._records.add(document, chunks, sentences, terms)
        for info in self.embedders:
            chunk_spool, sentence_spool = self._spools[info.id]
            chunk_spool.write(np.ascontiguousarray(chunk_vectors[info.id], dtype=np.float32).tobytes())
            # int8 with a scale a row: a quarter of float32's bytes, a cosine moves by about 1e-3 (quantize_rows).
            codes, scales = quantize_rows(sentence_vectors[info.id])
            sentence_spool.write(codes.tobytes())
            self._sentence_scales[info.id].append(scales)
        for chunk_terms in terms:
            self._terms.add(chunk_terms)
        self._entries.append(document_entry(document, len(chunks), len(sentences), stamp))

    @property
    def chunks(self) -> int:
        """Chunks added so far."""
        return self._records.chunks

    @property
    def sentences(self) -> int:
        """Sentences added so far."""
        return self._records.sentences

    def commit(self) -> dict[str, Any]:
        """Finish the build (FAISS, BM25, manifest), make ``index_dir`` point at it and return its manifest."""
        import faiss

        self._records.close()
        for chunk_spool, sentence_spool in self._spools.values():
            chunk_spool.close()
            sentence_spool.close()
        dense = self._partial / "dense"
        for info in self.embedders:
            stem = vector_stem(info.id)
            chunk_vectors = _read_spool(self._spool(info, "chunks"), np.float32, self.chunks, info.dim)
            faiss.write_index(self.dense_index.build(chunk_vectors, info.dim), str(dense / f"{stem}.faiss"))
            if self.dense_index.separate_vectors(self.chunks):
                _write_quantized(chunk_vectors, dense / f"{stem}.{CHUNK_VECTORS}", dense / f"{stem}.{CHUNK_SCALES}")
            del chunk_vectors
            self._spool(info, "chunks").unlink()
            codes = _read_spool(self._spool(info, "sentences"), np.int8, self.sentences, info.dim)
            _write_npy(codes, dense / f"{stem}.{SENTENCE_VECTORS}", np.int8)
            del codes
            parts = self._sentence_scales[info.id]
            np.save(dense / f"{stem}.{SENTENCE_SCALES}", np.concatenate(parts) if parts else np.zeros(0, np.float32))
            self._spool(info, "sentences").unlink()
        lexical = LexicalIndex.from_ids(self._terms)
        lexical.save(self._partial / "bm25")
        contents = BuildContents(
            documents=self._entries, chunks=self.chunks, sentences=self.sentences, embedders=self.embedders,
            chunker=self.chunker, lexical=lexical.params, dense_index=self._recorded_index, base=self.base,
        )
        del lexical, self._terms
        manifest = build_manifest(contents, self.build_id)
        # The manifest goes last: a build without one is incomplete by definition.
        # Compact and by orjson: 82,645 document entries at 10^6 chunks, written by every run that adds one.
        base = manifest.get("base")
        (self._partial / BASE_FILE).write_text(str(base["build_id"]) if isinstance(base, dict) else "", encoding="utf-8")
        (self._partial / MANIFEST).write_bytes(manifest_bytes(manifest))
        final = self._builds / self.build_id
        os.replace(self._partial, final)
        _swap_link(self.index_dir, final)
        _prune(self._builds, keep=final, manifest=manifest)
        self.path, self.manifest = final, manifest
        return manifest

    def __exit__(self, *exc: object) -> None:
        # Closes the spools, drops the partial build unless committed, then releases the lock.
        self._stack.close()


def _read_spool(path: Path, dtype: type, rows: int, dim: int) -> np.ndarray:
    """The rows a spool file holds, memory-mapped (read as FAISS adds them, not loaded whole)."""
    if rows == 0:
        return np.zeros((0, dim), dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(rows, dim))


def _write_npy(
    rows: np.ndarray, target: Path, dtype: type, convert: Callable[[np.ndarray], np.ndarray] | None = None
) -> None:
    """Write ``rows`` (memory-mapped) as an ``.npy`` file of ``dtype``, a slice at a time (never whole in
    memory), each slice through ``convert`` when given (it must return ``dtype`` rows)."""
    with open(target, "wb") as out:
        np.lib.format.write_array_header_1_0(
            out, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": rows.shape}
        )
        for start in range(0, len(rows), 65_536):
            part = rows[start : start + 65_536]
            out.write(np.ascontiguousarray(convert(part) if convert else part, dtype=dtype).tobytes())


def _write_quantized(rows: np.ndarray, codes_target: Path, scales_target: Path) -> None:
    """Write ``rows`` (memory-mapped) as int8 codes and one scale a row (``quantize_rows``), a slice at a time."""
    scales: list[np.ndarray] = []

    def codes(part: np.ndarray) -> np.ndarray:
        quantised, part_scales = quantize_rows(part)
        scales.append(part_scales)
        return quantised

    _write_npy(rows, codes_target, np.int8, codes)
    np.save(scales_target, np.concatenate(scales) if scales else np.zeros(0, np.float32))


@contextlib.contextmanager
def _writer_lock(builds: Path) -> Iterator[None]:
    """One writer at a time per index (a second waits); the kernel drops the lock if the holder dies."""
    with open(builds / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_debris(builds: Path, index_dir: Path) -> None:
    """Partial builds and temporary links of runs that died (only called with the writer lock held)."""
    for partial in builds.glob("*.partial"):
        shutil.rmtree(partial, ignore_errors=True)
    for link in index_dir.parent.glob(f".{index_dir.name}.link-*"):
        link.unlink(missing_ok=True)


def _swap_link(index_dir: Path, target: Path) -> None:
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    if index_dir.exists() and not index_dir.is_symlink():
        # A plain directory from elsewhere: keep it as an old build rather than delete it.
        os.replace(index_dir, builds_dir(index_dir) / f"legacy-{uuid.uuid4().hex[:8]}")
    temporary = index_dir.parent / f".{index_dir.name}.link-{uuid.uuid4().hex[:8]}"
    os.symlink(os.path.relpath(target, index_dir.parent), temporary)
    os.replace(temporary, index_dir)  # atomic on POSIX


def _base_name(build: Path, manifest: dict[str, Any] | None) -> str:
    """The folder name of the base ``build`` stacks on ("" for a complete build): from its manifest when
    the caller holds it, else from its ``base.txt`` (its manifest for a build written before that file)."""
    if manifest is None and (build / BASE_FILE).exists():
        return (build / BASE_FILE).read_text(encoding="utf-8").strip()
    base = base_dir(build, manifest if manifest is not None else orjson.loads((build / MANIFEST).read_bytes()))
    return base.name if base is not None else ""


def _prune(builds: Path, keep: Path, manifest: dict[str, Any]) -> None:
    """Delete all but the newest ``KEEP_BUILDS`` builds and the bases they stack on (partial ones went in :func:`_remove_debris`).

    ``manifest`` is ``keep``'s (not read again: at 10^6 chunks a manifest is tens of megabytes).
    """
    # Newest last by modification time: names made within one second differ only by a random suffix.
    complete = sorted(
        (p for p in builds.iterdir() if p.is_dir() and not p.name.endswith(".partial")),
        key=lambda p: (p.stat().st_mtime_ns, p.name),
    )
    # By folder name: ``base_dir`` resolves links, ``builds`` may be relative, and a base kept under
    # another spelling of its path must not be deleted as unknown.
    kept = {keep.name, *(p.name for p in complete[-KEEP_BUILDS:])}
    for name in list(kept):
        try:
            base = _base_name(builds / name, manifest if name == keep.name else None)
        except (OSError, ValueError):
            continue
        if base:
            kept.add(base)
    for old in complete:
        if old.name not in kept:
            shutil.rmtree(old, ignore_errors=True)
