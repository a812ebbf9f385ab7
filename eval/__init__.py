"""Evaluation harness: gold questions, metrics and side-by-side runs of every mode and encoder."""
