"""Read source files (.txt, .md, .html, .pdf) into :class:`Document` records.

A document's ``text`` is what every citation offset refers to: for .txt and .md it is
exactly the decoded file; for .html and .pdf it is the extracted text, stored in the
index so that ``tanya show`` and ``GET /v1/documents/{id}`` return the same string.
Bad files are skipped with one warning naming the file and the reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import stat as stat_module
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from indexer.errors import DocumentError
from indexer.language import Lang, detect_language

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
META_SUFFIX = ".meta.json"
#: What a document id may look like: the API serves exactly these (``GET /v1/documents/{id}``).
DOC_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,199}$")
_SLUG = re.compile(r"[^a-z0-9]+")
#: Longest id :data:`DOC_ID_PATTERN` allows, and the hex digits of the hash that keeps ids unique.
_MAX_SLUG = 200
_HASH_CHARS = 8


@dataclass(frozen=True)
class Document:
    """One source document and the text that citations point into."""

    doc_id: str
    source: str
    title: str
    lang: Lang
    text: str
    sha256: str
    format: str
    languages: tuple[str, ...] = ()
    kind: str | None = None
    date: str | None = None
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """A JSON-serialisable dict (inverse of :meth:`from_record`)."""
        record = asdict(self)
        record["languages"] = list(self.languages)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Document:
        """Rebuild a document from :meth:`to_record` output."""
        data = dict(record)
        data["languages"] = tuple(data.get("languages") or ())
        return cls(**data)

    @property
    def is_markdown(self) -> bool:
        """Whether headings should be parsed as markdown."""
        return self.format == "md"


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not indexed, and why."""

    path: str
    reason: str


def make_doc_id(path: Path, root: Path) -> str:
    """A stable id, valid by :data:`DOC_ID_PATTERN`, from the file's path relative to its root.

    The path (without extension) is transliterated to ASCII and slugged: ``Berita/Kemnaker (2024).html``
    becomes ``berita-kemnaker-2024``. When the slug loses letters or digits that have no ASCII form
    (``日本.txt``, ``ジャパン.txt``) or is too long, a short hash of the relative path is appended, so
    two such names never share an id and the id never changes while the file keeps its name.
    """
    relative = _relative(path, root)
    stem = relative.with_suffix("").as_posix()
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii").lower()
    slug = _SLUG.sub("-", ascii_stem).strip("-")
    lost = sum(ch.isalnum() for ch in stem) > sum(ch.isalnum() for ch in ascii_stem)
    if slug and not lost and len(slug) <= _MAX_SLUG:
        return slug
    return hashed_doc_id(slug, relative)


def hashed_doc_id(slug: str, relative: Path) -> str:
    """``slug`` (cut to fit) plus 8 hex digits of a hash of ``relative``; ``doc-<hash>`` when slug is empty."""
    digest = hashlib.sha256(relative.as_posix().encode("utf-8", "surrogateescape")).hexdigest()[:_HASH_CHARS]
    head = slug[: _MAX_SLUG - _HASH_CHARS - 1].rstrip("-") or "doc"
    return f"{head}-{digest}"


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return Path(path.name)


def _relative_posix(path: Path | str, root: Path) -> str:
    """``_relative(path, root).as_posix()``, by string where ``path`` was made under ``root`` (the usual case:
    ``Path.relative_to`` was a tenth of a no-op run over 82,645 files)."""
    text, prefix = str(path), str(root)
    if prefix not in (".", "") and text.startswith(prefix + os.sep) and os.sep == "/":
        return text[len(prefix) + 1 :]
    return _relative(Path(path), root).as_posix()


def discover(
    paths: Iterable[Path], unreadable: Callable[[Path, str], None] | None = None
) -> Iterator[tuple[Path, Path, bool]]:
    """Yield ``(file, root, found_in_folder)`` for every supported file under ``paths``, in a stable order.

    ``found_in_folder`` is false for a file named directly (its root is its parent). A link
    to nothing is yielded too, so that reading it fails with a warning instead of silence.
    ``unreadable(folder, reason)`` hears of each folder that could not be listed (default: a warning).
    """
    for path, root, in_folder, _ in _discover(paths, unreadable):
        yield Path(path), root, in_folder


def _discover(
    paths: Iterable[Path], unreadable: Callable[[Path, str], None] | None = None
) -> Iterator[tuple[str, Path, bool, bool | None]]:
    """:func:`discover` with each file as a string, and whether its folder lists its sidecar (``None``:
    not known, ``stat`` it): a no-op run over 82,645 files needs no ``Path`` and no second listing."""
    for given in paths:
        if given.is_file():
            yield str(given), given.parent, False, None
            continue
        if not given.is_dir():
            log.warning("skipping %s: no such file or directory", given)
            continue
        for path, sidecar in _walk(given, unreadable or _warn_unreadable):
            yield path, given, True, sidecar


