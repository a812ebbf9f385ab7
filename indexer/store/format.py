"""The index format: its layout on disk, the manifest, and the compatibility checks.

Writing lives in ``indexer.store.writer``, loading in ``indexer.store.reader``.

Layout of one build::

    manifest.json          format version, embedders (id, dim, version), chunker, documents (hashes)
    records.sqlite         documents (with the text citations point into), chunks (offsets, language,
                           section, sentence range), sentences (offsets, language), read on demand, and
                           each chunk's analysed BM25 terms, so the next build need not analyse it again
                           (format 1 had documents.jsonl, chunks.jsonl and sentences.jsonl instead)
    dense/<embedder>.faiss       chunk vectors (inner product over L2-normalised vectors)
    dense/<embedder>.sentences.npy   sentence vectors, for picking answer sentences: int8 codes (format 3;
                                     float16 rows in format 2, float32 before)
    dense/<embedder>.sentences.scales.npy   one float32 scale a sentence (format 3: row = codes × scale)
    dense/<embedder>.chunks.npy      chunk vectors, where the FAISS index holds only quantised codes (PQ, IVF, HNSW):
                                     int8 codes (format 4; float16 rows before)
    dense/<embedder>.chunks.scales.npy      one float32 scale a chunk vector (format 4)
    bm25/                  bm25s postings over language-stemmed chunk tokens
    base.txt               the base build's id for a delta build, empty for a complete one (read by pruning)

``index_dir`` itself is a symbolic link to the current build under ``<index_dir>.builds/``
(see ``writer`` for the atomic swap).

**Delta builds** (format 2) make a small change cost its own size. Such a build holds only the
documents added or changed since a *base* (a complete build, kept beside it), in the same
files, and its manifest names the base and the base documents that are gone (``base.deleted``).
Loading stacks the two: base rows first, then the delta's, with the deleted documents' rows
masked out (``IndexData.live``). BM25 scores use statistics of both parts (see
``indexer.lexical.SegmentedLexical``). When the delta grows past a share of its base, the next
run writes a complete build again (``indexer.pipeline``).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from indexer.chunks import Chunk, ChunkerConfig, Sentence
from indexer.documents import Document
from indexer.embedders import Embedder
from indexer.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from indexer.lexical import LexicalIndex, SegmentedLexical
from indexer.store.records import RECORDS_FILE, column, document_summaries, first_sentence_rows

FORMAT = "tanya-index"
FORMAT_VERSION = 4
#: Versions this code reads (1: records in JSON lines, no delta builds; 2: float16 sentence vectors;
#: 3: int8 sentence vectors with one scale a row; 4: the chunk vectors beside a quantised index too).
READABLE_VERSIONS = (1, 2, 3, 4)
#: The record files of format 1 (format 2 has ``records.sqlite``).
JSONL_RECORDS = ["documents.jsonl", "chunks.jsonl", "sentences.jsonl"]
ANALYZER = "snowball-en-id/v1"
MANIFEST = "manifest.json"
#: Beside the manifest: the base build's id for a delta, empty for a complete build. Pruning old
#: builds reads this instead of their manifests (tens of megabytes at 10^6 chunks).
BASE_FILE = "base.txt"
#: Chunk vectors beside a FAISS index that holds quantised codes (PQ, IVF, HNSW sq8): int8 codes (format 4;
#: float16 rows before) and one float32 scale a row. The retriever rescores what the index finds with them.
CHUNK_VECTORS = "chunks.npy"
CHUNK_SCALES = "chunks.scales.npy"
#: Sentence vectors: int8 codes (format 3; float16 rows in format 2) and, beside them, one float32 scale a row.
SENTENCE_VECTORS = "sentences.npy"
SENTENCE_SCALES = "sentences.scales.npy"
KEEP_BUILDS = 2


class StackedRows:
    """Rows of several matrices as one (a base build's memory-mapped rows, then its delta's), never copied whole.

    Supports what the search reads: one row, a slice or an array of rows, ``len`` and ``shape``.
    """

    def __init__(self, parts: Sequence[np.ndarray | QuantizedRows]) -> None:
        self.parts = list(parts)
        self.offsets = np.cumsum([0, *(len(p) for p in self.parts)])
        self.dtype = np.result_type(*(p.dtype for p in self.parts))
        self.shape = (int(self.offsets[-1]), *self.parts[0].shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            row = int(key) + len(self) if key < 0 else int(key)
            which = int(np.searchsorted(self.offsets, row, side="right")) - 1
            if not 0 <= row < len(self):
                raise IndexError(f"row {key} out of range for {len(self)} rows")
            return np.asarray(self.parts[which][row - self.offsets[which]])
        rows = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key, dtype=np.int64)
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        for part, mine, local in self.split(rows):
            out[mine] = part[local]
        return out

    def split(self, rows: np.ndarray) -> Iterator[tuple[np.ndarray | QuantizedRows, np.ndarray, np.ndarray]]:
        """For each part holding some of ``rows``: the part, which of ``rows`` it holds (a mask), their rows in it."""
        rows = np.asarray(rows, dtype=np.int64)
        owner = np.searchsorted(self.offsets, rows, side="right") - 1
        for i, part in enumerate(self.parts):
            mine = owner == i
            if mine.any():
                yield part, mine, rows[mine] - self.offsets[i]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = np.concatenate([np.asarray(p, dtype=self.dtype) for p in self.parts])
        return whole if dtype is None else whole.astype(dtype)

    def __matmul__(self, other: np.ndarray) -> np.ndarray:
        return np.asarray(self) @ other


def quantize_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes and one float32 scale per row (``row ≈ codes × scale``; the largest component is ±127).

    For unit vectors a cosine moves by about 1e-3 at most (tests/indexer/test_store.py), and
    converting int8 rows to float32 is several times faster than float16 rows: the sentence
    pool's product was most of a query's retrieval time at 10^4 chunks.
    """
    values = np.asarray(rows, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError("quantize_rows wants a matrix")
    peak = np.abs(values).max(axis=1) if len(values) else np.zeros(0, np.float32)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(values / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales


class QuantizedRows:
    """int8 codes with a float32 scale per row, read as float32 rows (``codes × scale``), never expanded whole
    except by ``np.asarray`` or a product with the whole matrix.

    Supports what :class:`StackedRows` supports: one row, a slice or an array of rows, ``len`` and ``shape``.
    """

    dtype = np.dtype(np.float32)

    def __init__(self, codes: np.ndarray, scales: np.ndarray) -> None:
        if len(codes) != len(scales):
            raise ValueError(f"{len(codes)} rows of codes but {len(scales)} scales")
        # Plain views of memory-mapped files (still mapped, never read whole): np.memmap's own indexing
        # costs about 70 µs a read, four reads a query (bench/scale.py at 10^5 chunks).
        self.codes = codes.view(np.ndarray) if isinstance(codes, np.memmap) else codes
        self.scales = scales.view(np.ndarray) if isinstance(scales, np.memmap) else scales
        self.shape = codes.shape

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        codes = np.asarray(self.codes[key], dtype=np.float32)
        scales = np.asarray(self.scales[key], dtype=np.float32)
        return codes * scales if codes.ndim == 1 else codes * scales[:, None]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def __matmul__(self, other: np.ndarray) -> np.ndarray:
        product = np.asarray(self.codes, dtype=np.float32) @ other
        return product * (self.scales if product.ndim == 1 else self.scales[:, None])


def row_scores(matrix: StackedRows | QuantizedRows | np.ndarray, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix[rows] @ vector`` in float32, reading only those rows (int8 codes are scaled after the product)."""
    if isinstance(matrix, QuantizedRows):
        return (np.asarray(matrix.codes[rows], dtype=np.float32) @ vector) * matrix.scales[rows]
    if isinstance(matrix, StackedRows):  # each part's rows through its own fast path
        out = np.empty(len(rows), dtype=np.float32)
        for part, mine, local in matrix.split(rows):
            out[mine] = row_scores(part, local, vector)
        return out
    return np.asarray(matrix[rows], dtype=np.float32) @ vector


#: A matrix of rows: an array (memory-mapped or not), int8 codes with scales, or a base's rows stacked with a delta's.
RowMatrix = np.ndarray | StackedRows | QuantizedRows


@dataclass(frozen=True)
class EmbedderInfo:
    """What the manifest records about one dense encoder."""

    id: str
    dim: int
    version: str


@dataclass
class IndexData:
    """Everything one index build holds, in memory. Row ``i`` of every chunk matrix is ``chunks[i]``."""

    #: By id. A loaded build reads records on demand (``indexer.store.records``); a new one holds lists.
    documents: Mapping[str, Document]
    chunks: Sequence[Chunk]
    sentences: Sequence[Sentence]
    embedders: list[EmbedderInfo]
    chunker: ChunkerConfig
    chunk_vectors: dict[str, RowMatrix]
    sentence_vectors: dict[str, RowMatrix]
    lexical: LexicalIndex | SegmentedLexical
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    #: Which chunk rows and sentence rows are current (``None``: all): a loaded delta build keeps the
    #: rows of base documents it deleted or replaced, masked out here.
    live: np.ndarray | None = None
    sentence_live: np.ndarray | None = None

    def __post_init__(self) -> None:
        # Row of each document's first sentence, so chunk.first_sentence maps to a global row.
        # A delta's rows come after its base's, so a replaced document's current rows win.
        self.sentence_base: dict[str, int] = {}
        for row, doc_id in first_sentence_rows(self.sentences):
            if self.sentence_live is None or self.sentence_live[row]:
                self.sentence_base[doc_id] = row
        self._faiss: dict[str, Any] = {}
        self._spans: tuple[np.ndarray, np.ndarray] | None = None
        self._held: list[Any] = []

    def hold(self, owner: Any) -> None:
        """Keep ``owner`` alive as long as this index: some of its arrays view memory ``owner`` holds
        (a delta's flat FAISS storage, stacked under its base's rows), which would be freed with it."""
        self._held.append(owner)

    def document_summaries(self) -> Iterator[Document]:
        """Every current document, read without its text where the store can (``text`` then empty)."""
        return document_summaries(self.documents)

    @property
    def live_chunks(self) -> int:
        """How many chunks are current (rows of deleted documents not counted)."""
        return len(self.chunks) if self.live is None else int(self.live.sum())

    @property
    def live_sentences(self) -> int:
        """How many sentences are current."""
        return len(self.sentences) if self.sentence_live is None else int(self.sentence_live.sum())

    def live_chunk(self, row: int) -> bool:
        """Whether chunk ``row`` belongs to a current document."""
        return self.live is None or bool(self.live[row])

    def live_sentence(self, row: int) -> bool:
        """Whether sentence ``row`` belongs to a current document."""
        return self.sentence_live is None or bool(self.sentence_live[row])

    def sentence_spans(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For chunk ``rows``: every sentence row they cover, and the position in ``rows`` each belongs to.

        Vectorised over a whole candidate pool (a Python loop over 1,000 chunks cost more than the search).
        """
        if self._spans is None:
            # Three columns of every chunk (read once; a loaded build does not hold chunk objects).
            bases = np.array([self.sentence_base.get(d, 0) for d in column(self.chunks, "doc_id")], dtype=np.int64)
            starts = bases + np.array(column(self.chunks, "first_sentence"), dtype=np.int64)
            stops = bases + np.array(column(self.chunks, "last_sentence"), dtype=np.int64) + 1
            if self.live is not None:  # a masked chunk (of a deleted document) covers no sentence
                starts[~self.live] = 0
                stops[~self.live] = 0
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
class DeltaBase:
    """What a delta build records about its base: the build, and the base documents it no longer has."""

    build_id: str
    #: Base documents removed or replaced since the base was written.
    deleted: list[str]
    #: The manifest entries of the base documents still current (for the next run's change check), as
    #: the delta's manifest writes them (``"segment": "base"``).
    documents: list[dict[str, Any]]
    #: Chunks in the base (current and deleted).
    chunks: int
    #: The base's FAISS index type (its manifest's ``dense_index``).
    dense_index: dict[str, Any] = field(default_factory=dict)
    #: Base chunks of the deleted documents (masked rows the next merge drops).
    deleted_chunks: int = 0


#: The fewest vectors an approximate index is built over: k-means needs at least as many points as
#: centroids (16 per 4-bit PQ code; IVF's 4·sqrt(N) lists, a power of two, exceed N below 16). FAISS
#: refuses fewer, and a build with ``TANYA_PQ_MIN_CHUNKS=1`` over a handful of chunks failed.
QUANTISED_MIN_ROWS = 16


@dataclass(frozen=True)
class DenseIndexConfig:
    """Which FAISS index holds the chunk vectors, by size: exact, then fast-scan PQ, then IVF (or HNSW).

    - **Exact** (``IndexFlatIP``) below ``pq_min_chunks``: one matrix-vector product over every
      chunk, linear in the index (7 ms at 10^5 chunks, bench/scale.py).
    - **Fast-scan PQ** (``IndexPQFastScan``) from ``pq_min_chunks``: every chunk is still scored,
      but from 4-bit product-quantiser codes (a nibble per two dimensions: 96 bytes a 384-dim
      vector) that FAISS scans with SIMD lookup tables. The retriever rescores the best
      ``PQ_RESCORE`` with the vectors stored beside the index, so the scores it returns are exact
      to about 1e-3 (their int8 rounding). At 10^5 of the benchmark's fake vectors, one thread:
      0.85 ms a query and recall@10 against exact 0.966 (exact search 6 ms; HNSW at efSearch 600
      3.5 ms and 0.963).
    - **IVF** over the same fast-scan codes (``IndexIVFPQFastScan``) from ``ann_min_chunks``, where
      scanning every code grows too slow (9.4 ms at 10^6): about 4·sqrt(N) lists (a power of two),
      of which the retriever probes a quarter, at most 512 (``service.qa.retrieval.ivf_probes``: recall@10
      0.962 and 0.957 on real USE-m3 vectors at 4·10^5 and 10^6 chunks, ``make bench-ann-recall``). At 10^6 fake vectors, 4,096 lists, 256
      probed and 1,000 rescored: recall@10 0.857 in 1.7 / 3.4 ms (p50 / p95), where HNSW reached
      0.883 in 5.2 / 12 ms; 96 bytes a vector where HNSW's graph and 8-bit codes take about 800.
    - **HNSW** instead of IVF with ``ann_index="hnsw"``: M 48 / efConstruction 200, 8-bit
      scalar-quantised codes ("sq8") or float32 ("flat"); at 10^5 fake vectors and the retriever's
      efSearch 600, recall@10 0.954 in 3.0 ms (M 32 / 100 built in 18 instead of 41 s but reached 0.922).

    The quantised kinds store the chunk vectors beside the index as int8 codes with a scale a row
    (``dense/<embedder>.chunks.npy``, memory-mapped: only the rescored rows are read). Not float16:
    converting a thousand float16 rows to float32 took 1.4 ms, int8 ones 0.25 ms (numpy 2.4 here).
    """

    #: Chunks from which fast-scan PQ replaces exact search (0: never); ``TANYA_PQ_MIN_CHUNKS``.
    pq_min_chunks: int = 50_000
    #: Chunks from which an approximate index (``ann_index``) is used (0: never); ``TANYA_ANN_MIN_CHUNKS``.
    ann_min_chunks: int = 200_000
    #: "ivf" or "hnsw"; ``TANYA_ANN_INDEX``.
    ann_index: str = "ivf"
    hnsw_m: int = 48
    hnsw_ef_construction: int = 200
    #: "sq8" or "flat" (float32 codes, no separate vectors); ``TANYA_HNSW_STORAGE``.
    hnsw_storage: str = "sq8"
    #: Rows a quantiser (SQ8's ranges, PQ's codebooks) is learnt from (evenly spaced through the build);
    #: IVF's k-means takes at least 40 a list.
    sq_train_rows: int = 100_000

    def separate_vectors(self, chunks: int) -> bool:
        """Whether the chunk vectors are stored beside the FAISS index (it holds only quantised codes)."""
        return stores_separate_vectors(self.describe(chunks))

    def kind(self, chunks: int) -> str:
        """``"flat"``, ``"pq"``, ``"ivf"`` or ``"hnsw"`` for an index of ``chunks`` vectors (always flat below
        ``QUANTISED_MIN_ROWS``, whatever the thresholds say)."""
        if chunks < QUANTISED_MIN_ROWS:
            return "flat"
        if 0 < self.ann_min_chunks <= chunks:
            if self.ann_index not in ("ivf", "hnsw"):
                raise ValueError(f"unknown approximate index {self.ann_index!r} (ivf or hnsw)")
            return self.ann_index
        return "pq" if 0 < self.pq_min_chunks <= chunks else "flat"

    @staticmethod
    def ivf_lists(chunks: int) -> int:
        """IVF's list count for ``chunks`` vectors: the power of two nearest 4·sqrt(chunks)."""
        return int(2 ** round(math.log2(max(1.0, 4 * math.sqrt(chunks)))))

    def describe(self, chunks: int) -> dict[str, Any]:
        """The manifest's record of the index type and its parameters."""
        kind = self.kind(chunks)
        codes = {"bits": 4, "dims_per_code": 2, "fast_scan": True}
        if kind == "flat":
            return {"type": "flat", "metric": "inner_product"}
        if kind == "pq":
            return {"type": "pq", "metric": "inner_product", **codes}
        if kind == "ivf":
            return {"type": "ivf", "metric": "inner_product", "lists": self.ivf_lists(chunks), **codes}
        return {
            "type": "hnsw", "metric": "inner_product", "m": self.hnsw_m, "ef_construction": self.hnsw_ef_construction,
            "storage": self.hnsw_storage,
        }

    def build(self, vectors: np.ndarray, dim: int) -> Any:
        """A FAISS index over ``vectors`` (L2-normalised, so inner product is cosine)."""
        import faiss

        index: Any
        step = max(1, len(vectors) // self.sq_train_rows)
        kind = self.kind(len(vectors))
        if kind == "hnsw":
            if self.hnsw_storage == "sq8":
                quantiser = faiss.ScalarQuantizer.QT_8bit  # an enum value; the stubs type it as the class
                index = faiss.IndexHNSWSQ(dim, quantiser, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)  # type: ignore[arg-type]
                index.train(np.ascontiguousarray(vectors[::step], dtype=np.float32))
            elif self.hnsw_storage == "flat":
                index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            else:
                raise ValueError(f"unknown HNSW storage {self.hnsw_storage!r} (sq8 or flat)")
            index.hnsw.efConstruction = self.hnsw_ef_construction
        elif kind in ("pq", "ivf"):
            # Two dimensions a 4-bit code (one for an odd dimension): 192 codes for E5's 384, 256 for USE's 512.
            codes = dim // 2 if dim % 2 == 0 else dim
            if kind == "pq":
                index = faiss.IndexPQFastScan(dim, codes, 4, faiss.METRIC_INNER_PRODUCT)
            else:
                lists = self.ivf_lists(len(vectors))
                step = max(1, len(vectors) // max(self.sq_train_rows, 40 * lists))
                index = faiss.IndexIVFPQFastScan(faiss.IndexFlatIP(dim), dim, lists, codes, 4, faiss.METRIC_INNER_PRODUCT)
            index.train(np.ascontiguousarray(vectors[::step], dtype=np.float32))
        else:
            index = faiss.IndexFlatIP(dim)
        # In slices: ``vectors`` may be a memory-mapped spool (indexer.store.writer) larger than memory allows twice.
        for start in range(0, len(vectors), 65_536):
            index.add(np.ascontiguousarray(vectors[start : start + 65_536], dtype=np.float32))
        return index


def stores_separate_vectors(dense_index: Mapping[str, Any]) -> bool:
    """Whether a build with this manifest ``dense_index`` keeps its chunk vectors beside its FAISS index."""
    kind = dense_index.get("type")
    return kind in ("pq", "ivf") or (kind == "hnsw" and dense_index.get("storage") == "sq8")


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


def document_entry(doc: Document, chunks: int, sentences: int, stamp: dict[str, Any] | None) -> dict[str, Any]:
    """What the manifest records about one document of a build (for the next run's change check)."""
    return {
        "doc_id": doc.doc_id,
        "source": doc.source,
        "sha256": doc.sha256,
        "fingerprint": document_fingerprint(doc),
        "metadata_hash": metadata_hash(doc),
        "chunks": chunks,
        "sentences": sentences,
        "stamp": stamp,
    }


@dataclass(frozen=True)
class BuildContents:
    """What a finished build holds, as the manifest describes it."""

    documents: list[dict[str, Any]]  # :func:`document_entry` per document, in order
    chunks: int
    sentences: int
    embedders: list[EmbedderInfo]
    chunker: ChunkerConfig
    lexical: dict[str, Any]
    dense_index: DenseIndexConfig
    base: DeltaBase | None = None


def build_manifest(contents: BuildContents, build_id: str) -> dict[str, Any]:
    """The manifest describing a build (and, for a delta build, its base)."""
    own = contents.documents
    counts = {"documents": len(own), "chunks": contents.chunks, "sentences": contents.sentences}
    extra: dict[str, Any] = {}
    if contents.base is not None:
        base = contents.base
        own = [{**entry, "segment": "delta"} for entry in own]
        kept = base.documents
        counts = {
            "documents": len(kept) + len(own),
            "chunks": sum(int(e.get("chunks", 0)) for e in kept) + contents.chunks,
            "sentences": sum(int(e.get("sentences", 0)) for e in kept) + contents.sentences,
            "delta_chunks": contents.chunks,
            "base_chunks": base.chunks,
        }
        extra = {
            "base": {"build_id": base.build_id, "deleted": base.deleted, "deleted_chunks": base.deleted_chunks},
            "dense_index": {**base.dense_index, "delta": "flat"},
        }
        own = kept + own
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "build_id": build_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "embedders": [asdict(e) for e in contents.embedders],
        "chunker": contents.chunker.to_record(),
        "lexical": {**contents.lexical, "analyzer": ANALYZER},
        "dense_index": contents.dense_index.describe(contents.chunks),
        "counts": counts,
        **extra,
        "documents": own,
    }


def missing_files(index_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """The files a build needs that are not there (a cheap check: existence only, nothing parsed)."""
    version = manifest.get("format_version", FORMAT_VERSION)
    records = [RECORDS_FILE] if version >= 2 else JSONL_RECORDS
    needed = [*records, "bm25"]
    separate = []  # chunk vectors beside an index of quantised codes (a delta's are in its flat index)
    scales: list[str] = []  # this build's own (a base written by format 2 has float16 sentence rows instead)
    for entry in manifest.get("embedders", []):
        stem = vector_stem(str(entry.get("id", "")))
        needed += [f"dense/{stem}.faiss", f"dense/{stem}.{SENTENCE_VECTORS}"]
        if version >= 3:
            scales.append(f"dense/{stem}.{SENTENCE_SCALES}")
        separate.append(f"dense/{stem}.{CHUNK_VECTORS}")
        if version >= 4:
            separate.append(f"dense/{stem}.{CHUNK_SCALES}")
    if not stores_separate_vectors(manifest.get("dense_index", {})):
        separate = []
    base = base_dir(index_dir, manifest)
    own = (needed if base is not None else needed + separate) + scales
    missing = [name for name in own if not (index_dir / name).exists()]
    if base is not None:
        missing += [
            f"base {base.name}: {name}" for name in [*needed, *separate, MANIFEST] if not (base / name).exists()
        ]
    return missing


def base_dir(build_dir: Path, manifest: dict[str, Any]) -> Path | None:
    """The folder of a delta build's base (``None`` for a complete build)."""
    base = manifest.get("base")
    if not isinstance(base, dict):
        return None
    return build_dir.resolve().parent / str(base.get("build_id", ""))


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The manifest as written (compact UTF-8 JSON; ``python -m json.tool`` reads it for people)."""
    return orjson.dumps(manifest)


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The manifest of the current build; raises :class:`IndexNotFoundError` if there is none."""
    path = index_dir / MANIFEST
    if not path.exists():
        raise IndexNotFoundError(f"no index at {index_dir}; run 'tanya index' first")
    try:
        manifest = orjson.loads(path.read_bytes())
    except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise IndexCorruptError(f"cannot read {path}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"{path} is not a manifest object")
    if manifest.get("format") != FORMAT or manifest.get("format_version") not in READABLE_VERSIONS:
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
