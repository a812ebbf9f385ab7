"""The index format: its layout on disk, the manifest, and the compatibility checks.

Writing lives in ``indexer.store.writer``, loading in ``indexer.store.reader``.

Layout of one build::

    manifest.json          format version, embedders (id, dim, version), chunker, documents (hashes)
    documents.jsonl        document records, including the text citations point into
    chunks.jsonl           chunk records (offsets, language, section, sentence range)
    sentences.jsonl        sentence records (offsets, language)
    dense/<embedder>.faiss       chunk vectors (inner product over L2-normalised vectors)
    dense/<embedder>.sentences.npy   sentence vectors, for picking answer sentences
    bm25/                  bm25s postings over language-stemmed chunk tokens

``index_dir`` itself is a symbolic link to the current build under ``<index_dir>.builds/``
(see ``writer`` for the atomic swap).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.chunks import Chunk, ChunkerConfig, Sentence
from indexer.documents import Document
from indexer.embedders import Embedder
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
    #: Per document id, the file stamp it was read from (``documents.file_stamp``), for the next run.
    stamps: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: BM25 terms of each chunk (the analyser's output), kept so the next build does not analyse unchanged
    #: chunks again; ``None`` when not at hand (a loaded build reads them only when building).
    chunk_terms: list[list[str]] | None = None
    #: The FAISS index type a build writes for its chunk vectors (recorded in the manifest).
    dense_index: DenseIndexConfig = field(default_factory=lambda: DenseIndexConfig())

    def __post_init__(self) -> None:
        # Row of each document's first sentence, so chunk.first_sentence maps to a global row.
        self.sentence_base: dict[str, int] = {}
        for row, sentence in enumerate(self.sentences):
            if sentence.ordinal == 0:
                self.sentence_base[sentence.doc_id] = row
        self._faiss: dict[str, Any] = {}
        self._spans: tuple[np.ndarray, np.ndarray] | None = None

    def sentence_spans(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For chunk ``rows``: every sentence row they cover, and the position in ``rows`` each belongs to.

        Vectorised over a whole candidate pool (a Python loop over 1,000 chunks cost more than the search).
        """
        if self._spans is None:
            starts = np.array([self.sentence_rows(c).start for c in self.chunks], dtype=np.int64)
            stops = np.array([self.sentence_rows(c).stop for c in self.chunks], dtype=np.int64)
            self._spans = (starts, stops)
        starts, stops = self._spans[0][rows], self._spans[1][rows]
        lengths = stops - starts
        owner = np.repeat(np.arange(len(rows)), lengths)
        # Position of each sentence inside its chunk: 0, 1, ... restarting at every chunk.
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return np.repeat(starts, lengths) + within, owner

    @property
    def build_id(self) -> str:
        """Identifier of this build (from the manifest)."""
        return str(self.manifest.get("build_id", ""))

    def sentence_rows(self, chunk: Chunk) -> slice:
        """Global sentence rows covered by ``chunk`` (a slice, usable on the sentence matrices)."""
        base = self.sentence_base[chunk.doc_id]
        return slice(base + chunk.first_sentence, base + chunk.last_sentence + 1)

    def adopt_faiss(self, embedder_id: str, index: Any) -> None:
        """Use ``index`` (read from disk, holding ``chunk_vectors[embedder_id]``) for searches."""
        self._faiss[embedder_id] = index

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


@dataclass(frozen=True)
class DenseIndexConfig:
    """Which FAISS index holds the chunk vectors: exact below ``ann_min_chunks``, HNSW from there on.

    Exact search is linear in the index (11 of 13.5 ms a query at 10^5 chunks, bench/scale.py);
    HNSW answers in about 1-2 ms at 10^5 with recall@10 0.88-0.92 against exact on the
    benchmark's fake vectors (ef_search 600), so it is used only where exact search is too slow.
    """

    ann_min_chunks: int = 200_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 100

    def kind(self, chunks: int) -> str:
        """``"flat"`` or ``"hnsw"`` for an index of ``chunks`` vectors."""
        return "hnsw" if 0 < self.ann_min_chunks <= chunks else "flat"

    def describe(self, chunks: int) -> dict[str, Any]:
        """The manifest's record of the index type and its parameters."""
        if self.kind(chunks) == "flat":
            return {"type": "flat", "metric": "inner_product"}
        return {"type": "hnsw", "metric": "inner_product", "m": self.hnsw_m, "ef_construction": self.hnsw_ef_construction}

    def build(self, vectors: np.ndarray, dim: int) -> Any:
        """A FAISS index over ``vectors`` (L2-normalised, so inner product is cosine)."""
        import faiss

        index: Any
        if self.kind(len(vectors)) == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.hnsw_ef_construction
        else:
            index = faiss.IndexFlatIP(dim)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return index


def flat_vectors(index: Any) -> np.ndarray:
    """A view (no copy) of the float32 vectors an ``IndexFlat`` or ``IndexHNSWFlat`` holds."""
    import faiss

    flat: Any = faiss.downcast_index(index.storage) if hasattr(index, "hnsw") else index
    if not index.ntotal:
        return np.zeros((0, index.d), np.float32)
    return faiss.rev_swig_ptr(flat.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)


def vector_stem(embedder_id: str) -> str:
    """File-name stem of an encoder's vector files (its id, made safe for a file name)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", embedder_id)


def builds_dir(index_dir: Path) -> Path:
    """Where the builds behind the ``index_dir`` link live."""
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
        "dense_index": data.dense_index.describe(len(data.chunks)),
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
                "stamp": data.stamps.get(doc.doc_id),
            }
            for doc in data.documents.values()
        ],
    }


def missing_files(index_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """The files a build needs that are not there (a cheap check: existence only, nothing parsed)."""
    needed = ["documents.jsonl", "chunks.jsonl", "sentences.jsonl", "bm25"]
    for entry in manifest.get("embedders", []):
        stem = vector_stem(str(entry.get("id", "")))
        needed += [f"dense/{stem}.faiss", f"dense/{stem}.sentences.npy"]
    return [name for name in needed if not (index_dir / name).exists()]


#: One JSON list of BM25 terms per chunk, in row order (absent from builds made before it existed).
TERMS_FILE = "bm25-terms.jsonl"


def read_terms(index_dir: Path, rows: int) -> list[list[str]] | None:
    """The chunk terms a build kept, or ``None`` if it has none (or not one list per chunk)."""
    try:
        with open(index_dir / TERMS_FILE, encoding="utf-8") as handle:
            terms = [json.loads(line) for line in handle]
    except (OSError, ValueError):
        return None
    return terms if len(terms) == rows else None


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


def embedder_infos(embedders: Sequence[Embedder]) -> list[EmbedderInfo]:
    """Manifest entries for live embedders."""
    return [EmbedderInfo(e.id, int(e.dim), e.version) for e in embedders]
