"""``make train-reranker`` runs the recipe the shipped reader records: stage by stage, the same seed, passes,
learning rates and questions (so that the Makefile cannot drift from the adapter it claims to reproduce)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from typing import Any

import pytest

from service.qa.reranker.reader import SPEC_FILE
from tests.support.helpers import REPO_ROOT
from training.reranker import TrainConfig

MODEL_SPEC = REPO_ROOT / "service" / "qa" / "reranker" / "model" / SPEC_FILE


def _shipped_stages() -> list[dict[str, Any]]:
    """The shipped reader's training configs, oldest stage first."""
    record: dict[str, Any] | None = json.loads(MODEL_SPEC.read_text(encoding="utf-8"))["training"]
    stages = []
    while record:
        stages.append(record["config"])
        record = record.get("previous_stage")
    return stages[::-1]


def _make_stages() -> list[dict[str, Any]]:
    """The options of each ``python -m training reranker`` that ``make -n -B train-reranker`` would run, in order."""
    dry = subprocess.run(
        ["make", "-n", "-B", "train-reranker"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.replace("\\\n", " ")
    stages = []
    for line in dry.splitlines():
        if "-m training reranker" not in line:
            continue
        words = shlex.split(line)
        options = {words[i][2:]: words[i + 1] for i in range(len(words) - 1) if words[i].startswith("--")}
        stages.append(options)
    return stages


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_train_reranker_runs_the_shipped_readers_recipe() -> None:
    shipped, made = _shipped_stages(), _make_stages()
    assert len(made) == len(shipped) == 4
    default = TrainConfig()
    for n, (config, options) in enumerate(zip(shipped, made, strict=True), start=1):
        assert int(options.get("seed", default.seed)) == config["seed"], f"stage {n}"
        assert float(options.get("epochs", default.epochs)) == config["epochs"], f"stage {n}"
        assert float(options.get("learning-rate", default.learning_rate)) == config["learning_rate"], f"stage {n}"
        assert float(options.get("head-learning-rate", default.head_learning_rate)) == config["head_learning_rate"], f"stage {n}"
        questions = json.loads(options["questions"]) if "questions" in options else default.questions
        assert questions == config["questions"], f"stage {n}"
        # Each later stage continues the one before it.
        assert ("init-adapter" in options) == (n > 1), f"stage {n}"
    assert "out" not in made[-1], "the last stage writes the shipped model folder"
