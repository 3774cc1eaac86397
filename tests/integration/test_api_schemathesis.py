"""Schemathesis over our own OpenAPI schema: every operation, with valid and invalid
requests, against the real API over a real SQLite store that holds jobs in every state,
outbox rows (sent and dead), report versions and a verdict. No request may end in a server
error, every answer must be one the schema declares (status, content type, body, headers),
and every error has the one shape ``{"error": {"status": ..., "message": ...}}``.

The C-ECHO route only reaches destinations from the settings: a loopback SCP and a closed
loopback port."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from cardiogate.api import create_api
from cardiogate.config import load_settings
from cardiogate.store import Store
from cardiogate.store.reviews import record_review
from peers import RunningSCP, free_port, start_scp
from store_jobs import ARCHIVE, STUDY, FakeHealth, Jobs

TOKEN = "a-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KNOWN: dict[str, list[Any]] = {}  # path parameter values that exist, set by the app fixture
SEEN: Counter[tuple[str, int]] = Counter()  # (operation, status) of every case sent


def error_shape(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """Every error is ``{"error": {"status": <the HTTP status>, "message": <text>}}``
    (except /readyz, whose 503 is its readiness report)."""
    if response.status_code < 400 or case.operation.path == "/readyz":
        return
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"status", "message"}, body
    assert body["error"]["status"] == response.status_code, body
    assert isinstance(body["error"]["message"], str), body
    assert body["error"]["message"], body


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    ignored_auth,
    unsupported_method,
    error_shape,
]


def _fill(jobs: Jobs) -> dict[str, list[Any]]:
    """Jobs in every state, with outbox rows, report versions and a verdict; the path
    parameter values that exist, by name."""
    ignored = jobs.ignored()
    failed = jobs.failed()
    flagged = jobs.reported("stenosis", {"needs_review": True, "review_reason": "in the band"})
    delivered = jobs.reported("calcium", {"task": "calcium", "lesions": [{"peak_hu": 140.0}]})
    jobs.deliver(delivered)
    dead = jobs.reported("stenosis", {"needs_review": False, "lesions": []})
    jobs.deliver(dead, dead_to=ARCHIVE)
    reviewed = jobs.reported("stenosis", {"needs_review": True, "lesions": []})
    job = jobs.queue.get(reviewed)
    assert job is not None
    assert record_review(jobs.store, job, "agree", "looks right")
    queued = jobs.queued("stenosis")  # last: the factory claims the oldest queued job
    # the ones a verdict or a retry accepts first: drawing favours the start of the list
    ids = [flagged, failed, delivered, dead, reviewed, ignored, queued]
    series = [j.SeriesInstanceUID for j in map(jobs.queue.get, ids) if j is not None]
    return {
        "job_id": ids,
        "StudyInstanceUID": [STUDY],
        "SeriesInstanceUID": series,
        "ae_title": ["PEER", "GONE"],
    }


class AppUnderTest:
    """The ASGI app the cases call. Schemathesis makes its operations when this module is
    collected, before any fixture runs; the app fixture puts the real app in here.
    (``schemathesis.pytest.from_fixture`` would wait for the fixture, but on pytest 9.2 it
    fails setting ``Function._nodeid``.)"""

    app: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "the app fixture did not run"
        await self.app(scope, receive, send)


APP = AppUnderTest()


def _load_schema() -> schemathesis.BaseSchema:
    """Our OpenAPI document (only the routes matter: the store behind it is never read)."""
    unread = Store("sqlite://")
    document = create_api(unread, FakeHealth(), TOKEN).openapi()
    unread.dispose()
    config = schemathesis.Config.from_dict(
        {
            "auth": {"openapi": {"HTTPBearer": {"bearer": TOKEN}}},
            # a fixed seed (schemathesis draws one otherwise): the same cases on every run of
            # the same tests. Literals that schemathesis and hypothesis mine from the loaded
            # modules still vary the cases with the set of tests collected alongside.
            "seed": 6,
        }
    )
    loaded = schemathesis.openapi.from_dict(document, config=config)
    loaded.app = APP
    return loaded


schema = _load_schema()


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSCP]:
    running = start_scp(tmp_path_factory.mktemp("peer"), ae_title="PEER")
    yield running
    running.listener.stop(5)
    running.store.dispose()


@pytest.fixture(scope="module", autouse=True)
def app(tmp_path_factory: pytest.TempPathFactory, peer: RunningSCP) -> Iterator[FastAPI]:
    folder = tmp_path_factory.mktemp("api")
    settings = load_settings(
        data_dir=folder,
        acse_timeout_seconds=2,
        destinations=[
            {"ae_title": "PEER", "host": "127.0.0.1", "port": peer.port},
            {"ae_title": "GONE", "host": "127.0.0.1", "port": free_port()},
        ],
    )
    store = Store(f"sqlite:///{folder / 'cardiogate.db'}")
    store.create_schema()
    KNOWN.update(_fill(Jobs(store)))
    APP.app = create_api(store, FakeHealth(), TOKEN, settings=settings)
    yield APP.app
    APP.app = None
    store.dispose()


@schema.hook
def before_generate_path_parameters(
    context: schemathesis.HookContext, strategy: st.SearchStrategy[dict[str, Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Mix values that exist into the drawn ones, so full answers get checked, not only 404s."""
    assert context.operation is not None
    names = re.findall(r"{(\w+)}", context.operation.path)
    if not names or not all(name in KNOWN for name in names):
        return strategy
    existing = st.fixed_dictionaries({name: st.sampled_from(KNOWN[name]) for name in names})
    return st.one_of(existing, strategy)


