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
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from indexer.lexical import LexicalIndex
from indexer.store.format import (
    KEEP_BUILDS,
    MANIFEST,
    TERMS_FILE,
    DenseIndexConfig,
    IndexData,
    base_dir,
    build_manifest,
    builds_dir,
    vector_stem,
)
from indexer.store.records import RECORDS_FILE, write_records


def _write_jsonl_lists(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_index(index_dir: Path, data: IndexData) -> Path:
    """Write ``data`` as a new build and atomically make ``index_dir`` point at it."""
    builds = builds_dir(index_dir)
    builds.mkdir(parents=True, exist_ok=True)
    with _writer_lock(builds):
        _remove_debris(builds, index_dir)
        final = _write_build(builds, index_dir, data)
    data.path = final
    return final


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


def _write_build(builds: Path, index_dir: Path, data: IndexData) -> Path:
    import faiss

    build_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    partial = builds / f"{build_id}.partial"
    partial.mkdir()
    try:
        write_records(partial / RECORDS_FILE, data.documents.values(), data.chunks, data.sentences)
        dense = partial / "dense"
        dense.mkdir()
        # A delta's few vectors are stored flat: loading adds them to the base's index.
        own_index = DenseIndexConfig(ann_min_chunks=0) if data.base is not None else data.dense_index
        for info in data.embedders:
            index = own_index.build(data.chunk_vectors[info.id], info.dim)
            faiss.write_index(index, str(dense / f"{vector_stem(info.id)}.faiss"))
            # float16: half the bytes; a cosine moves by under 1e-3 (eval/README.md, "Vector storage").
            sentences = np.asarray(data.sentence_vectors[info.id], dtype=np.float16)
            np.save(dense / f"{vector_stem(info.id)}.sentences.npy", sentences)
        if not isinstance(data.lexical, LexicalIndex):
            raise TypeError("a build writes one BM25 index of its own rows, not a stacked one")
        data.lexical.save(partial / "bm25")
        if data.chunk_terms is not None:
            _write_jsonl_lists(partial / TERMS_FILE, data.chunk_terms)
        manifest = build_manifest(data, build_id)
        # The manifest goes last: a build without one is incomplete by definition.
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        final = builds / build_id
        os.replace(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _swap_link(index_dir, final)
    _prune(builds, keep=final)
    data.manifest = manifest
    return final


def _swap_link(index_dir: Path, target: Path) -> None:
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    if index_dir.exists() and not index_dir.is_symlink():
        # A plain directory from elsewhere: keep it as an old build rather than delete it.
        os.replace(index_dir, builds_dir(index_dir) / f"legacy-{uuid.uuid4().hex[:8]}")
    temporary = index_dir.parent / f".{index_dir.name}.link-{uuid.uuid4().hex[:8]}"
    os.symlink(os.path.relpath(target, index_dir.parent), temporary)
    os.replace(temporary, index_dir)  # atomic on POSIX


def _prune(builds: Path, keep: Path) -> None:
    """Delete all but the newest ``KEEP_BUILDS`` builds and the bases they stack on (partial ones went in :func:`_remove_debris`)."""
    # Newest last by modification time: names made within one second differ only by a random suffix.
    complete = sorted(
        (p for p in builds.iterdir() if p.is_dir() and not p.name.endswith(".partial")),
        key=lambda p: (p.stat().st_mtime_ns, p.name),
    )
    kept = {keep, *complete[-KEEP_BUILDS:]}
    for build in list(kept):
        try:
            base = base_dir(build, json.loads((build / MANIFEST).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
        if base is not None:
            kept.add(base)
    for old in complete:
        if old not in kept:
            shutil.rmtree(old, ignore_errors=True)
