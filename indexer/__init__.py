"""Indexing stage: read documents, chunk them, embed them and write a self-describing index."""
