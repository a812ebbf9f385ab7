"""Expected answer types: what kind of value a question asks for, and whether a sentence states one.

Classic factoid QA (Li & Roth's NUM:money, NUM:period, NUM:count, NUM:date...) applied to
the questions our users ask in English and Indonesian. The answer type does two jobs:

- **A gate.** A question asking for a value (a wage, a fee, an age limit, a JLPT level, a
  duration, a count, a date) is only answered by a sentence that states a value of that
  kind. "Berapa gaji peserta magang?" must not be answered with "Target 10 Ribu Peserta":
  the sources talk about the programme but state no wage, so Tanya abstains. Dense
  similarity cannot tell these apart (the wage question is close to every sentence about
  the apprenticeship), which is why this check is lexical and strict.
- **A preference.** A "who" question prefers sentences that name organisations or people;
  that is only a bonus, because actors are named in too many ways to gate on.

The patterns are deliberately narrow on the question side (a money word alone, as in
"what does the study say about wages?", does not make a money question; "berapa gaji" or
"what is the minimum wage" does) and specific on the sentence side (a money question needs
a currency, a duration question a number with a time unit).
"""

from __future__ import annotations

import re
from enum import StrEnum

from indexer.language import detect_language


class AnswerType(StrEnum):
    """The kind of value a question asks for."""

    MONEY = "money"
    AGE = "age"
    LEVEL = "level"
    DATE = "date"
    DURATION = "duration"
    COUNT = "count"
    REQUIREMENTS = "requirements"
    ACTORS = "actors"


#: Types whose value must be stated in the answer sentence, or Tanya abstains.
STRICT_TYPES = frozenset(
    {
        AnswerType.MONEY,
        AnswerType.AGE,
        AnswerType.LEVEL,
        AnswerType.DATE,
        AnswerType.DURATION,
        AnswerType.COUNT,
        AnswerType.REQUIREMENTS,
    }
)

_I = re.IGNORECASE
_W = r"(?:[\w'’-]+\s+)"  # one word and its trailing space

# --- question side -----------------------------------------------------------------------
_MONEY_NOUN = (
    r"(?:wages?|salar(?:y|ies)|pay|income|fees?|costs?|prices?|fares?|gaji(?:nya)?|upah(?:nya)?|"
    r"biaya(?:nya)?|harga(?:nya)?|tarif(?:nya)?|ongkos(?:nya)?|penghasilan(?:nya)?|pendapatan(?:nya)?)"
)
_MONEY_Q = [
    # "what is the (minimum monthly) wage", "what's the fee"
    re.compile(
        rf"\bwhat(?:'s|’s| is| are| was| were)?\s+(?:the\s+|a\s+)?"
        rf"(?:(?:minimum|maximum|average|monthly|hourly|daily|yearly|annual|basic|starting|typical|usual|total|"
        rf"placement|application|visa|training|agency)\s+)*{_MONEY_NOUN}\b",
        _I,
    ),
    # "how much ... cost / pay / earn / charge", "how much money", "how much is the fee"
    re.compile(r"\bhow much\b.*\b(?:cost|costs|pay|paid|earn|earns|charge|charges|spend|money|salary|wage|fee|price)\b", _I),
    # "berapa (rata-rata) gaji", "gaji ... berapa", "biaya apa saja"
    re.compile(rf"\bberapa\s+{_W}{{0,2}}{_MONEY_NOUN}\b|\b{_MONEY_NOUN}\s+{_W}{{0,4}}berapa\b", _I),
    re.compile(r"\b(?:cheapest|most expensive|termurah|termahal|paling murah|paling mahal)\b", _I),
]
_AGE_Q = re.compile(
    r"\bhow old\b|\b(?:minimum|maximum|min|max|what|which)\s+age\b|\bage (?:limit|requirement|range)s?\b|"
    r"\bberapa\s+(?:batas\s+)?(?:usia|umur)\b|\b(?:usia|umur)\s+(?:\w+\s+){0,3}berapa\b|\bbatas\s+(?:usia|umur)\b",
    _I,
)
_LEVEL_Q = re.compile(
    r"\b(?:jlpt|jft(?:-basic)?)\b.*\b(?:level|berapa|what|which|apa|tingkat|minimum|minimal)\b|"
    r"\b(?:level|berapa|what|which|apa|tingkat|minimum|minimal)\b.*\b(?:jlpt|jft)\b|\bN\s?berapa\b|"
    r"\b(?:what|which) (?:language )?level\b|\blevel (?:bahasa|berapa)\b",
    _I,
)
_DATE_Q = re.compile(
    r"\b(?:when|kapan|(?:what|which|in what|in which) (?:date|year|day|month)|"
    r"(?:tanggal|tahun|bulan|hari) (?:berapa|apa|kapan))\b",
    _I,
)
_TIME_UNIT_EN = r"(?:years?|months?|weeks?|days?|hours?|decades?)"
_TIME_UNIT_ID = r"(?:tahun|bulan|minggu|pekan|hari|jam|dekade|windu)"
_DURATION_Q = re.compile(
    rf"\b(?:how long|for how long|berapa lama|lama(?:nya)? berapa|durasi|duration|"
    rf"how many {_TIME_UNIT_EN}|berapa {_TIME_UNIT_ID})\b",
    _I,
)
_COUNT_Q = re.compile(
    r"\b(?:how many|how far|what number of|what percentage|headcount|berapa(?: banyak| jumlah)?|"
    r"jumlah\s+(?:\w+\s+){0,4}berapa)\b",
    _I,
)
# "What are the requirements / which documents are needed / syarat apa saja": the most
# asked question of prospective workers, answered only by a sentence stating a requirement.
_REQUIREMENTS_Q = re.compile(
    r"\b(?:requirements?|prerequisites?|eligib\w+|syarat(?:nya)?|persyaratan(?:nya)?|kualifikasi)\b|"
    r"\b(?:what|which) (?:documents?|papers?|paperwork)\b|\bdocuments? (?:are |is )?(?:needed|required)\b|"
    r"\b(?:dokumen|berkas)(?:nya)? (?:apa|yang (?:diperlukan|dibutuhkan|harus|wajib))\b",
    _I,
)
_ACTORS_Q = re.compile(
    r"\b(?:who|whom|which (?:organi[sz]ations?|institutions?|ministr(?:y|ies)|agenc(?:y|ies)|part(?:y|ies)|"
    r"bod(?:y|ies))|siapa|pihak (?:mana|apa)|lembaga (?:mana|apa)|instansi (?:mana|apa))\b",
    _I,
)

