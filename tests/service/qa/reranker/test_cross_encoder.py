"""The shipped reranker: its files load and merge exactly, and it reads answerhood, not topic (slow: real model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from indexer.errors import EmbedderUnavailableError
from service.qa.reranker.cross_encoder import ADAPTER_FILE, MODEL_DIR, SPEC_FILE, CrossEncoder, RerankerSpec

QUESTION = "Which Indonesian institutions take part in the Tokutei Ginou cooperation?"
RESTATEMENT = (
    "The results of this study aim to understand the implementation of the Tokutei Ginou program cooperation "
    "between Japan and Indonesia in realizing economic revitalization."
)
ANSWER = (
    "The involvement of the Japanese side from moJ, bureau of migration, AO, and RSO as well as active involvement "
    "from the Indonesian side through the Ministry of Manpower, BP2MI, and LPK."
)


def test_the_shipped_files_are_small_and_described() -> None:
    spec = RerankerSpec.from_file(MODEL_DIR / SPEC_FILE)
    assert (MODEL_DIR / ADAPTER_FILE).stat().st_size < 8_000_000
    assert (MODEL_DIR / "MODEL_CARD.md").is_file()
    assert 0.0 < spec.threshold < 1.0 and spec.platt_a > 0
    assert spec.training["valid_pool_metrics"], "the spec records what the model measured"


def test_another_format_version_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    raw = json.loads((MODEL_DIR / SPEC_FILE).read_text(encoding="utf-8"))
    raw["format_version"] = 999
    (tmp_path / SPEC_FILE).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(EmbedderUnavailableError, match="format version 999"):
        CrossEncoder.load(tmp_path)


@pytest.fixture(scope="module")
def cross_encoder() -> CrossEncoder:
    return CrossEncoder.load(num_threads=2)


@pytest.mark.slow
def test_merged_weights_score_like_the_unmerged_adapter(cross_encoder: CrossEncoder) -> None:
    import torch
    from peft import get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    from service.qa.reranker.base_model import load_base_model
    from service.qa.reranker.cross_encoder import lora_config, mean_pool, pair_ids

    tensors = load_file(str(MODEL_DIR / ADAPTER_FILE))
    model = get_peft_model(load_base_model(), lora_config(cross_encoder.spec))
    set_peft_model_state_dict(model, {k: v for k, v in tensors.items() if not k.startswith("head.")})
    model.eval()
    sentences = [RESTATEMENT, ANSWER, "Pendaftaran dibuka pada bulan Maret."]
    batch = cross_encoder.tokenizer.pad_batch([pair_ids(cross_encoder.tokenizer, cross_encoder.spec, QUESTION, s) for s in sentences])
    ids, mask = torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask)
    with torch.inference_mode():
        states = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        expected = (mean_pool(states, mask) @ tensors["head.weight"].T + tensors["head.bias"]).squeeze(-1).numpy()
    np.testing.assert_allclose(cross_encoder.logits(QUESTION, sentences), expected, atol=1e-3)


# Written for this test (not from any training set): a restatement of the question against the
# sentence that answers it, in Indonesian and English. The corpus's own hard case (the issue's
# BP2MI/LPK example) is still missed: see the strict xfail in tests/quality/.
RESTATED = [
    ("Berapa lama pelatihan bahasa Jepang sebelum berangkat?",
     "Program pelatihan bahasa Jepang merupakan bagian penting dari persiapan keberangkatan peserta.",
     "Pelatihan bahasa Jepang sebelum berangkat berlangsung selama empat bulan di LPK."),
    ("When was the apprenticeship agreement signed?",
     "The apprenticeship agreement is an important part of the cooperation between the two countries.",
     "The agreement was signed in Tokyo on 12 March 2024 by both ministers."),
    ("Siapa yang menandatangani kesepakatan itu?",
     "Kesepakatan itu merupakan bagian penting dari kerja sama kedua negara.",
     "Kesepakatan itu ditandatangani oleh Menteri Ketenagakerjaan Ida Fauziyah dan Presiden IM Japan."),
]


@pytest.mark.slow
@pytest.mark.parametrize(("question", "restatement", "answer"), RESTATED)
def test_the_answering_sentence_beats_the_restatement(
    cross_encoder: CrossEncoder, question: str, restatement: str, answer: str
) -> None:
    probs = cross_encoder.probabilities(question, [restatement, answer])
    assert probs[1] > probs[0] + 0.1, probs
    assert np.all((probs >= 0) & (probs <= 1))


@pytest.mark.slow
def test_scores_do_not_depend_on_batch_order_or_size(cross_encoder: CrossEncoder) -> None:
    sentences = [ANSWER, RESTATEMENT, "Short one.", "Pendaftaran dibuka pada bulan Maret setiap tahun."]
    together = cross_encoder.logits(QUESTION, sentences)
    alone = np.array([cross_encoder.logits(QUESTION, [s])[0] for s in sentences])
    np.testing.assert_allclose(together, alone, atol=1e-3)
    assert cross_encoder.logits(QUESTION, []).shape == (0,)
