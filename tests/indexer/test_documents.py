"""Reading source files: exact text, HTML/PDF extraction, bad files, sidecars, ids."""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path

import pytest

from indexer.documents import DOC_ID_PATTERN, Document, discover, load_documents, make_doc_id, read_document
from indexer.errors import DocumentError
from tests.support.helpers import CORPUS_DIR, CORPUS_FILES, CORPUS_IDS, KEMNAKER, METI, TOKUTEI

LOGGER = "indexer.documents"


def _load(paths: list[Path], max_bytes: int = 10**8):
    loaded = load_documents(paths, max_bytes)
    return loaded.documents, loaded.skipped


def _skip_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == LOGGER]


# --- text and markdown ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", CORPUS_FILES, ids=CORPUS_IDS)
def test_corpus_text_is_byte_identical_to_the_file(path: Path) -> None:
    doc = read_document(path, path.parent, 10**8)
    assert doc.text.encode("utf-8") == path.read_bytes()
    assert doc.format == ("md" if path.suffix == ".md" else "txt")
    assert doc.source == path.name


def test_corpus_loads_all_three_documents_with_sidecar_metadata() -> None:
    docs, skipped = _load([CORPUS_DIR])
    assert skipped == []
    assert [d.doc_id for d in docs] == sorted([KEMNAKER, METI, TOKUTEI])
    for doc in docs:
        meta = json.loads((CORPUS_DIR / f"{doc.source}.meta.json").read_text(encoding="utf-8"))
        assert doc.title == meta["title"]
        assert list(doc.languages) == meta["languages"]
        assert doc.lang == meta["languages"][0]
        assert doc.kind == meta["kind"]
        assert doc.date == meta["date"]
        assert doc.description == meta["description"]


def test_crlf_and_trailing_whitespace_are_kept(tmp_path: Path) -> None:
    raw = b"Line one.\r\nLine two.  \r\n\r\n"
    (tmp_path / "crlf.txt").write_bytes(raw)
    doc = read_document(tmp_path / "crlf.txt", tmp_path, 10**6)
    assert doc.text.encode() == raw


def test_markdown_suffixes(tmp_path: Path) -> None:
    (tmp_path / "a.markdown").write_text("# Heading\n\nBody text.\n", encoding="utf-8")
    doc = read_document(tmp_path / "a.markdown", tmp_path, 10**6)
    assert doc.format == "md" and doc.is_markdown
    assert doc.title == "Heading"  # first line, without the markdown markers


def test_document_record_round_trip() -> None:
    doc = read_document(CORPUS_FILES[0], CORPUS_DIR, 10**8)
    assert Document.from_record(json.loads(json.dumps(doc.to_record()))) == doc


# --- html ----------------------------------------------------------------------------------------------
def test_html_extraction_drops_scripts_and_uses_title(tmp_path: Path) -> None:
    html = """<!doctype html>
<html><head><title> Program Magang Jepang </title>
<script>var secret = "SCRIPT_SECRET";</script><style>.x { color: red }</style></head>
<body><h1>Judul</h1><p>Peserta magang berangkat ke Jepang.</p>
<script type="text/javascript">console.log("BODY_SCRIPT")</script><noscript>NOSCRIPT_TEXT</noscript>
<p>Second   paragraph.</p></body></html>"""
    (tmp_path / "page.html").write_text(html, encoding="utf-8")
    doc = read_document(tmp_path / "page.html", tmp_path, 10**6)
    assert doc.format == "html"
    assert doc.title == "Program Magang Jepang"
    assert "SCRIPT_SECRET" not in doc.text and "BODY_SCRIPT" not in doc.text and "NOSCRIPT_TEXT" not in doc.text
    assert "color" not in doc.text
    assert "Peserta magang berangkat ke Jepang." in doc.text
    assert "Judul" in doc.text
    assert "Program Magang" not in doc.text  # the <title> is metadata, not body text


def test_html_sidecar_title_wins(tmp_path: Path) -> None:
    (tmp_path / "page.htm").write_text("<html><head><title>HTML title</title></head><body><p>Text.</p></body></html>")
    (tmp_path / "page.htm.meta.json").write_text(json.dumps({"title": "Sidecar title"}))
    doc = read_document(tmp_path / "page.htm", tmp_path, 10**6)
    assert doc.title == "Sidecar title"


