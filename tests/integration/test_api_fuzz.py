"""Schemathesis against the API's own OpenAPI schema, on the real filled InfluxDB.

Every operation gets generated requests with a credential of the role it is for; no
answer may be a server error, and every answer must match its documented status codes,
media type and schema. The fuzzed registry is a copy, since admins' requests change it.
(Schemathesis' pytest plugin does not run under pytest 9 yet, so each operation is
driven through its Hypothesis strategy directly.) All of Schemathesis' checks run except
"schema-valid request accepted": rules across parameters (start before end, at most
``max_range_days``, a field of *this* machine's type, a real IANA zone) cannot be said
in OpenAPI, so their 400/422 answers are right; tests of their own assert them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from api.app import create_app
from api.settings import ApiSettings
from millwatch.influxql import InfluxQL

from .apirig import ApiRig

#: CI runs the same 30 cases per operation every time (derandomized: a red run must be
#: reproducible); MILLWATCH_FUZZ_EXAMPLES=500 MILLWATCH_FUZZ_RANDOM=1 explores further.
MAX_EXAMPLES = int(os.environ.get("MILLWATCH_FUZZ_EXAMPLES", "30"))
DERANDOMIZE = not os.environ.get("MILLWATCH_FUZZ_RANDOM")


def _labels() -> list[str]:
    app = create_app(ApiSettings(registry_url="sqlite://", influx_url="http://127.0.0.1:9"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok().label for result in schema.get_all_operations()]


OPERATIONS = _labels()


@pytest.fixture(scope="module")
def fuzz_target(api_rig: ApiRig) -> Iterator[tuple[schemathesis.BaseSchema, dict[str, str]]]:
    database, tokens = api_rig.fresh_registry()
    # Schemathesis tries invalid keys on purpose (expecting 401) and fast: the limits have
    # tests of their own (tests/unit/api/test_limits.py).
    options = ApiSettings(
        registry_url="sqlite://",
        influx_url=api_rig.influx_url,
        auth_failure_limit="100000/minute",
        rate_limit="100000/second",
    )
    # Schemathesis runs the app's lifespan per request: lent clients outlive it.
    influx = InfluxQL(api_rig.influx_url)
    app = create_app(options, database=database, influx=influx)
    yield schemathesis.openapi.from_asgi("/openapi.json", app), tokens
    influx.close()


def _caller(path: str) -> str:
    if path.startswith("/v1/registry"):
        return "admin"
    if path.startswith("/v1/cluster"):
        return "cluster_operator"
    return "ap1"


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_errors_and_every_answer_matches_the_schema(label: str, fuzz_target) -> None:
    schema, tokens = fuzz_target
    operation = schema.find_operation_by_label(label)
    headers = {"Authorization": f"Bearer {tokens[_caller(operation.path)]}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=DERANDOMIZE,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    fuzz()
