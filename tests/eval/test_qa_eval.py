"""``tanya eval qa``'s runner on a tiny SQuAD-format set (fake encoder, support path and baseline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.qa import QAResult, markdown_table, run_qa, summarise
from eval.squad import answer_in, load_squad
from indexer.embedders.fake import FakeEmbedder
from tests.support.helpers import make_settings

CONTEXTS = [
    "Mount Fuji is the highest mountain in Japan. It is 3,776 metres tall.",
    "Jakarta is the capital of Indonesia. It lies on the north coast of Java.",
]


def _file(tmp_path: Path) -> Path:
    paragraphs = [
        {"context": CONTEXTS[0], "qas": [
            {"id": "q1", "question": "How tall is Mount Fuji?", "is_impossible": False,
             "answers": [{"text": "3,776 metres", "answer_start": CONTEXTS[0].index("3,776 metres")}]},
            {"id": "q2", "question": "Who first climbed Mount Fuji?", "is_impossible": True, "answers": []},
        ]},
        {"context": CONTEXTS[1], "qas": [
            {"id": "q3", "question": "What is the capital of Indonesia?", "is_impossible": False,
             "answers": [{"text": "Jakarta", "answer_start": 0}]},
        ]},
    ]
    path = tmp_path / "valid.json"
    path.write_text(json.dumps(paragraphs), encoding="utf-8")
    return path


def test_run_qa_indexes_the_contexts_and_scores_every_configuration(tmp_path: Path) -> None:
    qaset = load_squad(_file(tmp_path))
    assert [i.answerable for i in qaset.items] == [True, False, True]
    settings = make_settings(tmp_path / "unused", abstain_threshold=0.0)
    report = run_qa(qaset, settings, tmp_path / "work", [FakeEmbedder()], None, ("support", "bare-e5"),
                    baseline_encoder="fake")
    assert set(report["table"]) == {"support", "bare-e5"}
    support = report["table"]["support"]
    assert support["questions"] == 3 and support["answerable"] == 2 and support["unanswerable"] == 1
    assert support["recall@5"] == 1.0  # two contexts: the own one is always in the top 5
    assert 0.0 <= support["first_sentence_hit"] <= support["answer_hit"] <= 1.0
    assert support["latency_p50_ms"] > 0 and set(support["stage_share"]) >= {"retrieve", "answer"}
    assert report["table"]["bare-e5"]["false_abstention"] == 0.0
    assert "| support |" in markdown_table(report)
    # Documents are the contexts, unchanged: citations index them exactly.
    assert (tmp_path / "work" / "docs" / "ctx-00000.txt").read_text(encoding="utf-8") == CONTEXTS[0]


def test_grouped_rows_split_each_configuration_by_question_group(tmp_path: Path) -> None:
    qaset = load_squad(_file(tmp_path))
    settings = make_settings(tmp_path / "unused", abstain_threshold=0.0)
    report = run_qa(qaset, settings, tmp_path / "work", [FakeEmbedder()], None, ("support",),
                    group=lambda item: "fuji" if "Fuji" in item.question else "other")
    table = report["table"]
    assert set(table) == {"support", "support | fuji", "support | other"}
    assert table["support | fuji"]["questions"] == 2 and table["support | other"]["questions"] == 1
    assert table["support | fuji"]["unanswerable"] == 1
    assert "| support | fuji |" in markdown_table(report)


def test_the_crosslingual_command_names_a_missing_data_folder_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from eval.cli import app

    result = CliRunner().invoke(app, ["crosslingual", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code != 0
    assert "cannot read the question set" in result.output and "Traceback" not in result.output


def test_summary_counts_hits_and_abstentions() -> None:
    def result(answerable: bool, abstained: bool, first: bool | None, hit: bool | None) -> QAResult:
        return QAResult("x", "c", answerable, True if answerable else None, abstained, first, hit, 0.5, 10.0)

    rows = [result(True, False, True, True), result(True, False, False, True), result(True, True, False, False),
            result(False, True, None, None), result(False, False, None, None)]
    table = summarise(rows)
    assert table["first_sentence_hit"] == pytest.approx(1 / 3)
    assert table["answer_hit"] == pytest.approx(2 / 3)
    assert table["false_abstention"] == pytest.approx(1 / 3)
    assert table["abstain_recall"] == pytest.approx(0.5)
    assert table["abstain_precision"] == pytest.approx(0.5)


def test_answer_matching_ignores_case_and_spacing() -> None:
    assert answer_in("It is 3,776  Metres tall.", ["3,776 metres"])
    assert not answer_in("It is tall.", ["3,776 metres"])
