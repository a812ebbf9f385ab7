"""Fixtures of the architecture room (rules over the code base; fast, no models).

Only the contract test needs one: a started TestClient over the shared fake-embedder index.
"""

from __future__ import annotations

from tests.support.service import client, client_factory, service_index  # noqa: F401  (fixtures, re-exported)