@schema.hook
def after_call(
    context: schemathesis.HookContext, case: schemathesis.Case, response: schemathesis.Response
) -> None:
    SEEN[case.operation.label, response.status_code] += 1


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
)
def test_every_operation_conforms_to_the_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


def test_the_run_reached_every_operation_with_real_data() -> None:
    """The cases above got full answers from every operation, and errors of every kind."""
    if not SEEN:
        pytest.skip("the schemathesis test did not run in this session")
    operations = {op.ok().label for op in schema.get_all_operations()}
    answered = {label for label, code in SEEN if 200 <= code < 300}
    assert answered == operations
    assert {401, 404, 405, 409, 422} <= {code for _, code in SEEN}


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_declared_error_has_the_one_shape(app: FastAPI) -> None:
    """FastAPI's own 422 schema ({"detail": [...]}) is not what we send; ours replaces it."""
    document = app.openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for label, operation in _operations(document):
        for code, response in operation["responses"].items():
            if int(code) < 400 or label == "GET /readyz":
                continue
            body = response["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorOut"}, (label, code)
        if " /api/v1/" in label:
            assert {"401", "422"} <= set(operation["responses"]), label
    readyz = document["paths"]["/readyz"]["get"]["responses"]["503"]
    assert readyz["content"]["application/json"]["schema"]["$ref"].endswith("/Readiness")
    assert set(document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == {
        "text/plain"
    }


BIG = str(2**63)  # one past the largest integer SQLite (and a BIGINT) can hold


@pytest.mark.parametrize(
    ("method", "url", "code", "message"),
    [
        ("GET", "/api/v1/jobs?since=0.5", 422, "query.since: Value error, an ISO 8601 date-time"),
        ("GET", "/api/v1/jobs?since=1700000000", 422, "query.since: Value error, an ISO 8601"),
        ("GET", f"/api/v1/jobs/{BIG}", 422, "path.job_id: "),
        ("POST", f"/api/v1/jobs/{BIG}/retry", 422, "path.job_id: "),
        ("GET", "/api/v1/jobs/0", 422, "path.job_id: "),
        ("GET", f"/api/v1/jobs?offset={BIG}", 422, "query.offset: "),
        ("GET", f"/api/v1/studies?offset={BIG}", 422, "query.offset: "),
        ("GET", f"/api/v1/review?offset={BIG}", 422, "query.offset: "),
        ("GET", "/api/v1/studies/1.2.x", 422, "path.StudyInstanceUID: "),
        ("POST", "/api/v1/destinations/SEVENTEEN_LETTERS/echo", 422, "path.ae_title: "),
    ],
)
def test_refused_requests_answer_in_the_one_shape(
    app: FastAPI, method: str, url: str, code: int, message: str
) -> None:
    r = TestClient(app).request(method, url, headers=AUTH)
    assert r.status_code == code
    assert r.json() == {"error": {"status": code, "message": r.json()["error"]["message"]}}
    assert r.json()["error"]["message"].startswith(message)
    assert "1700000000" not in r.text
    assert BIG not in r.text


def test_a_verdict_body_that_is_not_text_is_400_in_the_one_shape(app: FastAPI) -> None:
    job_id = KNOWN["job_id"][0]
    r = TestClient(app).post(
        f"/api/v1/review/{job_id}",
        content=b"\xff\xfe{",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json() == {"error": {"status": 400, "message": "There was an error parsing the body"}}


def test_a_note_with_a_nul_is_refused_before_the_store(app: FastAPI) -> None:
    """PostgreSQL text cannot hold a NUL; the API refuses it on every database alike."""
    job_id = KNOWN["job_id"][0]
    r = TestClient(app).post(
        f"/api/v1/review/{job_id}", json={"verdict": "agree", "note": "a\x00b"}, headers=AUTH
    )
    assert r.status_code == 422
    assert r.json()["error"]["message"].startswith("body.note: String should match pattern")
