"""The quality room: slow tests over the real embedding models (``-m slow``).

Each module builds its own real-model index in a module-scoped fixture, so nothing is
shared here beyond the root ``conftest.py``.
"""
