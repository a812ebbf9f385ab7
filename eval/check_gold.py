"""Validate eval/gold.jsonl against the corpus and the required mix."""
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
GOLD = Path(__file__).resolve().parent / "gold.jsonl"

KEYS = {"id", "question", "lang", "answerable", "evidence", "answer_any", "cross_lingual", "kind"}
KINDS = {"factoid", "paraphrase", "multi_sentence", "out_of_scope", "near_domain"}
# Where the second-language half of each bilingual document starts (marker, language before, language after).
SPLITS = {
    "meti-japan-internship-program": ("Pasar tenaga kerja yang berubah", "en", "id"),
    "tokutei-ginou-bilateral-cooperation": ("## **ABSTRACT**", "id", "en"),
    "kemnaker-im-japan-magang-2024": (None, "id", "id"),
}


def load_corpus():
    docs = {}
    for p in CORPUS.iterdir():
        if p.is_file() and not p.name.endswith(".meta.json"):
            docs[p.stem] = p.read_text(encoding="utf-8")
    return docs


def evidence_lang(doc_id, text, docs):
    marker, before, after = SPLITS[doc_id]
    if marker is None:
        return before
    return before if docs[doc_id].find(text) < docs[doc_id].find(marker) else after


def check(path=GOLD):
    docs = load_corpus()
    errors, items, ids = [], [], set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            it = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"line {n}: bad JSON ({e})")
            continue
        items.append(it)
        tag = f"line {n} ({it.get('id')})"
        if set(it) != KEYS:
            errors.append(f"{tag}: keys {sorted(it)}")
            continue
        if it["id"] in ids:
            errors.append(f"{tag}: duplicate id")
        ids.add(it["id"])
        if it["lang"] not in ("en", "id"):
            errors.append(f"{tag}: lang {it['lang']}")
        if it["kind"] not in KINDS:
            errors.append(f"{tag}: kind {it['kind']}")
        unans = it["kind"] in ("out_of_scope", "near_domain")
        if it["answerable"] == unans:
            errors.append(f"{tag}: answerable inconsistent with kind")
        if not it["answerable"]:
            if it["evidence"] or it["answer_any"] or it["cross_lingual"]:
                errors.append(f"{tag}: unanswerable item must have empty evidence/answer_any and cross_lingual false")
            continue
        if not it["evidence"] or not it["answer_any"]:
            errors.append(f"{tag}: answerable item needs evidence and answer_any")
        langs = set()
        for ev in it["evidence"]:
            d, t = ev.get("doc_id"), ev.get("text", "")
            if d not in docs:
                errors.append(f"{tag}: unknown doc_id {d}")
                continue
            if t not in docs[d]:
                errors.append(f"{tag}: evidence not in {d}: {t!r}")
                continue
            if not 30 <= len(t) <= 250:
                errors.append(f"{tag}: evidence length {len(t)}")
            langs.add(evidence_lang(d, t, docs))
        if it["cross_lingual"] != (it["lang"] not in langs):
            errors.append(f"{tag}: cross_lingual={it['cross_lingual']} but evidence langs {sorted(langs)}")
        evtext = " ".join(ev.get("text", "") for ev in it["evidence"]).lower()
        for term in it["answer_any"]:
            if not 1 <= len(term.split()) <= 4:
                errors.append(f"{tag}: answer term length {term!r}")
            if term.lower() not in evtext:
                errors.append(f"{tag}: answer term not in evidence {term!r}")
        if it["kind"] == "multi_sentence" and len(it["evidence"]) < 2:
            errors.append(f"{tag}: multi_sentence needs 2+ evidence strings")

    total = len(items)
    c = lambda key: Counter(str(i.get(key)) for i in items)
    lang, kind, cross, ans = c("lang"), c("kind"), c("cross_lingual"), c("answerable")
    unans_lang = Counter((i["lang"], i["kind"]) for i in items if not i.get("answerable"))
    docs_cov = Counter(ev["doc_id"] for i in items for ev in i.get("evidence", []))
    mix = [
        (total >= 90, f"total {total} >= 90"),
        (0.4 <= lang["en"] / max(total, 1) <= 0.6, f"en share {lang['en']}/{total}"),
        (cross["True"] >= 0.25 * total, f"cross_lingual {cross['True']} >= 25% (the issue's floor)"),
        (kind["paraphrase"] >= 15, f"paraphrase {kind['paraphrase']} >= 15"),
        (kind["multi_sentence"] >= 8, f"multi_sentence {kind['multi_sentence']} >= 8"),
        (ans["False"] >= 16, f"unanswerable {ans['False']} >= 16"),
        (all(unans_lang[(l, k)] > 0 for l in ("en", "id") for k in ("out_of_scope", "near_domain")),
         f"unanswerable by lang/kind {dict(unans_lang)}"),
        (all(docs_cov[d] > 0 for d in docs), f"doc coverage {dict(docs_cov)}"),
    ]
    errors += [f"mix: {msg}" for ok, msg in mix if not ok]
    print(f"items={total} lang={dict(lang)} kind={dict(kind)} cross_lingual={dict(cross)} answerable={dict(ans)}")
    print(f"unanswerable by (lang, kind)={dict(unans_lang)}")
    print(f"evidence strings per doc={dict(docs_cov)}")
    return errors


def main():
    errors = check()
    for e in errors:
        print("ERROR", e)
    print("OK" if not errors else f"{len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
