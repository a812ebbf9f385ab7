"""The on-disk index: a self-describing directory, written atomically.

Layout of one build::

    manifest.json          format version, embedders (id, dim, version), chunker, documents (hashes)
    documents.jsonl        document records, including the text citations point into
    chunks.jsonl           chunk records (offsets, language, section, sentence range)
    sentences.jsonl        sentence records (offsets, language)
    dense/<embedder>.faiss       chunk vectors (inner product over L2-normalised vectors)
    dense/<embedder>.sentences.npy   sentence vectors, for picking answer sentences
    bm25/                  bm25s postings over language-stemmed chunk tokens

``index_dir`` itself is a symbolic link to the current build under ``<index_dir>.builds/``.
A new build is written completely beside the old one and the link is swapped with one
atomic ``rename``, so readers see either the old index or the new one, never a mix, and
an interrupted run leaves the previous index in place.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.chunks import Chunk, ChunkerConfig, Sentence
from indexer.documents import Document
from indexer.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from indexer.lexical import LexicalIndex

FORMAT = "tanya-index"
FORMAT_VERSION = 1
ANALYZER = "snowball-en-id/v1"
MANIFEST = "manifest.json"
KEEP_BUILDS = 2


@dataclass(frozen=True)
class EmbedderInfo:
    """What the manifest records about one dense encoder."""

    id: str
    dim: int
    version: str


@dataclass
class IndexData:
    """Everything one index build holds, in memory. Row ``i`` of every chunk matrix is ``chunks[i]``."""

    documents: dict[str, Document]
    chunks: list[Chunk]
    sentences: list[Sentence]
    embedders: list[EmbedderInfo]
    chunker: ChunkerConfig
    chunk_vectors: dict[str, np.ndarray]
    sentence_vectors: dict[str, np.ndarray]
    lexical: LexicalIndex
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        # Row of each document's first sentence, so chunk.first_sentence maps to a global row.
        self.sentence_base: dict[str, int] = {}
        for row, sentence in enumerate(self.sentences):
            if sentence.ordinal == 0:
                self.sentence_base[sentence.doc_id] = row
        self._faiss: dict[str, Any] = {}

    @property
    def build_id(self) -> str:
        """Identifier of this build (from the manifest)."""
        return str(self.manifest.get("build_id", ""))

    def sentence_rows(self, chunk: Chunk) -> slice:
        """Global sentence rows covered by ``chunk`` (a slice, usable on the sentence matrices)."""
        base = self.sentence_base[chunk.doc_id]
        return slice(base + chunk.first_sentence, base + chunk.last_sentence + 1)

    def faiss_index(self, embedder_id: str) -> Any:
        """An exact inner-product FAISS index over the chunk vectors (built once, then cached)."""
        if embedder_id not in self._faiss:
            import faiss

            vectors = self.chunk_vectors[embedder_id]
            index = faiss.IndexFlatIP(vectors.shape[1])
            if len(vectors):
                index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            self._faiss[embedder_id] = index
        return self._faiss[embedder_id]


def _slug(embedder_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", embedder_id)


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _builds_dir(index_dir: Path) -> Path:
    return index_dir.parent / f"{index_dir.name}.builds"


def document_fingerprint(doc: Document) -> str:
    """What must be unchanged for a document's chunks and vectors to be reused."""
    return f"{doc.sha256}:{doc.title}:{doc.lang}:{doc.format}"


