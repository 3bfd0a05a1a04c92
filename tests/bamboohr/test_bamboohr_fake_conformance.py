"""The fake BambooHR is held to BambooHR's OpenAPI document: an answer the document does not
allow fails the test that provoked it (when the fake stops)."""

from __future__ import annotations

import json

import pytest
import requests
from werkzeug.wrappers import Response

from tests.bamboohr.conftest import make_connector, seed
from tests.bamboohr.fake_bamboohr import FakeBambooHR


@pytest.fixture
def loose() -> FakeBambooHR:
    server = FakeBambooHR()
    seed(server)
    server.start()
    return server


def _goals(server: FakeBambooHR) -> int:
    url = f"{server.host_url}/api/v1/performance/employees/4/goals"
    answer = requests.get(
        url, auth=(server.api_key, "x"), headers={"Accept": "application/json"}, timeout=10
    )
    return answer.status_code


def test_a_documented_answer_passes(loose: FakeBambooHR) -> None:
    make_connector(loose.host_url, loose.api_key).read_people(None, full=True)
    assert _goals(loose) == 200
    loose.stop()  # no violation: nothing raised
    assert loose.violations == []


@pytest.mark.parametrize(
    "answer",
    [
        # goal ids are strings in BambooHR's document, not numbers
        lambda: Response(
            json.dumps({"goals": [{"id": 7, "title": "x"}]}), 200, mimetype="application/json"
        ),
        # a status the operation does not document
        lambda: Response("", 418),
    ],
    ids=["goal id as a number", "undocumented status"],
)
def test_an_undocumented_answer_fails_the_test(loose: FakeBambooHR, answer) -> None:  # type: ignore[no-untyped-def]
    loose.h_list_goals = lambda request, body, emp: answer()  # type: ignore[method-assign]
    _goals(loose)
    with pytest.raises(AssertionError, match="does not document") as raised:
        loose.stop()
    assert "GET /api/v1/performance/employees/4/goals" in str(raised.value)


def test_a_custom_report_with_null_values_is_not_what_bamboohr_documents(
    loose: FakeBambooHR,
) -> None:
    """The spec types every report value a string; the fake answers "" for an empty field."""
    original = loose.h_report

    def with_nulls(request, body):  # type: ignore[no-untyped-def]
        answer = json.loads(original(request, body).get_data())
        answer["employees"][0]["firstName"] = None
        return Response(json.dumps(answer), 200, mimetype="application/json")

    loose.h_report = with_nulls  # type: ignore[method-assign]
    make_connector(loose.host_url, loose.api_key).read_people(None, full=True)
    with pytest.raises(AssertionError, match="None is not of type 'string'"):
        loose.stop()
