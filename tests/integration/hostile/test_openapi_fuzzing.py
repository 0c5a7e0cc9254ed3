"""Every operation of every service's OpenAPI document, fuzzed by schemathesis against the
running service: valid, boundary and invalid parameters and bodies, and (for the services
whose answers name what another operation takes) sequences that follow the links between
operations. Every answer must be no 5xx and must match the status and schema the document
declares for it.

Two checks only: FastAPI answers some things its documents do not declare by design (unknown
query parameters are ignored, 405 carries an Allow header, 400/401/403 answers are not
listed for every route). /readyz is left out: its documented 503 is what it says when a
dependency is down. The generation is deterministic (a fixed seed per operation), so a
failure reproduces; schemathesis prints the request that failed, with a curl command.
"""

import copy
from collections.abc import Callable
from typing import Any, TypeVar, cast

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.config import SchemathesisConfig

from tests.integration.helpers import ADMIN_TOKEN
from tests.integration.hostile import documents
from tests.integration.hostile.conftest import Stack, basic

pytestmark = pytest.mark.integration

CHECKS = [not_a_server_error, response_schema_conformance]
Case = schemathesis.Case[Any]
Test = TypeVar("Test", bound=Callable[..., None])
# What the running services are fuzzed with, per operation and phase: small, so the whole
# directory stays within a few minutes on two cores.
EXAMPLES = 50
INGEST_EXAMPLES = 15
STATEFUL_SCENARIOS = 50
STATEFUL_STEPS = 8


def _schema(document: dict[str, Any], *, coverage: bool = True) -> Any:
    config = SchemathesisConfig.from_dict(
        {
            "seed": 20261203,
            "generation": {"database": "none", "deterministic": True},
            # The coverage phase (each parameter's boundaries, every invalid type) is cheap for
            # the admin APIs; for ingest's large event schemas it runs to tens of thousands of
            # cases, and ingest's own tests cover its bodies' limits one by one.
            "phases": {"coverage": {"enabled": coverage}},
        }
    )
    return schemathesis.openapi.from_dict(document, config=config).exclude(path="/readyz")


def _each_operation(schema: Any) -> Callable[[Test], Test]:
    """schemathesis's parametrize, typed: one test item per operation of `schema`."""
    return cast(Callable[[Test], Test], schema.parametrize())


Link = tuple[str, str, dict[str, str]]


def _linked(document: dict[str, Any], links: dict[str, list[Link]]) -> dict[str, Any]:
    """`document` with OpenAPI links from the 200 answer of each GET path in `links` to
    (method, path, parameters taken from that answer) of other operations: what the stateful
    tests follow, so that they reach customers and journeys that exist (FastAPI's documents
    declare no links, and their answers' schemas are too loose for schemathesis to infer
    them)."""
    linked: dict[str, Any] = copy.deepcopy(document)
    for source, targets in links.items():
        answer = linked["paths"][source]["get"]["responses"]["200"]
        answer["links"] = {
            f"{method}-{path}": {
                "operationId": linked["paths"][path][method]["operationId"],
                "parameters": parameters,
            }
            for method, path, parameters in targets
        }
    return linked


