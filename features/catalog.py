"""The feature catalog: every model feature, what it means to an officer, and how to say it.

This is the single source of the model's feature order (:data:`FEATURE_NAMES`), of which
features are categorical, of the family each belongs to (:data:`FAMILIES`: training keeps or
drops whole families) and of the sentences explanations show ("consignee first seen 3 days
ago"). Training, serving, the docs and the UI read it from here.

Point-in-time wording: every history number is "before this shipment was declared" - earlier
shipments only, and inspection results already known at that moment. A window of N days is
on the UTC-day grid (:func:`features.history.window_start`): the N whole days (UTC) before the
shipment's day and that day before it, and is worded so.

Two kinds of features are not fixed lists: a dataset's **attributes** (a customs service's own
fields, ``attr.<name>``, declared per dataset by an :class:`~features.contracts.AttributeSpec`)
are worded from their spec, and the **label** of a dataset (what a positive result is: a
narcotics seizure, a duty-fraud finding) replaces the word "seizure" in every sentence
(:func:`reason_text`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from features.contracts import (
    ATTRIBUTE_PREFIX,
    BULK_KG,
    AttributeSpec,
    LabelMeaning,
)
from features.manifest import is_missing


@dataclass(frozen=True)
class Feature:
    """One model feature.

    ``reason`` is a sentence template with ``{value}`` for explanations; ``missing_reason`` is
    said instead when the value is missing (e.g. "consignee never seen before"), and
    ``off_reason`` when a flag is off (default: the description followed by "no").
    ``shown_upper``: the value is a code or an id, keyed case-folded but shown in capitals as
    customs writes it ("shipper EX-42").
    """

    name: str
    family: str
    kind: str
    description: str
    reason: str
    direction: str
    missing_reason: str = ""
    off_reason: str = ""
    shown_upper: bool = False


DEFINITIONS: Final = 2
"""Version of what the catalogued features mean, recorded with every model (a model must be
scored on the definitions it learned from: the same names with another meaning are silently
wrong inputs). 1: the smoothed seizure rates themselves and windows of exact days before the
shipment; 2: seizure rates relative to the overall rate (``features.history.relative_rate``)
and windows on the UTC-day grid (``features.history.window_start``), which landed together."""

FAMILIES: Final = ("manifest", "rates", "history", "change", "network", "attributes", "raw")
"""Feature families, the unit training selects on the validation period:

* ``manifest``: what the declaration itself says (mode, places, goods, ratios, flags of odd or
  blank values), nothing learned from other shipments;
* ``rates``: the declaration compared with earlier traffic of its places and commodities
  (smoothed seizure rates relative to the overall rate, recent seizures, rarity, usual value
  per kg, usual wording);
* ``history``: each party's own earlier shipments, inspections and seizures;
* ``change``: an established consignee declaring something new (hijacked identities), and a
  declaration amended in substance after it was scored;
