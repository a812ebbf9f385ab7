"""Embeddings saved as they are computed, so a killed indexing run resumes instead of starting over.

Embedding is the slow part of indexing (E5 does about 35 sentences a second on 2 cores): a run
killed at hour 9 must not redo hours 1-9. Every batch of vectors is committed to a SQLite
table as soon as it is encoded, keyed by the encoder (id and weights version) and a hash of
the text; the next run asks the cache first and encodes only what is missing.

The cache is a journal of work in progress, not a second index: once a build that holds those
vectors is written, the entries are deleted (later runs reuse vectors from the build itself),
so the file stays small. SQLite's WAL journal makes each committed batch survive SIGKILL.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

#: Encodes a batch of texts into ``(len(batch), dim)`` vectors.
EmbedFunction = Callable[[list[str]], np.ndarray]

#: SQLite allows 999 parameters per statement in old builds; stay well under it.
_CHUNK = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    encoder TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (encoder, text_hash)
) WITHOUT ROWID
"""


def text_hash(text: str) -> str:
    """The key of a text: SHA-256 of its UTF-8 bytes (hex, 32 characters are plenty)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def cache_path(index_dir: Path) -> Path:
    """Where the cache of ``index_dir`` lives: beside its builds, so it survives any one build."""
    return index_dir.parent / f"{index_dir.name}.builds" / "embeddings.sqlite"


class EmbeddingCache:
    """Float32 vectors by ``(encoder key, text hash)`` in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a committed batch survives the process being killed (not a power cut, which costs a re-embed).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_many(self, encoder: str, hashes: Sequence[str], dim: int) -> dict[str, np.ndarray]:
        """The cached vectors among ``hashes`` (missing ones are simply absent)."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), _CHUNK):
            part = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT text_hash, vector FROM vectors WHERE encoder = ? AND text_hash IN ({marks})",
                [encoder, *part],
            )
            for key, blob in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape == (dim,):  # a vector of another size is not this encoder's: ignore it
                    found[key] = vector
        return found

    def put_many(self, encoder: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Save vectors and commit at once: this batch is never encoded again, whatever happens next."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors (encoder, text_hash, vector) VALUES (?, ?, ?)",
                [(encoder, key, np.ascontiguousarray(vector, dtype=np.float32).tobytes()) for key, vector in items],
            )

    def count(self, encoder: str | None = None) -> int:
        """Entries held (for one encoder, or all)."""
        if encoder is None:
            return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        return int(self._db.execute("SELECT COUNT(*) FROM vectors WHERE encoder = ?", [encoder]).fetchone()[0])

    def clear(self) -> None:
        """Forget every entry (after a build that holds them was written)."""
        with self._db:
            self._db.execute("DELETE FROM vectors")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def embed_cached(
    embed: EmbedFunction,
    encoder: str,
    dim: int,
    texts: Sequence[str],
    cache: EmbeddingCache,
    batch_size: int,
    tick: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int, int]:
    """Vectors of ``texts``: cached ones read back, the rest encoded ``batch_size`` at a time and saved per batch.

    Returns the vectors, how many texts came from the cache and how many distinct texts were
    encoded (a text repeated in ``texts`` is encoded once). ``tick(n)`` reports progress in texts.
    """
    keys = [text_hash(t) for t in texts]
    occurrences = Counter(keys)
    vectors = cache.get_many(encoder, keys, dim)
    hits = sum(occurrences[k] for k in vectors)
    if tick is not None and hits:
        tick(hits)
    missing: dict[str, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in vectors and key not in missing:
            missing[key] = text
    pending = list(missing.items())
    for start in range(0, len(pending), batch_size):
        batch = pending[start : start + batch_size]
        encoded = embed([text for _, text in batch])
        cache.put_many(encoder, [(key, vector) for (key, _), vector in zip(batch, encoded, strict=True)])
        vectors.update({key: vector for (key, _), vector in zip(batch, encoded, strict=True)})
        if tick is not None:
            tick(sum(occurrences[key] for key, _ in batch))
    if not texts:
        return np.zeros((0, dim), np.float32), 0, 0
    return np.stack([vectors[key] for key in keys]).astype(np.float32, copy=False), hits, len(pending)
