"""The live OpenAPI schema of a real gateway, exercised by schemathesis: every operation,
generated (valid and invalid) input, authenticated with the gateway token. No answer may
be a 5xx or carry a status code the schema does not declare."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import status_code_conformance

from tests.gateway.gateway_process import TOKEN, GatewayProcess

AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Examples per operation and generation mode: bounded so the run takes seconds.
EXAMPLES = 12


@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(tmp_path_factory.mktemp("schemathesis"), name="schemathesis")
    gw.start()
    yield gw
    gw.stop()


@pytest.mark.e2e
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_answers_only_declared_statuses_and_never_5xx(live_gateway, mode):
    # One test per generation mode looping over the operations of the live schema (the
    # pytest plugin's lazy fixture loader does not run on pytest 9).
    schema = schemathesis.openapi.from_url(f"{live_gateway.http_url}/api/schema/", headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25, [op.label for op in operations]
    failures: dict[str, str] = {}
    for operation in operations:
        try:
            _exercise(operation, mode)
        except Unsatisfiable:
            # Nothing invalid to send (no parameters, no body): only positive mode applies.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:2000]
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())


def _exercise(operation, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure
    )
    def check(case) -> None:
        case.call_and_validate(
            headers=AUTH, timeout=10, checks=[not_a_server_error, status_code_conformance]
        )

    check()
