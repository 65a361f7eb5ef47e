"""A shipment's page (declaration, score and reasons, parties, amendments, reports) and its
inspection-outcome form.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from features.contracts import (
    DRUGS,
    INSPECTION_METHODS,
    SELECTED_BY,
    DatasetInfo,
    LabelMeaning,
    attribute_column,
    normal_text,
)
from serving.store import Caller, UiSession
from serving.ui.format import amendment_rows, field_label, field_of, report_words, shown_value
from serving.ui.session_gate import PageBase

MANIFEST_GROUPS = (
    ("Declaration", ("shipment_id", "mode", "declared_at", "booked_at", "departed_at",
                     "arrival_at", "bill_of_lading", "air_waybill", "order_ref")),
    ("Parties", ("shipper_id", "shipper_name", "consignee_id", "consignee_name",
                 "consignee_address", "consignee_phone", "notify_party_id", "forwarder_id",
                 "declarant_id", "carrier_id", "recipient_customs_code", "platform")),
    ("Route", ("origin_country", "departure_country", "loading_port", "transshipment_ports",
               "discharge_port", "vessel", "voyage", "flight")),
    ("Goods", ("hs_code", "goods_description", "packages", "gross_weight_kg", "declared_value",
               "currency", "declared_value_usd", "freight_terms", "payment_method",
               "container_id", "container_type", "load_type")),
)  # fmt: skip
ALWAYS_SHOWN = frozenset(
    {
        "shipper_id",
        "consignee_id",
        "declarant_id",
        "origin_country",
        "departure_country",
        "loading_port",
        "discharge_port",
        "hs_code",
        "goods_description",
        "packages",
        "gross_weight_kg",
        "declared_value",
        "currency",
    }
)
"""Fields shown even when blank ("not declared"): what a targeting officer expects every
declaration to state, so a blank is visible. Transport references show only when given."""


class ShipmentPages(PageBase):
    # -- shipment --------------------------------------------------------------------------
    def shipment(self, request: Request) -> Response:
        return self._shipment_page(request, *self.officer(request, "read_shipments"))

    def _shipment_page(
        self,
        request: Request,
        engine,
        session: UiSession,
        caller: Caller,
        *,
        form: dict | None = None,
        errors: list[dict] | None = None,
        status: int = 200,
    ) -> Response:
        shipment_id = normal_text(request.path_params["shipment_id"])
        store = engine.store
        record = store.shipment(shipment_id)
        ctx = {"session": session, "caller": caller, "active": "worklist"}
        if record is None:
            return self.render(
                request,
                "error.html",
                404,
                title="No such shipment",
                message=f"The store holds no shipment {shipment_id!r}.",
                **ctx,
            )
        latest = store.latest_score(shipment_id)
        outcomes = store.outcomes_for(shipment_id)
        reports = store.outcome_reports(shipment_id)
        amendments = amendment_rows(store.shipment_versions(shipment_id))
        reasons, reasons_note = self._reasons(engine, record, latest)
        parties, linked, history_note = self._parties(engine, record)
        pick = request.query_params.get("pick", "")
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M")
        form = form or {
            "inspected_at": now,
            "result_at": now,
            "result": "",
            "drug": "",
            "quantity_kg": "",
            "method": "physical",
            "selected_by": pick if pick in ("model", "random") else "officer",
            "correction_reason": "",
        }
        if errors is None:
            store.audit("ui_shipment_viewed", caller, {"shipment_id": shipment_id})
        groups = [
            (
                title,
                [
                    (name, shown_value(record.get(name)))
                    for name in names
                    if name in ALWAYS_SHOWN or shown_value(record.get(name))
                ],
            )
            for title, names in MANIFEST_GROUPS
        ]
        info = self._dataset(engine)
        attributes = [
            (
                info.attributes[name].wording(name)
                if name in info.attributes
                else name.replace("_", " "),
                shown_value(value),
            )
            for name, value in sorted((record.get("attributes") or {}).items())
        ]
        scale = max((abs(r["contribution"]) for r in reasons), default=1.0) or 1.0
        return self.render(
            request,
            "shipment.html",
            status,
            record=record,
            groups=groups,
            attributes=attributes,
            label=info.label,
            narcotics=info.label == LabelMeaning(),
            latest=latest,
            outcomes=outcomes,
            reports=reports,
            corrected=any(r["revision"] > 1 for r in reports),
            amendments=amendments,
            reasons=reasons,
            reasons_note=reasons_note,
            scale=scale,
            parties=parties,
            linked=linked,
            history_note=history_note,
            form=form,
            errors=errors or [],
            error_fields={e["field"] for e in errors or []},
            recorded=request.query_params.get("recorded"),
            pick=pick,
            DRUGS=DRUGS,
            METHODS=INSPECTION_METHODS,
            SELECTED_BY=SELECTED_BY,
            **ctx,
        )

    @staticmethod
    def _dataset(engine) -> DatasetInfo:
        """What the served model's positives mean and its attributes (the default narcotics
        meaning when no model is loaded)."""
        model = engine.served_model
        return DatasetInfo() if model is None else model.scoring.dataset

    @staticmethod
    def _reasons(engine, record: dict, latest: dict | None) -> tuple[list[dict], str]:
        """The reasons to draw: those served with the latest score (what the audit trail
        holds) or, when the shipment ranked below the explained share of its manifest,
        computed now from the history as of its declaration."""
        if latest is not None and latest.get("reasons"):
            return latest["reasons"], (
                f"As served with the score on {shown_value(latest['scored_at'])} UTC by model "
                f"version {latest['model_version']}."
            )
        model = engine.served_model
        if model is None or not engine.history_loaded:
            return [], "No reasons: the model or the history is not loaded yet."
        from features.contracts import validate_shipments

        attributes = record.get("attributes") or {}
        row = {k: v for k, v in record.items() if k != "attributes"}
        row.update({attribute_column(k): v for k, v in attributes.items()})
        frame = validate_shipments(pd.DataFrame([row]))
        feats = engine.features(frame)
        item = model.scoring.explain(feats)[0]
        return item["reasons"], (
            "Computed on opening this page by model version "
            f"{model.version}, from the history known at the shipment's declaration (it "
            "ranked below the share of its manifest explained at scoring time)."
        )

    @staticmethod
    def _parties(engine, record: dict) -> tuple[list[dict], list[dict], str | None]:
        found = engine.parties(record)
        if found is None:
            return [], [], "The history is not loaded yet."
        parties, linked = found
        return parties, linked, None

    async def outcome(self, request: Request) -> Response:
        engine, session, caller = await run_in_threadpool(self.officer, request, "record_outcomes")
        form = await request.form()
        if not self.csrf_ok(session, form):
            return self.form_expired(request, session, caller)
        shipment_id = normal_text(request.path_params["shipment_id"])
        fields = ("inspected_at", "result_at", "result", "drug", "quantity_kg", "method",
                  "selected_by")  # fmt: skip
        given = {f: str(form.get(f) or "").strip()[:64] for f in fields}
        given["correction_reason"] = str(form.get("correction_reason") or "").strip()[:600]
        return await run_in_threadpool(
            self._record_outcome, request, engine, session, caller, shipment_id, given
        )

    def _record_outcome(self, request, engine, session, caller, shipment_id, given) -> Response:
        from serving.engine import Conflict, NotFound, NotReady, RequestError
        from serving.schemas import OutcomeIn

        def not_found() -> Response:
            return self.render(
                request, "error.html", 404, title="No such shipment",
                message=f"The store holds no shipment {shipment_id!r}.",
                session=session, caller=caller,
            )  # fmt: skip

        if engine.store.shipment(shipment_id) is None:
            return not_found()
        data: dict[str, Any] = {"shipment_id": shipment_id}
        for key, value in given.items():
            if key != "correction_reason":
                data[key] = value or None
        if given["correction_reason"]:
            data["correction"] = {"reason": given["correction_reason"]}
        if data["result"] == "clean":  # the form hides these for clean results
            data["drug"] = data["drug"] if given["drug"] else None
            data["quantity_kg"] = data["quantity_kg"] if given["quantity_kg"] else None
        errors = []
        status = 400
        try:
            outcome = OutcomeIn(**data)
        except ValidationError as exc:
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else "form"
                if field == "correction":
                    field = "correction_reason"
                errors.append({"field": field, "message": f"{field_label(field)}: {err['msg']}"})
            outcome = None
        if outcome is not None:
            try:
                engine.record_outcomes([outcome], caller=caller)
            except NotReady as exc:
                errors.append({"field": "form", "message": f"Not recorded: {exc}"})
            except NotFound:  # the same answer as POST /outcomes
                return not_found()
            except Conflict as exc:  # the same answer as POST /outcomes: 409
                status = 409
                old = exc.existing[0] if exc.existing else None
                message = (
                    "Not recorded: this inspection already has a report"
                    if old is None
                    else "Not recorded: the inspection of "
                    f"{shown_value(old['inspected_at'])} UTC already has a report "
                    f"({report_words(old)}, revision {old['revision']}, recorded by "
                    f"{old['caller']} on {shown_value(old['received_at'])} UTC)"
                )
                errors.append(
                    {
                        "field": "correction_reason",
                        "message": f"{message}. To correct it, give the reason for the "
                        "correction; both reports are kept.",
                    }
                )
            except RequestError as exc:
                status = exc.status if exc.status in (403,) else 400
                field = field_of(str(exc), given)
                errors.append({"field": field, "message": f"Not recorded: {exc}"})
        if errors:
            return self._shipment_page(
                request, engine, session, caller, form=given, errors=errors, status=status
            )
        target = self.path(request, "shipment", {"recorded": "1"}, shipment_id=shipment_id)
        return RedirectResponse(target, 303)