# --- pdf -------------------------------------------------------------------------------------------------
def _minimal_text_pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` in Helvetica, with a correct xref table."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_pdf_text_is_extracted(tmp_path: Path) -> None:
    (tmp_path / "paper.pdf").write_bytes(_minimal_text_pdf("Tokutei Ginou workers"))
    doc = read_document(tmp_path / "paper.pdf", tmp_path, 10**6)
    assert doc.format == "pdf"
    assert "Tokutei Ginou workers" in doc.text


def test_blank_pdf_is_skipped_with_reason(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": "Blank"})
    with open(tmp_path / "blank.pdf", "wb") as handle:
        writer.write(handle)
    with caplog.at_level(logging.WARNING):
        docs, skipped = _load([tmp_path])
    assert docs == []
    assert len(skipped) == 1 and skipped[0].path.endswith("blank.pdf")
    assert "no text" in skipped[0].reason
    assert any("blank.pdf" in message for message in _skip_warnings(caplog))


def test_corrupt_pdf_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "corrupt.pdf").write_bytes(random.Random(1234).randbytes(512))
    with caplog.at_level(logging.WARNING):
        docs, skipped = _load([tmp_path])
    assert docs == []
    assert [Path(s.path).name for s in skipped] == ["corrupt.pdf"]
    assert skipped[0].reason  # "unreadable PDF (...)" or "no text could be extracted"
    assert any("corrupt.pdf" in message for message in _skip_warnings(caplog))


def test_corrupt_pdf_raises_document_error(tmp_path: Path) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\n" + random.Random(7).randbytes(256))
    with pytest.raises(DocumentError):
        read_document(tmp_path / "bad.pdf", tmp_path, 10**6)


# --- bad files ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\t\n", "empty"),
        ("binary.txt", b"text\x00\x01\x02more", "binary"),
        ("undecodable.txt", b"\x81\x8d\x8f\x90\x9d", "UTF-8"),
        ("huge.txt", b"a" * 2048, "limit"),
        ("empty-body.html", b"<html><head><title>T</title><script>x()</script></head><body> </body></html>", "no text"),
    ],
)
def test_bad_files_are_skipped_with_a_warning_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, content: bytes, reason: str
) -> None:
    (tmp_path / name).write_bytes(content)
    (tmp_path / "good.txt").write_text("A good document with some text.", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        docs, skipped = _load([tmp_path], max_bytes=1024)
    assert [d.doc_id for d in docs] == ["good"]
    assert len(skipped) == 1
    assert Path(skipped[0].path).name == name
    assert reason.lower() in skipped[0].reason.lower()
    warnings = _skip_warnings(caplog)
    assert len(warnings) == 1
    assert name in warnings[0] and skipped[0].reason in warnings[0]


def test_read_document_raises_for_a_file_over_the_limit(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_bytes(b"word " * 100)
    with pytest.raises(DocumentError, match="limit"):
        read_document(tmp_path / "big.txt", tmp_path, 100)
    assert read_document(tmp_path / "big.txt", tmp_path, 500).text == "word " * 100


def test_cp1252_file_is_read_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "legacy.txt").write_bytes("caf\xe9 ok \u201cquoted\u201d".encode("cp1252"))
    with caplog.at_level(logging.WARNING):
        docs, skipped = _load([tmp_path])
    assert skipped == []
    assert docs[0].text == "caf\xe9 ok \u201cquoted\u201d"
    warnings = _skip_warnings(caplog)
    assert len(warnings) == 1 and "legacy.txt" in warnings[0] and "Windows-1252" in warnings[0]


def test_utf8_bom_is_not_part_of_the_text(tmp_path: Path) -> None:
    (tmp_path / "bom.txt").write_bytes("\ufeffHalo dunia.".encode())
    assert read_document(tmp_path / "bom.txt", tmp_path, 10**6).text == "Halo dunia."


def test_unsupported_and_hidden_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04")
    (tmp_path / ".hidden.txt").write_text("hidden text")
    (tmp_path / "data.json").write_text("{}")
    (tmp_path / "keep.txt").write_text("Kept text.")
    assert [p.name for p, _, _ in discover([tmp_path])] == ["keep.txt"]


def test_files_come_in_the_order_of_their_sorted_paths(tmp_path: Path) -> None:
    # Folders visited in place among the files, by name: the order ``sorted`` gives Path objects
    # (part by part), which the ids of colliding names depend on.
    names = ["b.txt", "a/z.md", "a.txt", "a-b.txt", "A.txt", "a/b/c.txt", "ab/x.txt", "a b.txt", "Z/y.txt", "x.PDF"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("Some text.")
    (tmp_path / "a" / "link-to-folder.txt").symlink_to(tmp_path / "ab")  # a link to a folder is not a file
    found = [p for p, _, _ in discover([tmp_path])]
    assert found == sorted(tmp_path / name for name in names)


def test_missing_path_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        docs, skipped = _load([tmp_path / "nope"])
    assert docs == [] and skipped == []
    assert any("nope" in m for m in _skip_warnings(caplog))


# --- metadata sidecars ---------------------------------------------------------------------------------
def test_sidecar_metadata_is_applied(tmp_path: Path) -> None:
    (tmp_path / "news.txt").write_text("First line title\nThe apprenticeship program targets workers.")
    sidecar = {
        "title": "Sidecar Title",
        "languages": ["id", "en"],
        "kind": "news",
        "date": "2024-02-13",
        "description": "About magang.",
        "publisher": "Kemnaker",
    }
    (tmp_path / "news.txt.meta.json").write_text(json.dumps(sidecar))
    doc = read_document(tmp_path / "news.txt", tmp_path, 10**6)
    assert doc.title == "Sidecar Title"
    assert doc.lang == "id"  # the first declared language, even though the text is English
    assert doc.languages == ("id", "en")
    assert (doc.kind, doc.date, doc.description) == ("news", "2024-02-13", "About magang.")
    assert doc.extra == {"publisher": "Kemnaker"}


def test_title_falls_back_to_first_line_without_sidecar(tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("\n\n  **My Note**  \nBody text of the note.")
    doc = read_document(tmp_path / "note.txt", tmp_path, 10**6)
    assert doc.title == "My Note"
    assert doc.lang == "en" and doc.languages == ("en",)


def test_unreadable_sidecar_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a.txt").write_text("Title line\nBody.")
    (tmp_path / "a.txt.meta.json").write_text("{not json")
    with caplog.at_level(logging.WARNING):
        doc = read_document(tmp_path / "a.txt", tmp_path, 10**6)
    assert doc.title == "Title line"
    assert any("a.txt.meta.json" in m for m in _skip_warnings(caplog))


def test_sidecar_doc_id_overrides_the_slug(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Some text.")
    (tmp_path / "a.txt.meta.json").write_text(json.dumps({"doc_id": "custom-id"}))
    assert read_document(tmp_path / "a.txt", tmp_path, 10**6).doc_id == "custom-id"


# --- ids ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("Report.TXT", "report"),
        ("Sub Dir/My File.v2.md", "sub-dir-my-file-v2"),
        ("berita/Kemnaker & IM-Japan (2024).html", "berita-kemnaker-im-japan-2024"),
        ("Résumé Pekerja.txt", "resume-pekerja"),
    ],
)
def test_make_doc_id_slugs(tmp_path: Path, relative: str, expected: str) -> None:
    assert make_doc_id(tmp_path / relative, tmp_path) == expected


def test_doc_ids_are_stable_and_url_safe(corpus_copy: Path) -> None:
    first, _ = _load([corpus_copy])
    second, _ = _load([corpus_copy])
    assert [d.doc_id for d in first] == [d.doc_id for d in second]
    assert [d.doc_id for d in first] == [p.name.split(".")[0] for p in CORPUS_FILES]
    for doc in first:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", doc.doc_id)
    # The id does not depend on where the corpus lives.
    original, _ = _load([CORPUS_DIR])
    assert [d.doc_id for d in original] == [d.doc_id for d in first]
    # A file given directly gets the same id as when found in its folder.
    single, _ = _load([corpus_copy / CORPUS_FILES[0].name])
    assert single[0].doc_id == first[0].doc_id


def test_colliding_names_are_both_indexed_and_the_collision_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 10, defect 7: ``same.md`` and ``same.txt`` (or ``a b`` and ``a-b``) lost the second file."""
    (tmp_path / "same.md").write_text("Markdown version.")
    (tmp_path / "same.txt").write_text("Text version.")
    (tmp_path / "a b.txt").write_text("Spaced.")
    (tmp_path / "a-b.txt").write_text("Dashed.")
    with caplog.at_level(logging.WARNING):
        loaded = load_documents([tmp_path], 10**8)
    ids = {Path(d.source).name: d.doc_id for d in loaded.documents}
    assert loaded.skipped == []
    assert ids["same.md"] == "same" and re.fullmatch(r"same-[0-9a-f]{8}", ids["same.txt"])
    assert ids["a b.txt"] == "a-b" and re.fullmatch(r"a-b-[0-9a-f]{8}", ids["a-b.txt"])
    assert [(Path(c.path).name, Path(c.other).name, c.wanted) for c in loaded.collisions] == [
        ("a-b.txt", "a b.txt", "a-b"),
        ("same.txt", "same.md", "same"),
    ]
    warnings = _skip_warnings(caplog)
    assert any("same.txt" in m and "same.md" in m and ids["same.txt"] in m for m in warnings)
    # Stable: the same files get the same ids again.
    again = {Path(d.source).name: d.doc_id for d in load_documents([tmp_path], 10**8).documents}
    assert again == ids


def test_a_sidecar_id_used_twice_skips_the_second_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"Text of {name}.")
        (tmp_path / f"{name}.meta.json").write_text(json.dumps({"doc_id": "chosen"}))
    with caplog.at_level(logging.WARNING):
        docs, skipped = _load([tmp_path])
    assert [d.doc_id for d in docs] == ["chosen"]
    assert len(skipped) == 1 and skipped[0].path.endswith("b.txt") and "duplicate" in skipped[0].reason


@pytest.mark.parametrize(
    "names",
    [
        ["日本.txt", "ジャパン.txt"],  # both slugs were empty: both became "document"
        ["___.txt", "----.txt"],
        ["x" * 240 + ".txt", "x" * 240 + "y.txt"],  # over the 200-character id limit
        ["Straße.txt", "Strae.txt"],  # a letter with no ASCII form
    ],
)
def test_any_file_name_gets_a_unique_id_the_api_accepts(tmp_path: Path, names: list[str]) -> None:
    """Issue 10, defect 7: ids unique, stable, and valid by the rule ``GET /v1/documents/{id}`` checks."""
    for i, name in enumerate(names):
        (tmp_path / name).write_text(f"Document number {i}.", encoding="utf-8")
    docs, skipped = _load([tmp_path])
    ids = [d.doc_id for d in docs]
    assert skipped == [] and len(ids) == len(names) == len(set(ids))
    assert all(DOC_ID_PATTERN.fullmatch(doc_id) for doc_id in ids), ids
    assert ids == [d.doc_id for d in _load([tmp_path])[0]]


def test_sha256_identifies_the_raw_bytes(tmp_path: Path) -> None:
    import hashlib

    raw = b"Isi dokumen."
    (tmp_path / "x.txt").write_bytes(raw)
    assert read_document(tmp_path / "x.txt", tmp_path, 10**6).sha256 == hashlib.sha256(raw).hexdigest()


# --- links out of the corpus folder (issue 10, defect 5) ---------------------------------------------------------------
def test_a_link_out_of_the_folder_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host secret", encoding="utf-8")
    (outside / "more").mkdir()
    (outside / "more" / "other.txt").write_text("another secret", encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("Tokutei Ginou workers.", encoding="utf-8")
    (docs / "inside.txt").symlink_to(docs / "good.txt")  # a link that stays inside is fine
    (docs / "h.txt").symlink_to(outside / "secret.txt")
    (docs / "linked-dir").symlink_to(outside / "more", target_is_directory=True)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        documents, skipped = _load([docs])
    assert sorted(d.doc_id for d in documents) == ["good", "inside"]
    # (a linked folder is not descended into at all: pathlib's rglob does not follow it)
    assert [Path(s.path).name for s in skipped] == ["h.txt"]
    assert all("outside" in s.reason and "TANYA_FOLLOW_SYMLINKS" in s.reason for s in skipped)
    assert sum("h.txt" in m for m in _skip_warnings(caplog)) == 1
    # The operator's explicit choice, and a file named directly, are still honoured.
    followed = load_documents([docs], 10**8, follow_symlinks=True).documents
    assert "h" in {d.doc_id for d in followed}
    named, _ = _load([docs / "h.txt"])
    assert [d.text for d in named] == ["host secret"]


# --- sidecars are type-checked (issue 10, defect 6) --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sidecar", "dropped"),
    [
        ({"languages": 5}, {"languages"}),
        ({"kind": {"x": 1}, "date": 20240101, "title": "Kept"}, {"kind", "date"}),
        ({"doc_id": "Not A Valid/Id", "description": ["x"]}, {"doc_id", "description"}),
        ({"doc_id": "x" * 201}, {"doc_id"}),
    ],
)
def test_a_bad_sidecar_field_is_dropped_with_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, sidecar: dict, dropped: set[str]
) -> None:
    (tmp_path / "guide.txt").write_text("Tokutei Ginou workers need a skills test.", encoding="utf-8")
    (tmp_path / "guide.txt.meta.json").write_text(json.dumps(sidecar), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        documents, skipped = _load([tmp_path])
    assert not skipped and len(documents) == 1
    doc = documents[0]
    warned = {f for f in dropped for m in _skip_warnings(caplog) if "guide.txt.meta.json" in m and repr(f) in m}
    assert warned == dropped
    assert doc.doc_id == "guide" and isinstance(doc.kind, str | None) and isinstance(doc.date, str | None)
    assert all(isinstance(x, str) for x in doc.languages)
    if "title" in sidecar:
        assert doc.title == "Kept"
    json.dumps(doc.to_record())  # what the index stores and the API serves


def test_an_unreadable_folder_is_skipped_with_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10, small item: a folder that could not be read vanished from the index without a word."""
    import os

    (tmp_path / "good.txt").write_text("Readable.", encoding="utf-8")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "inside.txt").write_text("Never read.", encoding="utf-8")
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:  # chmod 000 does not stop root (CI runs as root)
        if Path(str(path)) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        docs, skipped = _load([tmp_path])
    assert [d.doc_id for d in docs] == ["good"]
    assert [m for m in _skip_warnings(caplog) if "locked" in m and "Permission denied" in m]
    assert [Path(s.path).name for s in skipped] == ["locked"]  # so the exit status says so too


def test_a_link_to_nothing_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "good.txt").write_text("Readable.", encoding="utf-8")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "deleted.txt")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        docs, skipped = _load([tmp_path])
    assert [d.doc_id for d in docs] == ["good"]
    assert [Path(s.path).name for s in skipped] == ["gone.txt"]
    assert any("gone.txt" in m for m in _skip_warnings(caplog))


def test_a_stamp_from_the_walk_s_own_stat_and_listing_equals_a_fresh_one(tmp_path: Path) -> None:
    """Issue 11: the no-op walk stats each file once and reads sidecars from the folder listing; same stamps."""
    import os

    from indexer.documents import META_SUFFIX, file_stamp

    plain, with_meta = tmp_path / "plain.txt", tmp_path / "meta.txt"
    plain.write_text("Plain text about visas.", encoding="utf-8")
    with_meta.write_text("Text with a sidecar.", encoding="utf-8")
    (tmp_path / f"meta.txt{META_SUFFIX}").write_text('{"title": "T"}', encoding="utf-8")
    listing = set(os.listdir(tmp_path))
    for path in (plain, with_meta):
        listed = path.name + META_SUFFIX in listing
        assert file_stamp(path, tmp_path, None, os.lstat(path), listed) == file_stamp(path, tmp_path)
    assert file_stamp(with_meta, tmp_path)["sidecar"] is not None and file_stamp(plain, tmp_path)["sidecar"] is None
