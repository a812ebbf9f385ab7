"""What Tanya says in its own words, in English and Indonesian, and how source text is shown.

Answers are copied from the sources; only abstentions are Tanya's own sentences. They are
kept here, apart from the logic that decides to abstain, so wording can be reviewed and
translated in one place.
"""

from __future__ import annotations

import re

from indexer.language import Lang
from service.qa.answer_types import AnswerType

ABSTAIN_MESSAGES: dict[Lang, str] = {
    "en": "The sources do not answer this question. The closest passages are listed below.",
    "id": "Sumber yang tersedia tidak menjawab pertanyaan ini. Bagian yang paling dekat tercantum di bawah.",
}
# When a value question is refused because no source sentence states such a value, say
# which value is missing: "the sources give no amount" tells a worker more than "no answer".
_MISSING_VALUE: dict[AnswerType, dict[Lang, str]] = {
    AnswerType.MONEY: {"en": "an amount of money", "id": "nominal uang (biaya, gaji, atau harga)"},
    AnswerType.AGE: {"en": "an age", "id": "batas usia"},
    AnswerType.LEVEL: {"en": "a language level", "id": "level bahasa"},
    AnswerType.DATE: {"en": "a date", "id": "tanggal atau tahun"},
    AnswerType.DURATION: {"en": "a duration", "id": "lama waktu"},
    AnswerType.COUNT: {"en": "this number", "id": "jumlah ini"},
    AnswerType.REQUIREMENTS: {"en": "requirements or documents", "id": "syarat atau dokumen"},
}


#: For a question made only of stop words ("the of and?", "kenapa?"): say why, and what would help.
NO_CONTENT_MESSAGES: dict[Lang, str] = {
    "en": (
        "The question has no word to search the sources by (only words such as \"what\" or \"the\"). "
        "Ask about a topic, for example a programme, a cost or a requirement."
    ),
    "id": (
        "Pertanyaan ini tidak memuat kata yang bisa dicari di sumber (hanya kata seperti \"apa\" atau \"yang\"). "
        "Tanyakan suatu topik, misalnya program, biaya, atau syarat."
    ),
}


def abstain_message(lang: Lang, missing: AnswerType | None = None) -> str:
    """The abstention text in ``lang``, naming the missing kind of value when there is one."""
    if missing is None or missing not in _MISSING_VALUE:
        return ABSTAIN_MESSAGES[lang]
    what = _MISSING_VALUE[missing][lang]
    if lang == "id":
        return f"Sumber yang tersedia tidak menyebutkan {what} untuk pertanyaan ini. Bagian yang paling dekat tercantum di bawah."
    return f"The sources do not state {what} for this question. The closest passages are listed below."


#: Markdown emphasis markers (``**``, ``__``...) next to a word. The web page hides the same
#: markers when it renders a source (``EMPHASIS`` in static/app.js; a test keeps the two equal).
EMPHASIS_PATTERN = r"(\*{1,3}|_{2,3})(?=\S)|(?<=\S)(\*{1,3}|_{2,3})"
_EMPHASIS = re.compile(EMPHASIS_PATTERN)


def display_text(text: str) -> str:
    """Sentence text for reading: markdown emphasis markers removed, words untouched."""
    return _EMPHASIS.sub("", text).strip()
