"""The hot routes (:mod:`serving.hot`): their request bodies fail validation exactly as BentoML's
``@bentoml.api`` methods they replace did (same model name, same errors, same body), and the
OpenAPI description still describes them."""

from __future__ import annotations

import json
from typing import Annotated

import bentoml
import pytest
from _bentoml_sdk.io_models import IODescriptor
from pydantic import Field, ValidationError

from serving import hot
from serving.schemas import OutcomeIn, ShipmentIn
from tests.serving.conftest import make_outcome, make_shipment


# The signatures of the @bentoml.api methods the hot routes replace (serving/service.py before
# the move): BentoML built its request models from them.
def _score(
    self,
    shipment: ShipmentIn,  # type: ignore[valid-type]
    all_contributions: bool = False,
    ctx: bentoml.Context = None,  # type: ignore[assignment]
): ...


def _score_batch(
    self,
    shipments: Annotated[
        list[ShipmentIn],  # type: ignore[valid-type]
        Field(min_length=1, max_length=hot.HARD_MAX_BATCH),
    ],
    explain_top_share: Annotated[float | None, Field(ge=0, le=1)] = None,
    all_contributions: bool = False,
    ctx: bentoml.Context = None,  # type: ignore[assignment]
): ...


def _outcomes(
    self,
    outcomes: Annotated[
        list[OutcomeIn],  # type: ignore[valid-type]
        Field(min_length=1, max_length=hot.HARD_MAX_BATCH),
    ],
    ctx: bentoml.Context = None,  # type: ignore[assignment]
): ...


def _bentoml_model(func):
    return IODescriptor.from_input(func, skip_self=True, skip_names=("ctx",))


def _ship(**kw):
    return make_shipment(1, **kw)


BODIES = {
    "score": (
        hot.ScoreInput,
        _score,
        [
            b'{"shipment": {"shipment_id": ',
            b"[1, 2, 3]",
            b"",
            b"null",
            json.dumps({"shipment": {k: v for k, v in _ship().items() if k != "mode"}}),
            json.dumps({"shipment": _ship(packages="twelve")}),
            json.dumps({"shipment": _ship(gross_weight_kg=-5)}),
            json.dumps({"shipment": _ship(container_type="igloo")}),
            json.dumps({"shipment": {**_ship(), "colour": "red"}}),
            json.dumps({"shipment": _ship(shipper_id="SHP\x00\x1b[31m")}),
            json.dumps({"shipment": _ship(declared_at=1767225600)}),
            json.dumps({"shipment": _ship(), "all_contributions": "maybe"}),
        ],
    ),
    "batch": (
        hot.BatchInput,
        _score_batch,
        [
            json.dumps({"shipments": []}),
            json.dumps({"shipments": [_ship()], "explain_top_share": 3}),
            json.dumps({"shipments": [_ship(), {"mode": "sea"}]}),
            json.dumps({"shipments": "all of them"}),
            b"{}",
        ],
    ),
    "outcomes": (
        hot.OutcomesInput,
        _outcomes,
        [
            json.dumps({"outcomes": []}),
            json.dumps({"outcomes": [make_outcome("S1", "maybe")]}),
            json.dumps({"outcomes": [make_outcome("S1", correction={"reason": "x"})]}),
            json.dumps({"outcomes": [{"shipment_id": "S1"}]}),
        ],
    ),
}


def _failure(model, body) -> tuple[int, dict] | None:
    try:
        model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        response = hot.validation_response(exc)
        return response.status_code, json.loads(response.body)
    return None


@pytest.mark.parametrize("route", sorted(BODIES))
def test_bad_bodies_fail_as_the_bentoml_methods_did(route):
    ours, signature, bodies = BODIES[route]
    theirs = _bentoml_model(signature)
    assert ours.__name__ == theirs.__name__ == "Input"
    for body in bodies:
        got = _failure(ours, body)
        assert got is not None, body
        assert got == _failure(theirs, body), body
        status, answer = got
        assert status == 400 and answer["error"].endswith("validation error for Input")


def test_good_bodies_validate_the_same():
    for model, signature, body in (
        (hot.ScoreInput, _score, {"shipment": _ship(), "all_contributions": True}),
        (hot.ScoreInput, _score, {"shipment": _ship(), "unknown_top_level": 1}),  # ignored
        (hot.BatchInput, _score_batch, {"shipments": [_ship()], "explain_top_share": 0.5}),
        (hot.OutcomesInput, _outcomes, {"outcomes": [make_outcome("S1")]}),
    ):
        text = json.dumps(body)
        ours = model.model_validate_json(text).model_dump()
        theirs = _bentoml_model(signature).model_validate_json(text).model_dump()
        assert ours == theirs


def test_error_responses_name_the_field_and_ask_to_retry_when_not_ready():
    r = hot.error_response(400, "packages: not a count", ["shipment", "packages"])
    assert r.status_code == 400 and "retry-after" not in r.headers
    assert json.loads(r.body)["detail"] == [
        {"loc": ["shipment", "packages"], "msg": "packages: not a count"}
    ]
    busy = hot.error_response(503, "feature state not built: starting")
    assert busy.status_code == 503 and busy.headers["retry-after"] == "5"


def test_the_openapi_description_describes_the_hot_routes():
    from serving.service import CargoRisk

    spec = CargoRisk.openapi_spec.asdict()
    for path, field in (("/score", "shipment"), ("/score/batch", "shipments"), ("/outcomes", "outcomes")):  # fmt: skip
        operation = spec["paths"][path]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert field in body["required"], path
        assert "$ref" not in json.dumps(body), path  # written in place: no dangling reference
        assert {"200", "400", "503"} <= {str(k) for k in operation["responses"]}, path
    shipment = spec["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]
    assert "declared_at" in shipment["schema"]["properties"]["shipment"]["properties"]


def test_request_ids_stay_in_the_callers_namespace():
    from serving.store import Caller

    caller = Caller("key gate7", "system", key_id=12)
    assert hot.request_id(caller, "gate7-000001") == f"{caller.tag}:gate7-000001"
    fresh = hot.request_id(caller, "not allowed / spaces")
    assert fresh.startswith(f"{caller.tag}:") and len(fresh.split(":", 1)[1]) == 32
