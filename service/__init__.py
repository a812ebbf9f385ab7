"""Serving stage: retrieve cited passages and build extractive answers (CLI and HTTP)."""
