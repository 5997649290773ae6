"""Schemathesis fuzz from the OpenAPI schema: no input may produce a server error, every refusal
carries a message, and every answer matches the documented schema. Short and bounded."""

from __future__ import annotations

import hypothesis
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python.asgi import get_client

from l2run.grader.app import create_app

EXAMPLES_PER_OPERATION = 12
# Business refusals of schema-valid requests (unknown token, 409 order errors) are correct here,
# so "positive data acceptance" is not among the checks.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_api_never_fails_server_side(settings, pool, token):
    app = create_app(settings, pool=pool)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # Half of the generated calls target a live instance (trial 1 running) and half of the
    # creates carry a real token, so the fuzz reaches the simulation, not only 401/404.
    with get_client(app) as client:
        live = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
        client.post(f"/v1/envs/{live}/reset/")

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def check(case):
            twist = len(repr(case.body)) % 2 == 0
            if "instance_id" in (case.path_parameters or {}) and twist:
                case.path_parameters["instance_id"] = live
            if case.operation.path == "/v1/envs/" and isinstance(case.body, dict) and twist:
                case.body["token"] = token
            response = case.call()
            assert response.status_code < 500, (case.operation.label, response.text)
            if response.status_code >= 400:
                assert response.json()["message"], "every refusal carries a message"
            case.validate_response(response, checks=CHECKS)

        check()
