"""Tell Indonesian from English, the two languages of the corpus and of its users.

A stop-word and affix vote is enough for this pair and needs no model download; text
with no evidence either way keeps the caller's fallback (usually the previous
sentence's language), so short keyword lines do not flip a chunk's language.
"""

from __future__ import annotations

import re
from typing import Literal

Lang = Literal["en", "id"]

_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")

EN_MARKERS = frozenset(
    """the a an and or of to in on at is are was were be been being for with by as that this these those
    from which what who whom whose how when where why does do did has have had it its their there than then
    into about also not but can could will would should may might must our we you your he she they them his
    her such through between both each other more most many much any some only own same so very after before
    during while because if however therefore namely well""".split()
)

ID_MARKERS = frozenset(
    """yang dan di ke dari untuk dengan ini itu dalam pada adalah akan tidak oleh sebagai juga bagi atau
    karena serta para telah dapat mereka kami kita bahwa berapa siapa apa apakah bagaimana kapan mengapa
    kenapa dimana mana sudah belum masih hanya lebih sangat tersebut secara antara melalui tentang terhadap
    hingga sampai agar supaya namun tetapi tapi jika kalau saat ketika setelah sebelum yakni yaitu ialah
    merupakan bisa harus perlu ada tanpa sejak selama sekitar seperti bukan saja pun lagi akan sebuah
    seorang beberapa banyak semua setiap nya kah lah berapakah siapakah""".split()
)

# Indonesian affixes (meN-, ber-, di-...-kan, -nya) are strong cues on content words.
_ID_AFFIX = re.compile(
    r"^(?:me[mn]g?|ber|ter|per|pe[mn]g?)\w{3,}$|^\w{3,}(?:kan|nya|lah)$|^di\w{3,}kan$|^ke\w{3,}an$"
)


def detect_language(text: str, fallback: Lang = "en") -> Lang:
    """Return ``"id"`` or ``"en"`` for ``text``; ``fallback`` when the text gives no evidence."""
    en = 0.0
    idn = 0.0
    for raw in _WORD.findall(text):
        word = raw.lower()
        if word in EN_MARKERS:
            en += 1.0
        elif word in ID_MARKERS:
            idn += 1.0
        elif _ID_AFFIX.match(word):
            idn += 0.5
    if en == idn:
        return fallback
    return "en" if en > idn else "id"
