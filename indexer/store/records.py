"""A build's records (documents, chunks, sentences) in SQLite, read on demand.

``records.sqlite`` replaces the JSONL record files of format 1. A loaded build keeps in memory
only what every search needs for all rows (each chunk's document and sentence range, as
numpy arrays); a chunk's or sentence's text and a document's full text are read by row or id
when a result needs them. A build is immutable once written, so readers open the file
read-only and ``immutable`` (no locks, no journal), one connection per thread.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from indexer.chunks import Chunk, Sentence
from indexer.documents import Document

RECORDS_FILE = "records.sqlite"
#: Document headers (metadata without text) kept per build: search results show a title and source.
HEADER_CACHE = 4096

_SCHEMA = """
CREATE TABLE documents (position INTEGER PRIMARY KEY, doc_id TEXT UNIQUE NOT NULL, record TEXT NOT NULL,
                        text TEXT NOT NULL, length INTEGER NOT NULL);
CREATE TABLE chunks (row INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL, start INTEGER NOT NULL,
                     "end" INTEGER NOT NULL, lang TEXT NOT NULL, section TEXT, tokens INTEGER NOT NULL,
                     first_sentence INTEGER NOT NULL, last_sentence INTEGER NOT NULL, text TEXT NOT NULL);
CREATE TABLE sentences (row INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
                        start INTEGER NOT NULL, "end" INTEGER NOT NULL, lang TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE terms (row INTEGER PRIMARY KEY, tokens TEXT NOT NULL);
"""
_CHUNK_COLUMNS = 'doc_id, ordinal, start, "end", lang, section, tokens, first_sentence, last_sentence, text'
_SENTENCE_COLUMNS = 'doc_id, ordinal, start, "end", lang, text'


class RecordWriter:
    """Writes a new build's records as they come, one document at a time, in one transaction.

    Rows are numbered in arrival order. Nothing is held in memory between calls: a build of
    any size is written in the memory of one document. The file is a fresh one in a build
    folder that is discarded unless the build completes, so no journal is kept.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection = sqlite3.connect(path)
        self._connection.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;" + _SCHEMA)
        self._connection.execute("BEGIN")
        self.chunks = 0
        self.sentences = 0

    def add(
        self, document: Document, chunks: Sequence[Chunk], sentences: Sequence[Sentence],
        terms: Sequence[Sequence[str]],
    ) -> None:
        """Append one document, its chunks (with their BM25 terms) and its sentences."""
        record = json.dumps({k: v for k, v in document.to_record().items() if k != "text"}, ensure_ascii=False)
        execute = self._connection.executemany
        self._connection.execute(
            "INSERT INTO documents (doc_id, record, text, length) VALUES (?, ?, ?, ?)",
            (document.doc_id, record, document.text, len(document.text)),
        )
        first_chunk, first_sentence = self.chunks, self.sentences
        execute(
            f"INSERT INTO chunks (row, {_CHUNK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (first_chunk + i, c.doc_id, c.ordinal, c.start, c.end, c.lang, c.section, c.tokens, c.first_sentence,
                 c.last_sentence, c.text)
                for i, c in enumerate(chunks)
            ),
        )
        execute(
            "INSERT INTO terms (row, tokens) VALUES (?, ?)",
            ((first_chunk + i, json.dumps(list(t), ensure_ascii=False)) for i, t in enumerate(terms)),
        )
        execute(
            f"INSERT INTO sentences (row, {_SENTENCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((first_sentence + i, s.doc_id, s.ordinal, s.start, s.end, s.lang, s.text) for i, s in enumerate(sentences)),
        )
        self.chunks += len(chunks)
        self.sentences += len(sentences)

    def close(self, commit: bool = True) -> None:
        """Commit (or drop) what was added and close the file."""
        try:
            if commit:
                self._connection.commit()
        finally:
            self._connection.close()


