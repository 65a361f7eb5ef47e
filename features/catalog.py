"""The feature catalog: every model feature, what it means to an officer, and how to say it.

This is the single source of the model's feature order (:data:`FEATURE_NAMES`), of which
features are categorical, and of the sentences explanations show ("consignee first seen 3 days
ago"). Training, serving, the docs and the UI read it from here.

Point-in-time wording: every history number is "before this shipment was declared" - earlier
shipments only, and inspection results already known at that moment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from features.manifest import is_missing


@dataclass(frozen=True)
class Feature:
    """One model feature.

    ``reason`` is a sentence template with ``{value}`` for explanations; ``missing_reason`` is
    said instead when the value is missing (e.g. "consignee never seen before").
    """

    name: str
    family: str
    kind: str
    description: str
    reason: str
    direction: str
    missing_reason: str = ""


FAMILIES: Final = ("manifest", "history", "change", "network")
KINDS: Final = ("numeric", "categorical", "flag")
DIRECTIONS: Final = ("up", "down", "none")

_ROLE_WORDS: Final = {
    "shipper": ("shipper", "consignees"),
    "consignee": ("consignee", "shippers"),
    "forwarder": ("forwarder", "consignees"),
    "declarant": ("declarant (customs broker)", "consignees"),
    "recipient": ("express recipient customs code", "senders"),
}


def _manifest() -> list[Feature]:
    f = Feature
    m = "manifest"
    return [
        f("mode", m, "categorical", "Transport stream: sea, air cargo or express",
          "shipped by {value}", "none", "transport mode not declared"),
        f("container_type", m, "categorical", "Container type (dry, reefer, open top...)",
          "container type {value}", "none", "no container type declared"),
        f("load_type", m, "categorical", "Full (FCL) or shared (LCL) container load",
          "container load {value}", "none", "no container load type declared"),
        f("freight_terms", m, "categorical", "Freight prepaid or collect",
          "freight {value}", "none", "freight terms not declared"),
        f("payment_method", m, "categorical", "How the goods were paid",
          "paid by {value}", "none", "payment method not declared"),
        f("platform", m, "categorical", "Online platform of an express order",
          "ordered on {value}", "none", "no online platform declared"),
        f("origin_country", m, "categorical", "Country of origin of the goods",
          "goods from {value}", "none", "origin country not declared"),
        f("departure_country", m, "categorical", "Country the shipment departed from",
          "departed from {value}", "none", "departure country not declared"),
        f("hs_chapter", m, "categorical", "HS chapter (2 digits) of the declared goods",
          "HS chapter {value}", "none", "HS chapter not declared"),
        f("value_per_kg", m, "numeric", "Declared value (USD) per kg gross weight",
          "declared value {value:,.2f} USD per kg", "none", "value per kg unknown"),
        f("value_per_package", m, "numeric", "Declared value (USD) per package",
          "declared value {value:,.2f} USD per package", "none", "value per package unknown"),
        f("weight_per_package", m, "numeric", "Gross weight (kg) per package",
          "{value:,.1f} kg per package", "none", "weight per package unknown"),
        f("value_per_kg_vs_heading", m, "numeric",
          "Log ratio of value per kg to earlier shipments of the same HS heading",
          "value per kg {value:+.2f} (log) from usual for this HS heading", "none",
          "no earlier shipments of this HS heading to compare value with"),
        f("value_per_kg_vs_heading_origin", m, "numeric",
          "Log ratio of value per kg to earlier shipments of the same HS heading and origin",
          "value per kg {value:+.2f} (log) from usual for this heading and origin", "none",
          "no earlier shipments of this heading from this origin to compare value with"),
        f("n_transshipments", m, "numeric", "Number of transshipment ports on the route",
          "{value:.0f} transshipment port(s) on the route", "up"),
        f("origin_risk", m, "numeric",
          "Seizure rate of earlier inspections of goods from this origin (smoothed)",
          "origin country seizure rate {value:.1%}", "up", "origin country not declared"),
        f("departure_risk", m, "numeric",
          "Seizure rate of earlier inspections of shipments from this departure country",
          "departure country seizure rate {value:.1%}", "up",
          "departure country not declared"),
        f("loading_port_risk", m, "numeric",
          "Seizure rate of earlier inspections of shipments from this loading port",
          "loading port seizure rate {value:.1%}", "up", "no loading port declared"),
        f("transshipment_risk", m, "numeric",
          "Highest seizure rate among the route's transshipment ports",
          "transshipped via a port with seizure rate {value:.1%}", "up",
          "no transshipment on the route"),
        f("hs_chapter_risk", m, "numeric",
          "Seizure rate of earlier inspections of goods of this HS chapter",
          "HS chapter seizure rate {value:.1%}", "up", "HS chapter not declared"),
        f("hs_heading_risk", m, "numeric",
          "Seizure rate of earlier inspections of goods of this HS heading",
          "HS heading seizure rate {value:.1%}", "up", "HS heading not declared"),
        f("hs_subheading_risk", m, "numeric",
          "Seizure rate of earlier inspections of goods of this HS subheading",
          "HS subheading seizure rate {value:.1%}", "up", "HS subheading not declared"),
        f("origin_hs_risk", m, "numeric",
          "Seizure rate of earlier inspections of this HS chapter from this origin",
          "this commodity from this origin has seizure rate {value:.1%}", "up",
          "origin or HS chapter not declared"),
        f("route_risk", m, "numeric",
          "Seizure rate of earlier inspections on this mode, container type, departure "
          "country and loading port",
          "this container type on this route has seizure rate {value:.1%}", "up",
          "route not declared"),
        f("loading_port_seizures_90d", m, "numeric",
          "Seizures from this loading port made known in the last 90 days",
          "loading port with {value:.0f} seizure(s) in 90 days", "up",
          "no loading port declared"),
        f("departure_seizures_90d", m, "numeric",
          "Seizures from this departure country made known in the last 90 days",
          "departure country with {value:.0f} seizure(s) in 90 days", "up",
          "departure country not declared"),
        f("hs_code_shipments", m, "numeric", "Earlier shipments declared under this HS code",
          "HS code seen on {value:.0f} earlier shipment(s)", "down"),
        f("origin_hs_shipments", m, "numeric",
          "Earlier shipments of this HS subheading from this origin",
          "this commodity from this origin seen {value:.0f} time(s) before", "down",
          "HS subheading not declared"),
        f("booking_to_departure_days", m, "numeric", "Days from booking to departure",
          "booked {value:.1f} days before departure", "none", "booking or departure time unknown"),
        f("transit_days", m, "numeric", "Days from departure to arrival",
          "{value:.1f} days in transit", "none", "departure or arrival time unknown"),
        f("declaration_lead_days", m, "numeric",
          "Days from declaration to arrival (negative: declared after arrival)",
          "declared {value:.1f} days before arrival", "none", "arrival time unknown"),
        f("generic_description", m, "flag",
          "Goods description is mostly generic wording (gifts, samples, parts...)",
          "generic goods description", "up", "no goods description"),
        f("description_novelty", m, "numeric",
          "Share of the goods description's words never seen before with this HS chapter",
          "{value:.0%} of the description's words are unusual for this HS chapter", "up",
          "no description words to compare with this HS chapter's history"),
        f("de_minimis_margin", m, "numeric",
          "How far (share) an express parcel's value is below the de-minimis threshold",
          "declared value {value:.0%} below the de-minimis threshold", "down",
          "not an express parcel below a de-minimis threshold"),
        f("near_de_minimis", m, "flag",
          "Express parcel declared just below a de-minimis threshold",
          "declared value just under the de-minimis threshold", "up",
          "not an express parcel"),
    ]  # fmt: skip


def _history() -> list[Feature]:
    out: list[Feature] = []
    h = "history"
    for role, (who, others) in _ROLE_WORDS.items():
        gone = f"no {who} declared"
        out += [
            Feature(f"{role}_days_since_first", h, "numeric",
                    f"Days since the {who} was first seen", f"{who} first seen {{value:.0f}} "
                    "days ago", "down", f"{who} never seen before (or not declared)"),
            Feature(f"{role}_shipments_7d", h, "numeric",
                    f"Shipments of the {who} in the 7 days before",
                    f"{who} had {{value:.0f}} shipment(s) in the last 7 days", "none", gone),
            Feature(f"{role}_shipments_30d", h, "numeric",
                    f"Shipments of the {who} in the 30 days before",
                    f"{who} had {{value:.0f}} shipment(s) in the last 30 days", "none", gone),
            Feature(f"{role}_shipments_365d", h, "numeric",
                    f"Shipments of the {who} in the 365 days before",
                    f"{who} had {{value:.0f}} shipment(s) in the last year", "down", gone),
            Feature(f"{role}_shipments_total", h, "numeric",
                    f"All earlier shipments of the {who}",
                    f"{who} has {{value:.0f}} earlier shipment(s)", "down", gone),
            Feature(f"{role}_growth_30d", h, "numeric",
                    f"Shipments of the {who} in the last 30 days against their usual "
                    "monthly rate over the year before (1 = usual)",
                    f"{who} activity {{value:.1f}}x their usual monthly rate", "up",
                    f"no activity of the {who} in the year before the last 30 days"),
            Feature(f"{role}_distinct_origins", h, "numeric",
                    f"Distinct origin countries in the {who}'s earlier shipments",
                    f"{who} shipped from {{value:.0f}} origin countries before", "none", gone),
            Feature(f"{role}_distinct_hs_chapters", h, "numeric",
                    f"Distinct HS chapters in the {who}'s earlier shipments",
                    f"{who} declared {{value:.0f}} HS chapters before", "none", gone),
            Feature(f"{role}_distinct_counterparties", h, "numeric",
                    f"Distinct {others} in the {who}'s earlier shipments",
                    f"{who} dealt with {{value:.0f}} distinct {others} before", "up", gone),
            Feature(f"{role}_inspected_share", h, "numeric",
                    f"Share of the {who}'s earlier shipments with a known inspection result",
                    f"{{value:.0%}} of the {who}'s earlier shipments were inspected", "none",
                    f"{who} has no earlier shipments"),
            Feature(f"{role}_seizures", h, "numeric",
                    f"Seizures on the {who}'s earlier shipments known before this one",
                    f"{who} had {{value:.0f}} earlier seizure(s)", "up", gone),
            Feature(f"{role}_seizure_rate", h, "numeric",
                    f"Seizure rate of the {who}'s earlier inspections (smoothed toward the "
                    "overall rate)",
                    f"{who} seizure rate {{value:.1%}}", "up", gone),
        ]  # fmt: skip
    return out


def _change() -> list[Feature]:
    c = "change"
    return [
        Feature("consignee_phone_new", c, "flag",
                "Consignee with earlier shipments declares a phone number never used before",
                "consignee's phone number differs from their history", "up",
                "no phone history to compare"),
        Feature("consignee_address_new", c, "flag",
                "Consignee with earlier shipments declares an address never used before",
                "consignee's address differs from their history", "up",
                "no address history to compare"),
        Feature("consignee_forwarder_new", c, "flag",
                "Consignee with earlier shipments uses a forwarder never used before",
                "consignee uses a forwarder they never used before", "up",
                "no forwarder history to compare"),
        Feature("consignee_forwarder_share", c, "numeric",
                "Share of the consignee's earlier shipments handled by this forwarder",
                "{value:.0%} of the consignee's earlier shipments used this forwarder", "down",
                "no forwarder history to compare"),
        Feature("shipper_consignee_new_pair", c, "flag",
                "First shipment between this shipper and this consignee",
                "first shipment between this shipper and consignee", "up"),
        Feature("shipper_consignee_shipments", c, "numeric",
                "Earlier shipments between this shipper and this consignee",
                "{value:.0f} earlier shipment(s) between this shipper and consignee", "down"),
    ]  # fmt: skip


def _network() -> list[Feature]:
    n = "network"
    return [
        Feature("phone_other_consignees", n, "numeric",
                "Other consignees who declared this phone number before",
                "phone number shared with {value:.0f} other consignee(s)", "up",
                "no consignee phone declared"),
        Feature("address_other_consignees", n, "numeric",
                "Other consignees who declared this address before",
                "address shared with {value:.0f} other consignee(s)", "up",
                "no consignee address declared"),
        Feature("recipient_code_other_consignees", n, "numeric",
                "Other consignees who used this recipient customs code before",
                "recipient customs code used by {value:.0f} other consignee(s)", "up",
                "no recipient customs code declared"),
        Feature("phone_linked_seizures", n, "numeric",
                "Seizures known on earlier shipments of other consignees with this phone",
                "phone linked to {value:.0f} earlier seizure(s)", "up",
                "no consignee phone declared"),
        Feature("address_linked_seizures", n, "numeric",
                "Seizures known on earlier shipments of other consignees at this address",
                "address linked to {value:.0f} earlier seizure(s)", "up",
                "no consignee address declared"),
        Feature("recipient_code_linked_seizures", n, "numeric",
                "Seizures known on earlier shipments of other consignees using this "
                "recipient customs code",
                "recipient customs code linked to {value:.0f} earlier seizure(s)", "up",
                "no recipient customs code declared"),
        Feature("network_size", n, "numeric",
                "Consignees in the consignee's network (linked by shared phones, addresses or "
                "recipient codes, at any distance)",
                "consignee belongs to a network of {value:.0f} parties", "up",
                "consignee not seen before"),
        Feature("network_seizures", n, "numeric",
                "Seizures known among the other consignees of the consignee's network",
                "{value:.0f} seizure(s) in the consignee's network", "up",
                "consignee not seen before"),
    ]  # fmt: skip


FEATURES: Final[tuple[Feature, ...]] = tuple(_manifest() + _history() + _change() + _network())
FEATURE_NAMES: Final[tuple[str, ...]] = tuple(f.name for f in FEATURES)
CATEGORICAL_FEATURES: Final[tuple[str, ...]] = tuple(
    f.name for f in FEATURES if f.kind == "categorical"
)
_BY_NAME: Final = {f.name: f for f in FEATURES}


def feature(name: str) -> Feature:
    """The catalog entry of a feature; ``KeyError`` naming it when it does not exist."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown feature: {name!r}") from None


def reason_text(name: str, value: Any) -> str:
    """The officer sentence for one feature value (missing values get their own wording)."""
    f = feature(name)
    if is_missing(value) or (isinstance(value, float) and math.isinf(value)):
        return f.missing_reason or f"{f.description}: not available"
    if f.kind == "flag":
        try:
            on = float(value) >= 0.5
        except (TypeError, ValueError):
            on = bool(value)
        return f.reason if on else f"{f.description}: no"
    if f.kind == "categorical":
        return f.reason.format(value=str(value))
    try:
        return f.reason.format(value=float(value))
    except (TypeError, ValueError):
        return f"{f.description}: {value}"
