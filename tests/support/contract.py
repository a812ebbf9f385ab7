"""The JSON key sets of the answer contract, derived from the domain types.

``service.qa.types`` is the one copy of the contract (the CLI, the HTTP API and the OpenAPI
schema all come from it), so the tests take the expected keys from its models rather than
keeping a second, hand-written list. ``tests/architecture/test_contract.py`` checks that
what the API returns is exactly these keys and that OpenAPI names the same models.
"""

from __future__ import annotations

from service.qa.types import Answer, Citation, Highlight, Passage, SearchResult

ANSWER_KEYS = frozenset(Answer.model_fields)
CITATION_KEYS = frozenset(Citation.model_fields)
HIGHLIGHT_KEYS = frozenset(Highlight.model_fields)
PASSAGE_KEYS = frozenset(Passage.model_fields)
SEARCH_RESULT_KEYS = frozenset(SearchResult.model_fields)