_FIRST_CUSTOMER = {"customer_id": "$response.body#/customers/0/customer_id"}
_FIRST_JOURNEY = {"journey_id": "$response.body#/journeys/0/id"}
PROFILE_LINKS = {
    "/v1/customers": [
        ("get", "/v1/customers/{customer_id}", _FIRST_CUSTOMER),
        ("get", "/v1/customers/{customer_id}/timeline", _FIRST_CUSTOMER),
        ("get", "/v1/customers/{customer_id}/export", _FIRST_CUSTOMER),
        ("delete", "/v1/customers/{customer_id}", _FIRST_CUSTOMER),
        ("get", "/v1/customers", {"query.cursor": "$response.body#/next_cursor"}),
    ],
    "/v1/customers/{customer_id}/timeline": [
        (
            "get",
            "/v1/customers/{customer_id}/timeline",
            {
                "customer_id": "$response.body#/customer_id",
                "query.cursor": "$response.body#/next_cursor",
            },
        ),
    ],
}
NOTIFY_LINKS = {
    "/v1/journeys": [
        ("get", "/v1/journeys/{journey_id}", _FIRST_JOURNEY),
        ("post", "/v1/journeys/{journey_id}/pause", _FIRST_JOURNEY),
        ("post", "/v1/journeys/{journey_id}/resume", _FIRST_JOURNEY),
    ],
    "/v1/templates": [
        (
            "post",
            "/v1/templates/{template}/test-send",
            {"template": "$response.body#/templates/0/id"},
        ),
    ],
    "/v1/suppressions": [
        (
            "delete",
            "/v1/suppressions/{address}",
            {"address": "$response.body#/suppressions/0/address"},
        ),
    ],
}

ingest = _schema(documents.ingest(), coverage=False)
profile = _schema(documents.profile())
scoring = _schema(documents.scoring())
notify = _schema(documents.notify())
profile_sequences = _schema(_linked(documents.profile(), PROFILE_LINKS))
notify_sequences = _schema(_linked(documents.notify(), NOTIFY_LINKS))

# The write key the fuzzing sends, once the stack made it (the fixture below sets it).
_WRITE_KEY: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _write_key(stack: Stack) -> None:
    _WRITE_KEY["key"] = stack.write_key


@ingest.auth()
class WriteKey:
    def get(self, case: Case, ctx: schemathesis.AuthContext) -> str:
        return _WRITE_KEY["key"]

    def set(self, case: Case, data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers.update(basic(data))


class AdminToken:
    def get(self, case: Case, ctx: schemathesis.AuthContext) -> str:
        return ADMIN_TOKEN

    def set(self, case: Case, data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


for _admin_api in (profile, scoring, notify, profile_sequences, notify_sequences):
    _admin_api.auth()(AdminToken)


def test_the_documents_fuzzed_are_the_ones_the_services_serve(stack: Stack) -> None:
    for name, service in stack.services().items():
        served = httpx.get(f"{service.url}/openapi.json", timeout=30).json()
        built = documents.DOCUMENTS[name]()
        assert served["paths"] == built["paths"], name
        assert served["components"] == built["components"], name


@_each_operation(ingest)
@hypothesis.settings(max_examples=INGEST_EXAMPLES, deadline=None)
def test_ingest(case: Case, stack: Stack) -> None:
    case.call_and_validate(base_url=stack.ingest.url, checks=CHECKS)


@_each_operation(profile)
@hypothesis.settings(max_examples=EXAMPLES, deadline=None)
def test_profile(case: Case, stack: Stack) -> None:
    case.call_and_validate(base_url=stack.profile.url, checks=CHECKS)


@_each_operation(scoring)
@hypothesis.settings(max_examples=EXAMPLES, deadline=None)
def test_scoring(case: Case, stack: Stack) -> None:
    case.call_and_validate(base_url=stack.scoring.url, checks=CHECKS)


@_each_operation(notify)
@hypothesis.settings(max_examples=EXAMPLES, deadline=None)
def test_notify(case: Case, stack: Stack) -> None:
    case.call_and_validate(base_url=stack.notify.url, checks=CHECKS)


def _run_stateful(schema: Any, url: str) -> None:
    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": url}

        def validate_response(self, response: Any, case: Case, *args: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Sequences.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            database=None,
            derandomize=True,
            # No shrinking: the services' state has moved on since a failing sequence ran, so
            # replaying shorter ones would report the drift, not the failure.
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
    )


@pytest.mark.parametrize("service", ["profile", "notify"])
def test_sequences_following_the_links_between_operations(stack: Stack, service: str) -> None:
    schema = {"profile": profile_sequences, "notify": notify_sequences}[service]
    _run_stateful(schema, stack.services()[service].url)
