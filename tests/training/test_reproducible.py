"""``make train-reranker`` is reproducible: the same seed and data give the same adapter (slow, tiny config)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from service.qa.reranker.reader import ADAPTER_FILE, native_bf16
from tests.support.helpers import REPO_ROOT, make_settings
from training.reranker import TrainConfig, train

DATA = REPO_ROOT.parent / "shared" / "eval-data"
TINY = TrainConfig(
    epochs=1.0,
    # Emulated bf16 (a CPU without AVX512-BF16 or AMX) made these tests about 10x slower; the property under
    # test (same seed, same adapter; resumption; a later stage) holds in either precision.
    bf16=native_bf16(),
    questions={"tydiqa-id": 6, "idk-mrc": 6, "squad2-en": 4, "abstracts": 2, "migration": 2},
    valid_questions={"tydiqa-id": 4, "idk-mrc": 6, "squad2-en": 4, "crosslingual": 4, "abstracts": 4, "migration": 4},
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One tiny run's output folder and training record (read-only for the tests that share it)."""
    if not (DATA / "tydiqa-id" / "train.json").is_file():
        pytest.skip("../shared/eval-data is not here")
    folder = tmp_path_factory.mktemp("trained")
    # The fake encoder retrieves the calibration pools: fast, and as deterministic as the training itself.
    record = train(TINY, DATA, folder / "model", make_settings(folder / "unused-index"), folder / "work")
    return folder / "model", record


@pytest.mark.slow
def test_the_same_seed_gives_the_same_adapter(tmp_path: Path, trained: tuple[Path, dict[str, Any]]) -> None:
    from safetensors.torch import load_file

    first_dir, first = trained
    second = train(TINY, DATA, tmp_path / "b", make_settings(tmp_path / "unused-index"), tmp_path / "work-b")
    a, b = load_file(str(first_dir / ADAPTER_FILE)), load_file(str(tmp_path / "b" / ADAPTER_FILE))
    assert a.keys() == b.keys() and len(a) == 12 * 6 * 2 + 5  # lora_A and lora_B per target, the head's MLP (4) and null
    assert all(bool((a[k] - b[k]).abs().max() <= 1e-6) for k in a)
    assert first["valid_pool_metrics"] == second["valid_pool_metrics"]
    assert (first_dir / "MODEL_CARD.md").is_file()


class _Killed(Exception):
    """Stands for the process dying mid-run."""


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "tydiqa-id" / "train.json").is_file(), reason="../shared/eval-data is not here")
def test_an_interrupted_run_resumes_to_the_same_adapter(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    settings = make_settings(tmp_path / "unused-index")
    config = replace(TINY, resume_every=1)
    train(config, DATA, tmp_path / "whole", settings, tmp_path / "work-whole")

    def die_after_first_step(stage: str, done: int, total: int, detail: str) -> None:
        if stage == "train" and done == 1:
            raise _Killed

    with pytest.raises(_Killed):
        train(config, DATA, tmp_path / "cut", settings, tmp_path / "work-cut", die_after_first_step)
    assert (tmp_path / "work-cut" / "resume" / "state.pt").is_file()
    steps: list[int] = []
    train(config, DATA, tmp_path / "cut", settings, tmp_path / "work-cut",
          lambda stage, done, total, detail: steps.append(done) if stage == "train" else None)
    assert steps and steps == list(range(2, steps[-1] + 1))  # step 1 was not run again; the rest were, in order
    assert not (tmp_path / "work-cut" / "resume" / "state.pt").exists()  # cleared once finished
    a, b = load_file(str(tmp_path / "whole" / ADAPTER_FILE)), load_file(str(tmp_path / "cut" / ADAPTER_FILE))
    assert all(bool((a[k] - b[k]).abs().max() <= 1e-6) for k in a)


@pytest.mark.slow
def test_a_run_killed_while_calibrating_resumes_without_training_again(
    tmp_path: Path, trained: tuple[Path, dict[str, Any]]
) -> None:
    from safetensors.torch import load_file

    settings = make_settings(tmp_path / "unused-index")

    def die_when_calibrating(stage: str, done: int, total: int, detail: str) -> None:
        if stage == "calibration":
            raise _Killed

    with pytest.raises(_Killed):
        train(TINY, DATA, tmp_path / "cut", settings, tmp_path / "work", die_when_calibrating)
    assert (tmp_path / "work" / "resume" / "state.pt").is_file()
    assert not (tmp_path / "cut" / "MODEL_CARD.md").exists()  # what make train-reranker takes for a finished stage
    stages: list[str] = []
    record = train(TINY, DATA, tmp_path / "cut", settings, tmp_path / "work",
                   lambda stage, done, total, detail: stages.append(stage))
    assert "train" not in stages and "calibration" in stages
    assert not (tmp_path / "work" / "resume" / "state.pt").exists()
    a, b = load_file(str(trained[0] / ADAPTER_FILE)), load_file(str(tmp_path / "cut" / ADAPTER_FILE))
    assert all(bool((a[k] - b[k]).abs().max() <= 1e-6) for k in a)
    assert record["valid_pool_metrics"] == trained[1]["valid_pool_metrics"]


@pytest.mark.slow
def test_a_later_stage_starts_from_the_adapter_it_is_given(tmp_path: Path, trained: tuple[Path, dict[str, Any]]) -> None:
    from safetensors.torch import load_file

    stage_1, _ = trained
    # With no learning rate the second stage can only hand back what it started from.
    frozen = replace(TINY, seed=14, init_adapter=str(stage_1), learning_rate=0.0, head_learning_rate=0.0)
    record = train(frozen, DATA, tmp_path / "stage-2", make_settings(tmp_path / "unused-index"), tmp_path / "work-2")
    a, b = load_file(str(stage_1 / ADAPTER_FILE)), load_file(str(tmp_path / "stage-2" / ADAPTER_FILE))
    assert a.keys() == b.keys()
    assert all(bool((a[k] - b[k]).abs().max() == 0) for k in a)
    assert record["config"]["init_adapter"] == str(stage_1)
    assert record["previous_stage"]["config"]["seed"] == TINY.seed  # the spec and card describe both stages
    assert "continued the adapter of 1 earlier stage" in (tmp_path / "stage-2" / "MODEL_CARD.md").read_text()
