"""Training what the product ships but no package provides: the answer reranker (``python -m training``)."""