def metadata_hash(doc: Document) -> str:
    """Hash of everything recorded about a document except its text (sidecar edits change it)."""
    import hashlib

    record = {k: v for k, v in doc.to_record().items() if k != "text"}
    return hashlib.sha256(json.dumps(record, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def build_manifest(data: IndexData, build_id: str) -> dict[str, Any]:
    """The manifest describing ``data``."""
    per_doc_chunks: dict[str, int] = {}
    for chunk in data.chunks:
        per_doc_chunks[chunk.doc_id] = per_doc_chunks.get(chunk.doc_id, 0) + 1
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "build_id": build_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "embedders": [asdict(e) for e in data.embedders],
        "chunker": data.chunker.to_record(),
        "lexical": {**data.lexical.params, "analyzer": ANALYZER},
        "counts": {
            "documents": len(data.documents),
            "chunks": len(data.chunks),
            "sentences": len(data.sentences),
        },
        "documents": [
            {
                "doc_id": doc.doc_id,
                "source": doc.source,
                "sha256": doc.sha256,
                "fingerprint": document_fingerprint(doc),
                "metadata_hash": metadata_hash(doc),
                "chunks": per_doc_chunks.get(doc.doc_id, 0),
            }
            for doc in data.documents.values()
        ],
    }


def write_index(index_dir: Path, data: IndexData) -> Path:
    """Write ``data`` as a new build and atomically make ``index_dir`` point at it."""
    import faiss

    builds = _builds_dir(index_dir)
    builds.mkdir(parents=True, exist_ok=True)
    build_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    partial = builds / f"{build_id}.partial"
    partial.mkdir()
    try:
        _write_jsonl(partial / "documents.jsonl", [d.to_record() for d in data.documents.values()])
        _write_jsonl(partial / "chunks.jsonl", [asdict(c) for c in data.chunks])
        _write_jsonl(partial / "sentences.jsonl", [asdict(s) for s in data.sentences])
        dense = partial / "dense"
        dense.mkdir()
        for info in data.embedders:
            index = faiss.IndexFlatIP(info.dim)
            vectors = np.ascontiguousarray(data.chunk_vectors[info.id], dtype=np.float32)
            if len(vectors):
                index.add(vectors)
            faiss.write_index(index, str(dense / f"{_slug(info.id)}.faiss"))
            np.save(dense / f"{_slug(info.id)}.sentences.npy", data.sentence_vectors[info.id])
        data.lexical.save(partial / "bm25")
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
    data.path = final
    return final


def _swap_link(index_dir: Path, target: Path) -> None:
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    if index_dir.exists() and not index_dir.is_symlink():
        # A plain directory from elsewhere: keep it as an old build rather than delete it.
        os.replace(index_dir, _builds_dir(index_dir) / f"legacy-{uuid.uuid4().hex[:8]}")
    temporary = index_dir.parent / f".{index_dir.name}.link-{uuid.uuid4().hex[:8]}"
    os.symlink(os.path.relpath(target, index_dir.parent), temporary)
    os.replace(temporary, index_dir)  # atomic on POSIX


def _prune(builds: Path, keep: Path) -> None:
    """Delete all but the newest ``KEEP_BUILDS`` complete builds, and stale partial ones."""
    # Newest last by modification time: names made within one second differ only by a random suffix.
    complete = sorted(
        (p for p in builds.iterdir() if p.is_dir() and not p.name.endswith(".partial")),
        key=lambda p: (p.stat().st_mtime_ns, p.name),
    )
    for old in complete[:-KEEP_BUILDS]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
    for partial in builds.glob("*.partial"):
        if time.time() - partial.stat().st_mtime > 3600:
            shutil.rmtree(partial, ignore_errors=True)


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The manifest of the current build; raises :class:`IndexNotFoundError` if there is none."""
    path = index_dir / MANIFEST
    if not path.exists():
        raise IndexNotFoundError(f"no index at {index_dir}; run 'tanya index' first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"cannot read {path}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"{path} is not a manifest object")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index at {index_dir} has format {manifest.get('format')!r} v{manifest.get('format_version')}, "
            f"this Tanya reads {FORMAT!r} v{FORMAT_VERSION}; rebuild it with 'tanya index'"
        )
    return manifest


def check_compatible(
    manifest: dict[str, Any], embedders: list[EmbedderInfo], chunker: ChunkerConfig, index_dir: Path
) -> None:
    """Refuse an index built with other embedders or chunker parameters, saying what differs."""
    try:
        built = [EmbedderInfo(**e) for e in manifest.get("embedders", [])]
    except TypeError as exc:
        raise IndexCorruptError(f"index at {index_dir}: malformed embedder entries in the manifest ({exc})") from exc
    if [e.id for e in built] != [e.id for e in embedders]:
        raise IndexMismatchError(
            f"index at {index_dir} was built with embedders {[e.id for e in built]}, "
            f"but the settings ask for {[e.id for e in embedders]}; re-run 'tanya index' or change TANYA_EMBEDDERS"
        )
    for have, want in zip(built, embedders, strict=True):
        if (have.dim, have.version) != (want.dim, want.version):
            raise IndexMismatchError(
                f"index at {index_dir} holds {have.id} vectors from {have.version} (dim {have.dim}), "
                f"but the installed model is {want.version} (dim {want.dim}); re-run 'tanya index'"
            )
    if manifest.get("chunker") != chunker.to_record():
        raise IndexMismatchError(
            f"index at {index_dir} was chunked with {manifest.get('chunker')}, "
            f"but the settings ask for {chunker.to_record()}; re-run 'tanya index'"
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
        for info in infos:
            index = faiss.read_index(str(root / "dense" / f"{_slug(info.id)}.faiss"))
            chunk_vectors[info.id] = (
                index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, info.dim), np.float32)
            )
            sentence_vectors[info.id] = np.load(root / "dense" / f"{_slug(info.id)}.sentences.npy")
        lexical = LexicalIndex.load(root / "bm25")
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexCorruptError(f"index at {index_dir} is incomplete or damaged: {exc}") from exc
    for info in infos:
        if len(chunk_vectors[info.id]) != len(chunks) or len(sentence_vectors[info.id]) != len(sentences):
            raise IndexCorruptError(f"index at {index_dir}: {info.id} vectors do not match the chunk records")
    return IndexData(
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
