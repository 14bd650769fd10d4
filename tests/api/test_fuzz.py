"""The API fuzzed from its own OpenAPI schema (schemathesis): every operation, anonymously and
with a key of every role, checked for "no server error", "the status code is documented", "the
content type is documented" and "the response matches its schema". Any failure fails the run;
all are reported together."""

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

ROLES = ("anonymous", "governor", "registrar", "issuer", "clerk", "enterprise", "bank", "inspector")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 10  # per operation and role: ~40 operations × 8 callers × 10 ≈ 3,200 requests a run


@pytest.mark.parametrize("role", ROLES)
def test_no_operation_fails_or_breaks_its_schema(role, runtime, keys):
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime, reconcile=False))
    headers = {} if role == "anonymous" else {"Authorization": keys[role]}
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30  # the whole API, not a fragment of it
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, reported all at once
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert not failures, f"{len(failures)} operation(s) failed for {role}:\n" + "\n\n".join(failures)
