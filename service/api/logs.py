"""Structured JSON log lines (one object per line on stderr)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

# Record attributes that are not "extra" fields (uvicorn adds color_message for terminals).
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """Renders a record and its ``extra`` fields as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["error"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def configure_json_logging(level: int = logging.INFO) -> None:
    """Send the service's logs to stderr as JSON lines (idempotent)."""
    root = logging.getLogger()
    if any(getattr(h, "_tanya_json", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._tanya_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("bm25s", "sentence_transformers", "faiss", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
