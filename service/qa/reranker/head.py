"""The reader's scoring head (torch): one logit per sentence from its tokens' states, and the null logit.

Kept apart from :mod:`.reader` so that importing the answer path does not import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch


class Spans(Protocol):
    """Where a window's sentences are, in tokens (``reader.Window`` satisfies it)."""

    @property
    def spans(self) -> tuple[tuple[int, int], ...]: ...


class SentenceHead(torch.nn.Module):
    """An MLP over [mean; max] of each sentence's last hidden states, plus a learned null logit.

    Mean and max together let one strongly answering token (a date, a name) count without
    letting a long sentence win by length.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.mlp = torch.nn.Sequential(torch.nn.Linear(2 * hidden, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, 1))
        #: "None of the sentences answers": the extra option of the training softmax.
        self.null = torch.nn.Parameter(torch.zeros(1))

    def forward(self, states: torch.Tensor, windows: Sequence[Spans]) -> torch.Tensor:
        """One logit per span of ``windows``, in order, from ``states`` (windows × tokens × hidden)."""
        pooled = []
        for row, window in enumerate(windows):
            for start, end in window.spans:
                tokens = states[row, start:end]
                pooled.append(torch.cat([tokens.mean(0), tokens.max(0).values]))
        if not pooled:
            return states.new_zeros(0)
        return self.mlp(torch.stack(pooled)).squeeze(-1)