def _warn_unreadable(folder: Path, reason: str) -> None:
    log.warning("skipping folder %s: %s", folder, reason)


def _walk(folder: Path, unreadable: Callable[[Path, str], None]) -> list[tuple[str, bool]]:
    """Every supported, not hidden file (or link that is not to a folder) under ``folder``, in sorted order,
    with whether its sidecar is beside it; links to folders are not followed.

    ``Path.rglob`` passes over a folder it may not read in silence; a folder of documents that
    vanishes from the index without a word is a support ticket, so each one is warned about.
    ``os.scandir`` tells files from folders by the listing's own entry type, without a ``stat``
    a file (``os.walk`` plus ``Path.is_file`` made two; 1.3 of a 6 s profiled run at 82,645 files).
    Each folder's entries are visited sorted by name, subfolders in place: the order of sorting
    the whole list by path parts (as ``sorted`` over ``Path`` objects does), without that sort.
    """
    found: list[tuple[str, bool]] = []

    def visit(current: str) -> None:
        try:
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as error:
            unreadable(Path(current), f"cannot be read ({error.strerror or error})")
            return
        names = {entry.name for entry in entries}
        for entry in entries:
            try:
                is_folder = entry.is_dir()  # follows a link, as os.walk does to list it as a folder
            except OSError:
                is_folder = False
            if is_folder:
                if not entry.is_symlink():
                    visit(entry.path)
                continue
            name = entry.name
            dot = name.rfind(".")
            if name.startswith(".") or dot < 0 or name[dot:].lower() not in SUPPORTED_SUFFIXES:
                continue
            if entry.is_file() or entry.is_symlink():  # a dangling link too: reading it says why
                found.append((entry.path, name + META_SUFFIX in names))

    visit(str(folder))
    return found


def outside_folder(path: Path, folder: Path) -> bool:
    """Whether ``path``, with every link resolved, lies outside ``folder`` (also resolved)."""
    resolved, base = path.resolve(), folder.resolve()
    return resolved != base and base not in resolved.parents


def _decode(raw: bytes, path: Path) -> str:
    """UTF-8 first; then Windows-1252 with a warning; otherwise the file is undecodable."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"not valid UTF-8 or Windows-1252 text ({exc.reason})") from exc
    log.warning("%s: not valid UTF-8; decoded as Windows-1252", path)
    return text


def _looks_binary(raw: bytes) -> bool:
    return b"\x00" in raw[:8192]


def _read_html(raw: bytes, path: Path) -> tuple[str, str | None]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(raw, path), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    body = soup.body or soup
    lines = [line.strip() for line in body.get_text("\n").splitlines()]
    return "\n".join(line for line in lines if line), title


def _read_pdf(raw: bytes) -> tuple[str, str | None]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(raw))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        title = reader.metadata.title if reader.metadata and reader.metadata.title else None
    except Exception as exc:  # pypdf raises many types for damaged files
        raise DocumentError(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    return "\n\n".join(page for page in pages if page), title


def _first_line_title(text: str) -> str | None:
    for line in text.splitlines():
        cleaned = line.strip().strip("#*_ ").strip()
        if cleaned:
            return cleaned[:120]
    return None


def _load_meta(path: Path) -> dict[str, Any]:
    meta_path = path.with_name(path.name + META_SUFFIX)
    if not meta_path.exists():
        return {}
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: ignoring unreadable metadata sidecar (%s)", meta_path, exc)
        return {}
    if not isinstance(meta, dict):
        log.warning("%s: ignoring the metadata sidecar: it is not a JSON object", meta_path)
        return {}
    return validate_sidecar(meta, meta_path)


class Sidecar(BaseModel):
    """The metadata a ``.meta.json`` sidecar may give; other keys are kept as ``extra``."""

    model_config = ConfigDict(extra="allow", strict=True)

    doc_id: Annotated[str, StringConstraints(pattern=DOC_ID_PATTERN.pattern)] | None = None
    title: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    languages: list[Annotated[str, StringConstraints(min_length=2, max_length=12)]] | None = None
    kind: Annotated[str, StringConstraints(max_length=200)] | None = None
    date: Annotated[str, StringConstraints(max_length=100)] | None = None
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None


def validate_sidecar(meta: dict[str, Any], meta_path: Path) -> dict[str, Any]:
    """``meta`` without the fields that break :class:`Sidecar`'s rules, each dropped with one warning.

    A bad field costs that field, not the document and not the indexing run.
    """
    values = dict(meta)
    for _ in range(len(Sidecar.model_fields) + 1):
        try:
            checked = Sidecar.model_validate(values)
        except ValidationError as exc:
            for error in exc.errors():
                field_name = str(error["loc"][0]) if error["loc"] else ""
                if field_name in values:
                    log.warning("%s: ignoring field %r (%s)", meta_path, field_name, error["msg"])
                    values.pop(field_name)
            continue
        return checked.model_dump(exclude_none=True)
    return {}


def read_document(path: Path, root: Path, max_bytes: int) -> Document:
    """Read one file into a :class:`Document`; raise :class:`DocumentError` when it is unusable."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise DocumentError(f"larger than the {max_bytes:,}-byte limit ({size:,} bytes)")
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read file ({exc.strerror or exc})") from exc
    if not raw.strip():
        raise DocumentError("empty file")
    suffix = path.suffix.lower()
    extracted_title: str | None = None
    if suffix == ".pdf":
        text, extracted_title = _read_pdf(raw)
        fmt = "pdf"
    else:
        if _looks_binary(raw):
            raise DocumentError("binary content (NUL bytes) in a text file")
        if suffix in (".html", ".htm"):
            text, extracted_title = _read_html(raw, path)
            fmt = "html"
        else:
            text = _decode(raw, path)
            fmt = "md" if suffix in (".md", ".markdown") else "txt"
    if not text.strip():
        hint = ": a PDF without a text layer (a scan?) needs OCR first" if fmt == "pdf" else ""
        raise DocumentError("no text could be extracted" + hint)
    meta = _load_meta(path)
    lang = meta.get("languages", [None])[0] if meta.get("languages") else None
    detected = detect_language(text)
    known = {"doc_id", "title", "languages", "kind", "date", "description"}
    return Document(
        doc_id=str(meta.get("doc_id") or make_doc_id(path, root)),
        source=_relative(path, root).as_posix(),
        title=str(meta.get("title") or extracted_title or _first_line_title(text) or path.stem),
        lang=lang if lang in ("en", "id") else detected,
        text=text,
        sha256=hashlib.sha256(raw).hexdigest(),
        format=fmt,
        languages=tuple(meta.get("languages") or (detected,)),
        kind=meta.get("kind"),
        date=meta.get("date"),
        description=meta.get("description"),
        extra={k: v for k, v in meta.items() if k not in known},
    )


