"""Property-based run over /openapi.json: no 5xx, and every answer matches its schema.

schemathesis generates requests from the OpenAPI document (valid and invalid ones)
and sends them with the admin token to an app whose lifespan opened a real runtime
(SQLite in tmp_path). Examples per operation are bounded so the run stays short.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import DataGenerationMethod
from schemathesis.checks import not_a_server_error
from schemathesis.exceptions import SkipTest
from schemathesis.models import APIOperation, Case
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette_testclient import TestClient
from tests.integration.api.conftest import ADMIN_TOKEN

from mail_proxy.api import create_app
from mail_proxy.settings import Settings

EXAMPLES = {DataGenerationMethod.positive: 12, DataGenerationMethod.negative: 6}
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)
METHODS = (DataGenerationMethod.positive, DataGenerationMethod.negative)


def _fuzz(operation: APIOperation, method: DataGenerationMethod, client: TestClient) -> None:
    @given(case=operation.as_strategy(data_generation_method=method))
    @hypothesis_settings(
        max_examples=EXAMPLES[method],
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Case) -> None:
        response = case.call(
            base_url="http://testserver", session=client, headers={"X-API-Token": ADMIN_TOKEN}
        )
        case.validate_response(response, checks=CHECKS)

    try:
        check()
    except (SkipTest, Unsatisfiable):  # nothing here can be made invalid
        assert method is DataGenerationMethod.negative


def _has_free_input(operation: APIOperation) -> bool:
    """Whether invalid input is worth generating: a JSON body and no path parameter.

    Hypothesis spends seconds proving that a plain string (path or query) cannot be
    made invalid; the bodies of path-addressed operations are also sent elsewhere
    (``PUT /tenant/{id}`` takes the body of ``POST /tenant``), and invalid query
    values are covered by the tests of each resource.
    """
    return bool(operation.body) and not operation.path_parameters


@pytest.mark.slow
def test_openapi_fuzz_finds_no_server_error(settings_factory: Callable[..., Settings]) -> None:
    """Every operation of the OpenAPI document, fuzzed: no 5xx, answers match the schema."""
    settings = settings_factory(
        api_token=ADMIN_TOKEN,
        test_mode=True,
        scheduler_active=False,
        smtp_timeout=1,
        sync_timeout=1,
        shutdown_grace_seconds=1,
    )
    app = create_app(settings)
    schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI writes OpenAPI 3.1
    try:
        schema = schemathesis.from_dict(app.openapi())
    finally:
        schemathesis.experimental.OPEN_API_3_1.disable()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    with TestClient(app) as client:
        for operation in operations:
            for method in METHODS:
                if method is DataGenerationMethod.positive or _has_free_input(operation):
                    _fuzz(operation, method, client)
