"""The eval room: pure functions over small in-memory or tmp_path data; it needs no fixture
beyond pytest's own and the root ``conftest.py``."""