* ``network``: consignees linked by shared phones, addresses and recipient codes;
* ``attributes``: the customs service's own fields (``attr.<name>``), one feature each;
* ``raw``: the mapped fields as given (``raw_<field>``), for the raw-columns challenger.
"""
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
        f("mode", m, "categorical",
          "Transport mode (sea, rail, road, air, post, express courier...)",
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
        f("value_per_kg", m, "numeric",
          "Declared value (USD) per kg gross weight (not defined for a declared weight of 0)",
          "declared value {value:,.2f} USD per kg", "none", "value per kg unknown"),
        f("value_per_package", m, "numeric", "Declared value (USD) per package",
          "declared value {value:,.2f} USD per package", "none", "value per package unknown"),
        f("weight_per_package", m, "numeric", "Gross weight (kg) per package",
          "{value:,.1f} kg per package", "none", "weight per package unknown"),
        f("n_transshipments", m, "numeric", "Number of transshipment ports on the route",
          "{value:.0f} transshipment port(s) on the route", "up"),
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
        f("de_minimis_margin", m, "numeric",
          "How far (share) a small parcel's value (express or post) is below the de-minimis "
          "threshold",
          "declared value {value:.0%} below the de-minimis threshold", "down",
          "not a small parcel below a de-minimis threshold"),
        f("near_de_minimis", m, "flag",
          "Small parcel (express or post) declared just below a de-minimis threshold",
          "declared value just under the de-minimis threshold", "up",
          "not a small parcel (express or post)"),
        f("weight_zero", m, "flag",
          "Declared gross weight is 0 kg (light items rounded down, or not weighed)",
          "declared weight 0 kg", "none", "gross weight not declared",
          "declared weight above 0 kg"),
        f("weight_bulk", m, "flag",
          f"Declared gross weight above {BULK_KG / 1000:,.0f} t (bulk cargo)",
          f"declared weight above {BULK_KG / 1000:,.0f} t (bulk cargo)", "none",
          "gross weight not declared", f"declared weight up to {BULK_KG / 1000:,.0f} t"),
        f("value_zero", m, "flag",
          "Declared value is 0 (in the declaration currency, else in USD)",
          "declared value 0", "none", "no declared value", "declared value above 0"),
        f("shipper_not_declared", m, "flag",
          "The declaration names no shipper (the seller or sender)",
          "no shipper declared", "none", off_reason="shipper declared"),
        f("consignee_not_declared", m, "flag",
          "The declaration names no consignee (the buyer or recipient)",
          "no consignee declared", "none", off_reason="consignee declared"),
        f("undeclared_share", m, "numeric",
          "Share of the core declaration fields left blank (shipper, consignee, origin, "
          "departure country, HS code, goods description, packages, weight, value)",
          "{value:.0%} of the core declaration fields left blank", "none"),
    ]  # fmt: skip


def _rates() -> list[Feature]:
    f = Feature
    r = "rates"
    return [
        f("origin_risk", r, "numeric",
          "Seizure rate of earlier inspections of goods from this origin, relative to the "
          "overall rate (smoothed; 1 = as often as traffic overall, or no inspection yet)",
          "origin country seizure rate {value:.1f}x the overall rate", "up",
          "origin country not declared"),
        f("departure_risk", r, "numeric",
          "Seizure rate of earlier inspections of shipments from this departure country, "
          "relative to the overall rate (smoothed)",
          "departure country seizure rate {value:.1f}x the overall rate", "up",
          "departure country not declared"),
        f("loading_port_risk", r, "numeric",
          "Seizure rate of earlier inspections of shipments from this loading port, relative "
          "to the overall rate (smoothed)",
          "loading port seizure rate {value:.1f}x the overall rate", "up",
          "no loading port declared"),
        f("transshipment_risk", r, "numeric",
          "Highest seizure rate among the route's transshipment ports, relative to the "
          "overall rate (smoothed)",
          "transshipped via a port with seizure rate {value:.1f}x the overall rate", "up",
          "no transshipment on the route"),
        f("hs_chapter_risk", r, "numeric",
          "Seizure rate of earlier inspections of goods of this HS chapter, relative to the "
          "overall rate (smoothed)",
          "HS chapter seizure rate {value:.1f}x the overall rate", "up", "HS chapter not declared"),
        f("hs_heading_risk", r, "numeric",
          "Seizure rate of earlier inspections of goods of this HS heading, relative to the "
          "overall rate (smoothed)",
          "HS heading seizure rate {value:.1f}x the overall rate", "up", "HS heading not declared"),
        f("hs_subheading_risk", r, "numeric",
          "Seizure rate of earlier inspections of goods of this HS subheading, relative to "
          "the overall rate (smoothed)",
          "HS subheading seizure rate {value:.1f}x the overall rate", "up",
          "HS subheading not declared"),
        f("origin_hs_risk", r, "numeric",
          "Seizure rate of earlier inspections of this HS chapter from this origin, "
          "relative to the overall rate (smoothed)",
          "this commodity from this origin has seizure rate {value:.1f}x the overall rate", "up",
          "origin or HS chapter not declared"),
        f("route_risk", r, "numeric",
          "Seizure rate of earlier inspections on this mode, container type, departure "
          "country and loading port, relative to the overall rate (smoothed)",
          "this container type on this route has seizure rate {value:.1f}x the overall rate", "up",
          "route not declared"),
        f("loading_port_seizures_90d", r, "numeric",
          "Seizures from this loading port made known in the 90 days (UTC) before the "
          "shipment's day and on that day before it",
          "loading port with {value:.0f} seizure(s) known in the 90 days before this "
          "shipment's day and on it", "up",
          "no loading port declared"),
        f("departure_seizures_90d", r, "numeric",
          "Seizures from this departure country made known in the 90 days (UTC) before the "
          "shipment's day and on that day before it",
          "departure country with {value:.0f} seizure(s) known in the 90 days before this "
          "shipment's day and on it", "up",
          "departure country not declared"),
        f("hs_code_shipments", r, "numeric", "Earlier shipments declared under this HS code",
          "HS code seen on {value:.0f} earlier shipment(s)", "down"),
        f("origin_hs_shipments", r, "numeric",
          "Earlier shipments of this HS subheading from this origin",
          "this commodity from this origin seen {value:.0f} time(s) before", "down",
          "HS subheading not declared"),
        f("value_per_kg_vs_heading", r, "numeric",
          "Log ratio of value per kg to earlier shipments of the same HS heading",
          "value per kg {value:+.2f} (log) from usual for this HS heading", "none",
          "no earlier shipments of this HS heading to compare value with"),
        f("value_per_kg_vs_heading_origin", r, "numeric",
          "Log ratio of value per kg to earlier shipments of the same HS heading and origin",
          "value per kg {value:+.2f} (log) from usual for this heading and origin", "none",
          "no earlier shipments of this heading from this origin to compare value with"),
        f("description_novelty", r, "numeric",
          "Share of the goods description's words never seen before with this HS chapter",
          "{value:.0%} of the description's words are unusual for this HS chapter", "up",
          "no description words to compare with this HS chapter's history"),
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
                    f"Shipments of the {who} in the 7 days (UTC) before the shipment's day "
                    "and on that day before it",
                    f"{who} had {{value:.0f}} shipment(s) in the 7 days before this "
                    "shipment's day and on it", "none", gone),
            Feature(f"{role}_shipments_30d", h, "numeric",
                    f"Shipments of the {who} in the 30 days (UTC) before the shipment's day "
                    "and on that day before it",
                    f"{who} had {{value:.0f}} shipment(s) in the 30 days before this "
                    "shipment's day and on it", "none", gone),
            Feature(f"{role}_shipments_365d", h, "numeric",
                    f"Shipments of the {who} in the 365 days (UTC) before the shipment's day "
                    "and on that day before it",
                    f"{who} had {{value:.0f}} shipment(s) in the year before this "
                    "shipment's day and on it", "down", gone),
            Feature(f"{role}_shipments_total", h, "numeric",
                    f"All earlier shipments of the {who}",
                    f"{who} has {{value:.0f}} earlier shipment(s)", "down", gone),
            Feature(f"{role}_growth_30d", h, "numeric",
                    f"Shipments of the {who} in its 30-day window (as shipments_30d) against "
                    "their usual monthly rate over the rest of its 365-day window (1 = usual)",
                    f"{who} activity {{value:.1f}}x their usual monthly rate", "up",
                    f"no activity of the {who} in its 365-day window before its 30-day one"),
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
                    f"Seizure rate of the {who}'s earlier inspections relative to the "
                    "overall rate (smoothed; 1 = as often as traffic overall, or never "
                    "inspected)",
                    f"{who} seizure rate {{value:.1f}}x the overall rate", "up", gone),
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
                "first shipment between this shipper and consignee", "up",
                "shipper or consignee not declared"),
        Feature("shipper_consignee_shipments", c, "numeric",
                "Earlier shipments between this shipper and this consignee",
                "{value:.0f} earlier shipment(s) between this shipper and consignee", "down",
                "shipper or consignee not declared"),
        Feature("declaration_amendments", c, "numeric",
                "Times the declaration was amended in its parties, goods, route or weight "
                "after it was first scored",
                "declaration amended {value:.0f} time(s) in parties, goods, route or weight "
                "after it was scored", "up",
                "no amendment record"),
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


RAW_CATEGORICAL: Final = {
    "mode": ("transport mode", "transport mode {value}", False),
    "origin_country": ("origin country", "declared origin {value}", True),
    "departure_country": ("departure country", "declared departure country {value}", True),
    "loading_port": ("loading port", "loading port {value}", True),
    "discharge_port": ("discharge port", "discharge port {value}", True),
    "hs_code": ("HS code", "declared HS code {value}", True),
    "currency": ("declaration currency", "declared in {value}", True),
    "freight_terms": ("freight terms", "freight {value}", False),
    "payment_method": ("payment method", "paid by {value}", False),
    "container_type": ("container type", "container type {value}", False),
    "load_type": ("container load type", "container load {value}", False),
    "platform": ("online platform", "ordered on {value}", False),
    "shipper_id": ("shipper", "shipper {value}", True),
    "consignee_id": ("consignee", "consignee {value}", True),
    "forwarder_id": ("forwarder", "forwarder {value}", True),
    "declarant_id": ("declarant (customs broker)", "declarant {value}", True),
    "carrier_id": ("carrier", "carrier {value}", True),
}
"""Mapped fields the raw family carries as categories: officer name, reason template and
whether the value is a code or id shown in capitals. Values are the field normalised like any
key (:func:`~features.manifest.norm_text`: case and spacing do not split a value)."""

RAW_NUMERIC: Final = {
    "packages": ("packages", "{value:,.0f} package(s) declared"),
    "gross_weight_kg": ("gross weight (kg)", "declared gross weight {value:,.1f} kg"),
    "declared_value": ("declared value (declaration currency)",
                       "declared value {value:,.2f} in the declaration currency"),
    "declared_value_usd": ("declared value (USD)", "declared value {value:,.2f} USD"),
}  # fmt: skip
"""Mapped numeric fields the raw family carries as numbers, as declared: officer name and
reason template."""

RAW_PREFIX: Final = "raw_"


def _raw() -> list[Feature]:
    def raw(field: str, kind: str, name: str, reason: str, upper: bool = False) -> Feature:
        described = f"{name[0].upper()}{name[1:]} as declared"
        return Feature(
            RAW_PREFIX + field, "raw", kind, described, reason, "none", f"{name} not declared",
            shown_upper=upper,
        )  # fmt: skip

    return [
        *(raw(f, "categorical", *spec) for f, spec in RAW_CATEGORICAL.items()),
        *(raw(f, "numeric", *spec) for f, spec in RAW_NUMERIC.items()),
    ]


FEATURES: Final[tuple[Feature, ...]] = tuple(
    _manifest() + _rates() + _history() + _change() + _network() + _raw()
)
"""Every catalogued feature, family by family in :data:`FAMILIES` order (attributes are per
dataset, not in this list)."""
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


def is_attribute(name: str) -> bool:
    """Whether a feature name is an attribute column (``attr.<name>``)."""
    return name.startswith(ATTRIBUTE_PREFIX)


def family_of(name: str) -> str:
    """The family of a feature (``attr.*`` columns: ``attributes``); ``KeyError`` naming an
    unknown feature."""
    if is_attribute(name):
        return "attributes"
    return feature(name).family


def _attribute_spec(
    name: str, attributes: Mapping[str, AttributeSpec] | None
) -> tuple[str, AttributeSpec | None]:
    short = name.removeprefix(ATTRIBUTE_PREFIX)
    return short, (attributes or {}).get(short)


def feature_kind(name: str, attributes: Mapping[str, AttributeSpec] | None = None) -> str:
    """``categorical``, ``numeric`` or ``flag``: for an attribute, the kind its spec declares
    (``KeyError`` naming an attribute the schema does not know)."""
    if is_attribute(name):
        short, spec = _attribute_spec(name, attributes)
        if spec is None:
            raise KeyError(f"unknown attribute: {short!r} (not in the attribute schema)")
        return spec.kind
    return feature(name).kind


_SEIZURE_WORD: Final = re.compile(r"\b([Ss])eizure(\(s\)|s\b)?")


def labelled(text: str, label: LabelMeaning | None) -> str:
    """``text`` with every "seizure" (seizures, seizure(s), Seizure...) said as the label's
    positive noun ("fraud finding(s)"); unchanged for the default narcotics label."""
    if label is None or label.positive == "seizure":
        return text
    return _in_words(text, label.positive)


@lru_cache(maxsize=4096)
def _in_words(text: str, noun: str) -> str:
    """:func:`labelled` of one template (a few hundred templates: worded once each)."""

    def say(match: re.Match) -> str:
        word = noun[0].upper() + noun[1:] if match.group(1) == "S" else noun
        return word + (match.group(2) or "")

    return _SEIZURE_WORD.sub(say, text)


def description(
    name: str,
    *,
    label: LabelMeaning | None = None,
    attributes: Mapping[str, AttributeSpec] | None = None,
) -> str:
    """The officer description of a feature (an attribute's: its spec's description, else its
    wording), in the label's words."""
    if is_attribute(name):
        short, spec = _attribute_spec(name, attributes)
        if spec is None:
            return short.replace("_", " ")
        return spec.description or spec.wording(short)
    return labelled(feature(name).description, label)