class RecordFile:
    """Read-only access to one ``records.sqlite``: a connection per thread (sqlite3 objects are per-thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self.query("SELECT 1 FROM documents LIMIT 1")  # fails now, not at the first question, if it is no index

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
            connection = sqlite3.connect(uri, uri=True, check_same_thread=True)
            self._local.connection = connection
        return connection

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of one query."""
        return self._connection().execute(sql, parameters).fetchall()

    def stream(self, sql: str, parameters: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of one query, as they are read."""
        yield from self._connection().execute(sql, parameters)


def _row(index: int, length: int) -> int:
    """``index`` as a row number in ``[0, length)`` (negative counts from the end), or :class:`IndexError`."""
    row = int(index) + length if index < 0 else int(index)
    if not 0 <= row < length:
        raise IndexError(f"row {index} out of range for {length} rows")
    return row


def _document(row: tuple[Any, ...], with_text: bool = True) -> Document:
    record = json.loads(row[0])
    record["text"] = row[1] if with_text else ""
    return Document.from_record(record)


class DocumentTable(Mapping[str, Document]):
    """The documents of a build by id; each document (with its text) is read when asked for."""

    def __init__(self, records: RecordFile, deleted: Iterable[str] = ()) -> None:
        self.records = records
        gone = set(deleted)
        self._ids = [i for (i,) in records.query("SELECT doc_id FROM documents ORDER BY position") if i not in gone]
        self._known = set(self._ids)
        self._headers: OrderedDict[str, Document] = OrderedDict()
        self._lock = threading.Lock()

    def __getitem__(self, doc_id: str) -> Document:
        if doc_id not in self._known:
            raise KeyError(doc_id)
        rows = self.records.query("SELECT record, text FROM documents WHERE doc_id = ?", (doc_id,))
        return _document(rows[0])

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def headers(self, doc_ids: Sequence[str]) -> list[Document]:
        """Documents without their text (``text`` empty), in the order asked, from a small cache: what search
        results show. What the cache lacks is read in one query (a search's hits at 10^6 chunks mostly miss
        it: one query each cost about 0.5 ms a search)."""
        found: dict[str, Document] = {}
        with self._lock:
            for doc_id in doc_ids:
                cached = self._headers.get(doc_id)
                if cached is not None:
                    self._headers.move_to_end(doc_id)
                    found[doc_id] = cached
        missing = [d for d in dict.fromkeys(doc_ids) if d not in found]
        for doc_id in missing:
            if doc_id not in self._known:
                raise KeyError(doc_id)
        if missing:
            marks = ",".join("?" * len(missing))
            rows = self.records.query(f"SELECT doc_id, record FROM documents WHERE doc_id IN ({marks})", missing)
            read = {doc_id: _document((record, ""), with_text=False) for doc_id, record in rows}
            found.update(read)
            with self._lock:
                self._headers.update(read)
                while len(self._headers) > HEADER_CACHE:
                    self._headers.popitem(last=False)
        return [found[d] for d in doc_ids]

    def summaries(self) -> Iterator[Document]:
        """Every document without reading its text (``text`` is empty): for listings."""
        for doc_id, record in self.records.stream("SELECT doc_id, record FROM documents ORDER BY position"):
            if doc_id in self._known:
                yield _document((record, ""), with_text=False)


class _RowTable(Sequence[Any]):
    """Rows of one record table, read by row number when asked for (a few per query)."""

    table = ""
    columns = ""

    def __init__(self, records: RecordFile) -> None:
        self.records = records
        self._length = int(records.query(f"SELECT count(*) FROM {self.table}")[0][0])

    def _make(self, row: tuple[Any, ...]) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        row = _row(index, self._length)
        found = self.records.query(f"SELECT {self.columns} FROM {self.table} WHERE row = ?", (row,))
        return self._make(found[0])

    def __iter__(self) -> Iterator[Any]:
        for row in self.records.stream(f"SELECT {self.columns} FROM {self.table} ORDER BY row"):
            yield self._make(row)

    def many(self, rows: Sequence[int]) -> list[Any]:
        """The records of ``rows``, in that order, read in one query."""
        wanted = [int(r) for r in rows]
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        found = {
            row[0]: self._make(row[1:])
            for row in self.records.query(f"SELECT row, {self.columns} FROM {self.table} WHERE row IN ({marks})", wanted)
        }
        return [found[r] for r in wanted]

    def column(self, name: str) -> list[Any]:
        """One column of every row, in row order."""
        return [value for (value,) in self.records.stream(f'SELECT "{name}" FROM {self.table} ORDER BY row')]


class ChunkTable(_RowTable):
    """A build's chunks, read by row."""

    table = "chunks"
    columns = _CHUNK_COLUMNS
    _has_terms: bool | None = None

    def _make(self, row: tuple[Any, ...]) -> Chunk:
        return Chunk(*row)

    def terms(self, rows: Sequence[int]) -> list[list[str]] | None:
        """The BM25 terms of chunk ``rows``, or ``None`` if this build did not keep them."""
        if self._has_terms is None:  # asked once: a merge asks for every reused document's terms
            query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'terms'"
            self._has_terms = bool(self.records.query(query))
        return read_terms_at(self.records, rows) if self._has_terms else None


class SentenceTable(_RowTable):
    """A build's sentences, read by row."""

    table = "sentences"
    columns = _SENTENCE_COLUMNS

    def _make(self, row: tuple[Any, ...]) -> Sentence:
        return Sentence(*row)

    def first_rows(self) -> list[tuple[int, str]]:
        """``(row, doc_id)`` of every document's first sentence (one query, not a pass over all rows)."""
        query = "SELECT row, doc_id FROM sentences WHERE ordinal = 0 ORDER BY row"
        return [(int(row), str(doc_id)) for row, doc_id in self.records.query(query)]


class StackedSequence(Sequence[Any]):
    """Rows of several sequences as one (a base build's, then its delta's), read through to the parts."""

    def __init__(self, parts: Sequence[Sequence[Any]]) -> None:
        self.parts = list(parts)
        self.offsets = np.cumsum([0, *(len(p) for p in self.parts)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        row = _row(index, len(self))
        part = int(np.searchsorted(self.offsets, row, side="right")) - 1
        return self.parts[part][row - int(self.offsets[part])]

    def __iter__(self) -> Iterator[Any]:
        for part in self.parts:
            yield from part

    def _per_part(self, rows: Sequence[int], read: Callable[[Sequence[Any], list[int]], list[Any] | None]) -> list[Any] | None:
        """``read(part, local rows)`` for each part that holds some of ``rows``, put back in ``rows``' order
        (``None`` if a part's read is ``None``)."""
        wanted = np.asarray(rows, dtype=np.int64)
        owner = np.searchsorted(self.offsets, wanted, side="right") - 1
        out: list[Any] = [None] * len(wanted)
        for i, part in enumerate(self.parts):
            positions = np.flatnonzero(owner == i)
            if len(positions):
                found = read(part, (wanted[positions] - self.offsets[i]).tolist())
                if found is None:
                    return None
                for position, value in zip(positions, found, strict=True):
                    out[int(position)] = value
        return out

    def many(self, rows: Sequence[int]) -> list[Any]:
        """The records of ``rows``, in that order (one read per part)."""
        return self._per_part(rows, records_at) or []

    def terms(self, rows: Sequence[int]) -> list[list[str]] | None:
        """The BM25 terms of chunk ``rows`` (see :func:`chunk_terms`), ``None`` if a part has none."""
        return self._per_part(rows, chunk_terms)

    def column(self, name: str) -> list[Any]:
        """One column of every row, in row order."""
        values: list[Any] = []
        for part in self.parts:
            values.extend(column(part, name))
        return values

    def first_rows(self) -> list[tuple[int, str]]:
        """``(row, doc_id)`` of every first sentence of every part, in stacked row numbers."""
        out: list[tuple[int, str]] = []
        for offset, part in zip(self.offsets, self.parts, strict=False):
            out.extend((int(offset) + row, doc_id) for row, doc_id in first_sentence_rows(part))
        return out


def read_terms_at(records: RecordFile, rows: Sequence[int]) -> list[list[str]] | None:
    """The BM25 terms of chunk ``rows`` (JSON lists in the ``terms`` table), ``None`` if a row has none."""
    found: dict[int, list[str]] = {}
    wanted = [int(r) for r in rows]
    for start in range(0, len(wanted), 900):  # under SQLite's limit on bound parameters
        part = wanted[start : start + 900]
        query = f"SELECT row, tokens FROM terms WHERE row IN ({','.join('?' * len(part))})"
        for row, tokens in records.query(query, part):
            found[int(row)] = [sys.intern(t) for t in json.loads(tokens)]  # see Analyzer.analyse
    return [found[r] for r in wanted] if len(found) == len(set(wanted)) else None


def chunk_terms(chunks: Sequence[Any], rows: Sequence[int]) -> list[list[str]] | None:
    """The BM25 terms a build kept for chunk ``rows``; ``None`` where it kept none (older builds, lists in memory)."""
    reader = getattr(chunks, "terms", None)
    return reader(rows) if reader is not None else None


def records_at(rows: Sequence[Any], wanted: Sequence[int]) -> list[Any]:
    """``[rows[i] for i in wanted]``, in one query where ``rows`` is a table."""
    reader = getattr(rows, "many", None)
    if reader is not None:
        return list(reader(wanted))
    return [rows[i] for i in wanted]


def document_headers(documents: Mapping[str, Document], doc_ids: Sequence[str]) -> list[Document]:
    """Documents' metadata in the order asked: without their text, read together, where the mapping can
    (``text`` then empty); else the documents themselves."""
    reader = getattr(documents, "headers", None)
    if reader is not None:
        return list(reader(doc_ids))
    return [documents[d] for d in doc_ids]


def document_header(documents: Mapping[str, Document], doc_id: str) -> Document:
    """One document's metadata (see :func:`document_headers`)."""
    return document_headers(documents, [doc_id])[0]


def column(rows: Sequence[Any], name: str) -> list[Any]:
    """Attribute ``name`` of every row: one query for a table, a loop for a list of records."""
    reader = getattr(rows, "column", None)
    if reader is not None:
        return list(reader(name))
    return [getattr(r, name) for r in rows]


def first_sentence_rows(sentences: Sequence[Sentence]) -> list[tuple[int, str]]:
    """``(row, doc_id)`` of every document's first sentence, in row order."""
    reader = getattr(sentences, "first_rows", None)
    if reader is not None:
        return list(reader())
    return [(row, s.doc_id) for row, s in enumerate(sentences) if s.ordinal == 0]



class DocumentUnion(Mapping[str, Document]):
    """A base build's current documents and a delta's, as one mapping (the delta's version wins)."""

    def __init__(self, base: Mapping[str, Document], delta: Mapping[str, Document]) -> None:
        self.base, self.delta = base, delta
        self._ids = [i for i in base if i not in delta] + list(delta)

    def __getitem__(self, doc_id: str) -> Document:
        if doc_id in self.delta:
            return self.delta[doc_id]
        return self.base[doc_id]

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.delta or doc_id in self.base

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def headers(self, doc_ids: Sequence[str]) -> list[Document]:
        """Documents' metadata in the order asked, each from the part holding it (see :meth:`DocumentTable.headers`)."""
        in_delta = [d for d in doc_ids if d in self.delta]
        in_base = [d for d in doc_ids if d not in self.delta]
        found = dict(zip(in_delta, document_headers(self.delta, in_delta), strict=True))
        found.update(zip(in_base, document_headers(self.base, in_base), strict=True))
        return [found[d] for d in doc_ids]

    def summaries(self) -> Iterator[Document]:
        """Every document without its text (see :meth:`DocumentTable.summaries`)."""
        for doc in document_summaries(self.base):
            if doc.doc_id not in self.delta:
                yield doc
        yield from document_summaries(self.delta)


def document_summaries(documents: Mapping[str, Document]) -> Iterator[Document]:
    """Every document, read without its text where the mapping can (``text`` then empty)."""
    reader = getattr(documents, "summaries", None)
    return iter(reader()) if reader is not None else iter(documents.values())


def offset_problem(records: RecordFile) -> str | None:
    """The first chunk or sentence whose offsets fall outside its document, described; ``None`` if all fit."""
    for table in ("chunks", "sentences"):
        found = records.query(
            f'SELECT t.ordinal, t.doc_id, t.start, t."end", d.length FROM {table} t LEFT JOIN documents d USING (doc_id) '
            f'WHERE d.length IS NULL OR t.start < 0 OR t.start > t."end" OR t."end" > d.length LIMIT 1'
        )
        if found:
            ordinal, doc_id, start, end, length = found[0]
            kind = table[:-1]
            if length is None:
                return f"a {kind} of {doc_id!r} names no document"
            return f"{kind} {ordinal} of {doc_id!r} spans {start}-{end}, outside its document ({length} characters)"
    return None