# --- sentence side -----------------------------------------------------------------------
_NUMBER = (
    r"(?:\d[\d.,]*|satu|dua|tiga|empat|lima|enam|tujuh|delapan|sembilan|sepuluh|sebelas|seratus|seribu|"
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"thousand|million|belas|puluh|ratus|ribu|juta|miliar)"
)
_NUMBER_RE = re.compile(rf"\b{_NUMBER}\b", _I)
_CURRENCY = re.compile(
    r"(?:\bRp\.?\s?\d|\b(?:rupiah|yen|jpy|idr|usd|dollars?|dolar)\b|[¥$€]\s?\d|\d\s?(?:yen|rupiah)\b|"
    r"\b(?:gratis|free of charge|tanpa biaya|tidak dipungut biaya)\b)",
    _I,
)
_AGE_VALUE = re.compile(
    rf"\b{_NUMBER}\s*(?:-\s*\d+\s*)?(?:years? old|tahun ke atas|tahun ke bawah)\b|"
    rf"\b(?:aged|berusia|usia|umur|age[sd]?)\s+(?:\w+\s+){{0,3}}{_NUMBER}",
    _I,
)
_LEVEL_VALUE = re.compile(r"\b(?:N[1-5]|JLPT|JFT(?:-Basic)?|A[12]|B[12])\b|\b(?:level|tingkat)\s+\w+", _I)
_MONTHS = (
    r"(?:januari|februari|maret|april|mei|juni|juli|agustus|september|oktober|november|desember|january|"
    r"february|march|june|july|august|october|december)"
)
_DATE_VALUE = re.compile(
    # "May" only next to a day number: "may serve as a stepping stone" is not a date.
    rf"\b(?:1[89]\d\d|20\d\d)\b|\b{_MONTHS}\b|\bMay\s+\d|\d\s+May\b|\b(?:senin|selasa|rabu|kamis|jumat|sabtu|monday|"
    rf"tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    _I,
)
_DAY_MONTH = re.compile(rf"\b\d{{1,2}}\s+{_MONTHS}\b|\b{_MONTHS}\s+\d{{1,2}}\b", _I)
_YEAR = re.compile(r"\b(?:1[89]\d\d|20\d\d)\b")
_DURATION_VALUE = re.compile(
    rf"\b{_NUMBER}(?:\s+(?:belas|puluh|ratus|ribu|hundred|thousand))?\s+(?:{_TIME_UNIT_EN}|{_TIME_UNIT_ID})\b|"
    rf"\b(?:setahun|sebulan|seminggu|sehari|a year|a month|a week|a decade)\b",
    _I,
)
# The words naming what a count or duration question measures: the run of content words right
# after "berapa (lama|banyak|jumlah|tahun...)" or "how many / how long".
_MEASURED = re.compile(
    rf"\b(?:how many|how long|berapa(?:\s+(?:lama|banyak|jumlah|{_TIME_UNIT_ID}))?)\s+((?:[\w-]+\s*){{1,3}})",
    _I,
)
_FILLERS = frozenset("sih dong deh kok ya yah nih tuh aja sajakah lah kah nya".split())
_REQUIREMENT_VALUE = re.compile(
    r"\b(?:syarat\w*|persyaratan|requirements?|required|requires?|wajib|diwajibkan|eligib\w+|kualifikasi|"
    r"qualifications?|paspor|passports?|ijazah|KTP|akta|certificates?|must (?:have|hold|submit|pass|be))\b",
    _I,
)
_ACRONYM = re.compile(r"\b(?=\w*[A-Z]\w*[A-Z0-9])[A-Za-z][A-Za-z0-9]{1,7}\b")