@dataclass(frozen=True)
class IdCollision:
    """Two files whose names make the same id: the second gets a hashed id instead of being lost."""

    path: str
    other: str
    wanted: str
    given: str


@dataclass
class LoadedDocuments:
    """What :func:`load_documents` found: documents read, files known unchanged, files skipped, ids renamed."""

    documents: list[Document]
    skipped: list[SkippedFile]
    collisions: list[IdCollision] = field(default_factory=list)
    #: Ids of files whose stamp matched the one recorded for them: not read at all (id → stamp).
    unchanged: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The stamp of every document read, by id (recorded in the manifest for the next run).
    stamps: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Every document id (read or unchanged) in discovery order.
    order: list[str] = field(default_factory=list)
    #: Documents read past the text budget, kept without their text: where to read them again (id → file, folder).
    deferred: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    max_bytes: int = 0

    def with_text(self, doc: Document) -> Document:
        """``doc`` with its text: as read, or read again if it was deferred (under the id it was given)."""
        where = self.deferred.get(doc.doc_id)
        if where is None:
            return doc
        again = replace(read_document(where[0], where[1], self.max_bytes), doc_id=doc.doc_id)
        if again.sha256 != doc.sha256:
            log.warning("%s changed while it was being indexed; indexing it as it is now", where[0])
        return again


def file_stamp(
    path: Path | str,
    root: Path,
    resolved_root: str | None = None,
    known_stat: os.stat_result | None = None,
    sidecar_listed: bool | None = None,
) -> dict[str, Any] | None:
    """What says a file (and its sidecar) is unchanged without reading it: where it is, size, mtime.

    Keyed by the resolved folder and the path within it (the document id depends on both);
    ``resolved_root`` saves resolving the folder once per file. ``None`` when the file cannot
    be stat'ed (reading it will then report why). A caller that has already ``stat``-ed the file
    (not a link) passes ``known_stat``, and ``sidecar_listed`` false when its folder listing
    holds no sidecar: a no-op run over 82,645 files made four ``stat`` calls a file before.
    """
    try:
        stat = known_stat or os.stat(path)
    except OSError:
        return None
    sidecar: list[int] | None = None
    if sidecar_listed is not False:
        try:
            meta_stat = os.stat(str(path) + META_SUFFIX)
            sidecar = [meta_stat.st_size, meta_stat.st_mtime_ns]
        except OSError:
            sidecar = None
    return {
        "key": f"{resolved_root or root.resolve()}|{_relative_posix(path, root)}",
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sidecar": sidecar,
    }