def reason_text(
    name: str,
    value: Any,
    *,
    label: LabelMeaning | None = None,
    attributes: Mapping[str, AttributeSpec] | None = None,
) -> str:
    """The officer sentence for one feature value (missing values get their own wording).

    ``label``: what a positive result is; every "seizure" in the sentence is said as its
    ``positive`` noun ("consignee had 2 earlier fraud finding(s)"). ``attributes``: the
    dataset's attribute schema, for ``attr.<name>`` features ("import type B2", "tax rate 8",
    "import type not declared"); an attribute missing from it is worded from its name."""
    if is_attribute(name):
        return _attribute_reason(name, value, attributes)
    f = feature(name)
    if is_missing(value) or (isinstance(value, float) and math.isinf(value)):
        return labelled(f.missing_reason or f"{f.description}: not available", label)
    if f.kind == "flag":
        try:
            on = float(value) >= 0.5
        except (TypeError, ValueError):
            on = bool(value)
        if on:
            return labelled(f.reason, label)
        return labelled(f.off_reason or f"{f.description}: no", label)
    if f.kind == "categorical":
        text = str(value).upper() if f.shown_upper else str(value)
        return labelled(f.reason, label).format(value=text)
    try:
        return labelled(f.reason, label).format(value=float(value))
    except (TypeError, ValueError):
        return labelled(f"{f.description}: {value}", label)


def _attribute_reason(name: str, value: Any, attributes: Mapping[str, AttributeSpec] | None) -> str:
    short, spec = _attribute_spec(name, attributes)
    wording = spec.wording(short) if spec is not None else short.replace("_", " ")
    if is_missing(value) or (isinstance(value, float) and math.isinf(value)):
        return f"{wording} not declared"
    if isinstance(value, str) and not value.strip():
        return f"{wording} not declared"
    numeric = spec.kind == "numeric" if spec is not None else not isinstance(value, str)
    if numeric:
        try:
            return f"{wording} {float(value):g}"
        except (TypeError, ValueError):
            pass
    return f"{wording} {str(value).strip()}"
