"""The API fuzzed from its own OpenAPI schema (schemathesis): every operation, anonymously and
with a key of every role, checked for "no server error", "the status code is documented", "the
content type is documented" and "the response matches its schema". Any failure fails the run;
all are reported together.

The schema must say what the API takes: a request generated from it is never refused for its
shape (`invalid_request`, `multipart_required`), only by the service's logic (a USCC's check
character, an object that is not there or not the caller's). The world holds an enterprise (the
enterprise key's own), a material and a record, so small ids and the USCC's example reach them."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from materials_api.main import create_app

ROLES = ("anonymous", "governor", "registrar", "issuer", "clerk", "enterprise", "bank", "inspector", "scraper")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
USCC = "91350100M000100Y43"  # the enterprise key's own, and the schema's example
EXAMPLES = 50  # per operation and role: ~45 operations × 9 callers × 50 ≈ 20,000 requests a run


SHAPE_REFUSALS = ("invalid_request", "multipart_required")


@pytest.fixture
def world(api, keys):
    h = {"Authorization": keys["registrar"]}
    assert api.post("/api/v1/enterprises", json={"uscc": USCC, "name": "福建示例科技有限公司"}, headers=h).status_code == 201
    m = api.post("/api/v1/materials", headers={"Authorization": keys["enterprise"]},
                 files={"file": ("营业执照.pdf", b"%PDF-1.7\n" + b"x" * 2000, "application/pdf")})
    assert m.status_code == 201, m.text
    r = api.post("/api/v1/records", headers={"Authorization": keys["issuer"]},
                 json={"uscc": USCC, "kind": "food_business", "number": "JY001"})
    assert r.status_code in (201, 202), r.text


@pytest.mark.parametrize("role", ROLES)
def test_no_operation_fails_or_breaks_its_schema(role, runtime, keys, world):
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime, reconcile=False))
    headers = {} if role == "anonymous" else {"Authorization": keys[role]}
    failures, shape = [], set()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30  # the whole API, not a fragment of it
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            if response.status_code in (400, 415, 422) and response.json().get("code") in SHAPE_REFUSALS:
                shape.add(f"{operation.method.upper()} {operation.path}: {response.json()['message']}")

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, reported all at once
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert not failures, f"{len(failures)} operation(s) failed for {role}:\n" + "\n\n".join(failures)
    assert not shape, "inputs the schema allows, refused for their shape:\n" + "\n".join(sorted(shape))