def load_documents(
    paths: Iterable[Path],
    max_bytes: int,
    follow_symlinks: bool = False,
    known: Mapping[str, tuple[str, dict[str, Any]]] | None = None,
    text_budget: int | None = None,
) -> LoadedDocuments:
    """Read every supported file under ``paths``; bad files are logged and returned as skipped.

    Past ``text_budget`` characters of text, documents are kept without their text (their hash,
    title and metadata are known) and :meth:`LoadedDocuments.with_text` reads them again when
    they are needed: the run's memory then does not grow with the corpus.

    ``known`` maps a stamp key (:func:`file_stamp`) to the id and stamp a previous build
    recorded: a file whose stamp is the same is not read (a no-op re-index of 10^4 files is
    then a directory walk and 10^4 ``stat`` calls). Size and modification time can miss an
    edit that keeps both, as ``make`` and ``rsync`` also accept; ``touch`` forces a re-read.

    A file found in a folder whose real path is outside that folder (a link out of it) is
    skipped unless ``follow_symlinks``: otherwise ``ln -s /etc/hostname docs/h.txt`` would
    publish the host's file through ``GET /v1/documents``.

    Two files whose names make the same id (``same.md`` and ``same.txt``, ``a b.txt`` and
    ``a-b.txt``) are both indexed: the first in discovery order keeps the plain id and the
    other gets a hashed one (:func:`hashed_doc_id`), with a warning naming both. An id set
    by a sidecar is the operator's choice, so a file repeating it is skipped instead.
    """
    loaded = LoadedDocuments([], [], max_bytes=max_bytes)
    seen: dict[str, str] = {}
    held = 0
    def unreadable(folder: Path, reason: str) -> None:
        _skip(loaded, folder, f"folder {reason}")

    resolved_roots: dict[Path, str] = {}
    for where, root, in_folder, sidecar_listed in _discover(paths, unreadable):
        try:
            link_stat: os.stat_result | None = os.lstat(where)
        except OSError:
            link_stat = None
        is_link = link_stat is not None and stat_module.S_ISLNK(link_stat.st_mode)
        # The walk follows no link to a folder, so only a file that is itself a link can lead outside
        # (resolving every path cost most of a no-op run: 0.1 of 0.17 s at 826 files).
        if in_folder and not follow_symlinks and is_link and outside_folder(Path(where), root):
            reason = f"a link to a file outside {root} (set TANYA_FOLLOW_SYMLINKS=true to index such files)"
            _skip(loaded, Path(where), reason)
            continue
        if root not in resolved_roots:
            resolved_roots[root] = str(root.resolve())
        # A link's stamp is its target's (``stat`` follows it); a plain file's ``lstat`` is its ``stat``.
        stamp = file_stamp(where, root, resolved_roots[root], None if is_link else link_stat, sidecar_listed)
        previous = (known or {}).get(stamp["key"]) if stamp else None
        if previous is not None and previous[1] == stamp and previous[0] not in seen:
            seen[previous[0]] = where
            loaded.unchanged[previous[0]] = stamp
            loaded.order.append(previous[0])
            continue
        path = Path(where)  # only files that are read need one
        try:
            doc = read_document(path, root, max_bytes)
        except DocumentError as exc:
            _skip(loaded, path, exc.detail)
            continue
        if doc.doc_id in seen:
            relative = _relative(path, root)
            renamed = hashed_doc_id(make_doc_id(path, root), relative)
            if doc.doc_id != make_doc_id(path, root) or renamed in seen:
                _skip(loaded, path, f"duplicate document id {doc.doc_id!r} (also {seen[doc.doc_id]})")
                continue
            log.warning(
                "%s: its id %r is already used by %s; indexed as %r", path, doc.doc_id, seen[doc.doc_id], renamed
            )
            loaded.collisions.append(IdCollision(str(path), seen[doc.doc_id], doc.doc_id, renamed))
            doc = replace(doc, doc_id=renamed)
        seen[doc.doc_id] = str(path)
        held += len(doc.text)
        if text_budget is not None and held > text_budget:
            loaded.deferred[doc.doc_id] = (path, root)
            doc = replace(doc, text="")
        loaded.documents.append(doc)
        loaded.order.append(doc.doc_id)
        if stamp is not None:
            loaded.stamps[doc.doc_id] = stamp
    return loaded


def _skip(loaded: LoadedDocuments, path: Path, reason: str) -> None:
    log.warning("skipping %s: %s", path, reason)
    loaded.skipped.append(SkippedFile(str(path), reason))