def measured_words(question: str, stopwords: frozenset[str]) -> list[str]:
    """The words naming what a count or duration question measures ("kontrak" in "berapa lama kontrak magang").

    The run of content words right after the trigger, and in Indonesian only its head: "how
    many industry sectors does" gives ``["industry", "sectors"]``, "berapa lama kontrak magang
    di Jepang" ``["kontrak"]``, and "udah jalan berapa lama sih?" nothing (the measured thing
    comes first there, and is left unchecked).
    """
    match = _MEASURED.search(question)
    if not match:
        return []
    words: list[str] = []
    for word in re.findall(r"[\w-]+", match.group(1).lower()):
        if word in stopwords or word in _FILLERS:
            break
        words.append(word)
    # Indonesian noun phrases put the head first ("perusahaan Jepang" = Japanese companies):
    # keep only the head, or "Jepang" would match half the corpus.
    if words and detect_language(question, fallback="en") == "id":
        return words[:1]
    return words


def expected_type(question: str) -> AnswerType | None:
    """The answer type ``question`` asks for, or ``None`` for open questions ("why", "what").

    Checked from the most to the least specific: "berapa gaji" is a money question before it
    is a count question, "berapa tahun" a duration before a count, "tahun berapa" a date.
    """
    if any(p.search(question) for p in _MONEY_Q):
        return AnswerType.MONEY
    if _AGE_Q.search(question):
        return AnswerType.AGE
    if _LEVEL_Q.search(question):
        return AnswerType.LEVEL
    if _REQUIREMENTS_Q.search(question):
        return AnswerType.REQUIREMENTS
    if _DATE_Q.search(question):
        return AnswerType.DATE
    if _DURATION_Q.search(question):
        return AnswerType.DURATION
    if _COUNT_Q.search(question):
        return AnswerType.COUNT
    if _ACTORS_Q.search(question):
        return AnswerType.ACTORS
    return None


def states_value(kind: AnswerType, sentence: str) -> bool:
    """Whether ``sentence`` states a value of the ``kind`` a question asks for."""
    if kind is AnswerType.MONEY:
        return bool(_CURRENCY.search(sentence))
    if kind is AnswerType.AGE:
        return bool(_AGE_VALUE.search(sentence))
    if kind is AnswerType.LEVEL:
        return bool(_LEVEL_VALUE.search(sentence))
    if kind is AnswerType.DATE:
        return bool(_DATE_VALUE.search(sentence))
    if kind is AnswerType.DURATION:
        return bool(_DURATION_VALUE.search(sentence))
    if kind is AnswerType.REQUIREMENTS:
        return bool(_REQUIREMENT_VALUE.search(sentence))
    if kind is AnswerType.COUNT:
        # A date or a duration is not a count: "13 Februari 2024" does not say how many.
        rest = _YEAR.sub(" ", _DAY_MONTH.sub(" ", _DURATION_VALUE.sub(" ", sentence)))
        return bool(_NUMBER_RE.search(rest))
    return len(_ACRONYM.findall(sentence)) >= 2
