"""One copy of the answer contract: ``service.qa.types``.

The JSON the API returns for an answer, a citation, a passage and a search result has exactly
the fields of ``Answer``, ``Citation`` (with its ``Highlight``), ``Passage`` and
``SearchResult``; and the OpenAPI document describes those responses with those very models.
The expected keys come from the models, not from a second list written here.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from pydantic import BaseModel

from service.qa.types import Answer, Citation, Highlight, Passage, SearchResult
from tests.support.service import QUESTION_EN, ClientFactory

JSON = "application/json"


def fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def test_answer_and_citation_json_have_the_fields_of_the_types(client: TestClient) -> None:
    response = client.post("/v1/ask", json={"question": QUESTION_EN})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == fields(Answer)
    assert answer["citations"], "the shared client answers (abstain_threshold 0): citations expected"
    for citation in answer["citations"]:
        assert set(citation) == fields(Citation)
        assert set(citation["highlight"]) == fields(Highlight)


def test_abstention_json_has_the_same_fields(client_factory: ClientFactory) -> None:
    abstaining = client_factory(abstain_threshold=1.0)  # nothing is supported enough: an abstention
    answer = abstaining.post("/v1/ask", json={"question": "What is the capital of France?"}).json()
    assert answer["abstained"] is True
    assert set(answer) == fields(Answer)
    assert all(set(citation) == fields(Citation) for citation in answer["citations"])


def test_search_and_passage_json_have_the_fields_of_the_types(client: TestClient) -> None:
    response = client.get("/v1/search", params={"q": "tokutei ginou"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert set(result) == fields(SearchResult)
    assert result["results"]
    for passage in result["results"]:
        assert set(passage) == fields(Passage)


def test_openapi_describes_the_responses_with_the_domain_models(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths, schemas = spec["paths"], spec["components"]["schemas"]
    assert paths["/v1/ask"]["post"]["responses"]["200"]["content"][JSON]["schema"] == _ref("Answer")
    assert paths["/v1/search"]["get"]["responses"]["200"]["content"][JSON]["schema"] == _ref("SearchResult")
    for model in (Answer, Citation, Highlight, Passage, SearchResult):
        assert set(schemas[model.__name__]["properties"]) == fields(model), model.__name__
    # The nested types are the same components, not inline copies.
    assert schemas["Answer"]["properties"]["citations"]["items"] == _ref("Citation")
    assert schemas["Citation"]["properties"]["highlight"] == _ref("Highlight")
    assert schemas["SearchResult"]["properties"]["results"]["items"] == _ref("Passage")
    # No second, differently named copy of a contract model (e.g. "Answer-Output" or "AnswerOut").
    contract = {"Answer", "Citation", "Highlight", "Passage", "SearchResult"}
    near_copies = {
        name for name in schemas if name not in contract and any(name.startswith(c) for c in contract)
    }
    assert near_copies == set(), near_copies
