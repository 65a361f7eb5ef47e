"""What the online state keeps: per key, the timelines of earlier declarations and known
inspection results; per shipment, what its later outcomes count against; the link-graph nodes
of parties and identifiers; and the checks of what it is given."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.contracts import AttributeSpec, missing_required
from features.errors import ContractError
from features.history import (
    DISTINCT,
    OUTCOME_COUNTS,
    SHIPMENT_COUNTS,
    VALUE_MEANS,
    Timeline,
)
from features.manifest import prepare
from features.network import IDENTIFIERS, LinkGraph

OUTCOME_DIMS = tuple(OUTCOME_COUNTS)
IDENT_PREFIX = {"consignee": "c:", "phone": "p:", "address": "a:", "recipient": "r:"}
KEY_DIMS = tuple(
    sorted(
        set(SHIPMENT_COUNTS)
        | set(OUTCOME_COUNTS)
        | set(VALUE_MEANS)
        | {d for pair in DISTINCT for d in pair}
        | {"hs2", "consignee", *IDENTIFIERS}
    )
)


MIRROR = {
    ("shipper", "consignee"): "shipper_consignee",
    ("consignee", "shipper"): "shipper_consignee",
    ("phone", "consignee"): "consignee_phone",
    ("address", "consignee"): "consignee_address",
    ("recipient", "consignee"): "consignee_recipient",
}
"""Distinct-count pairs whose first time is the first shipment of a combination key the state
already keeps (no second table for them)."""
FOUND = "_found_timelines"
"""Key under which :meth:`OnlineFeatureState.features` leaves, in a prepared manifest, the
timelines it looked up - ``(state, {(table, dim): [Timeline | None per row]})`` - so that
:meth:`OnlineFeatureState.add_shipments` of the same manifest does not look them up again.
Timelines are never replaced in a state, so a reference found earlier stays right; a key
without one (None) is looked up again, as another manifest may have created it since."""


class ShipmentRecord:
    """What the state remembers of one added shipment, to attribute its outcomes later:
    ``t`` its place in the history (as first declared), and the keys, ports and consignee of
    the declaration in force (``version``; amendments replace them)."""

    __slots__ = ("consignee", "keys", "node", "ports", "t", "version")

    def __init__(self, t: int, keys: tuple, ports: tuple, node: int, consignee: str | None):
        self.t = t
        self.keys = keys
        self.ports = ports
        self.node = node
        self.consignee = consignee
        self.version = 1


class StateStorage:
    """The tables of an online state (see :class:`features.online.OnlineFeatureState`)."""

    def __init__(self, attributes: Mapping[str, AttributeSpec] | None = None) -> None:
        self.attributes: dict[str, AttributeSpec] = dict(attributes or {})
        self._ship: dict[str, dict[Any, Timeline]] = {dim: {} for dim in SHIPMENT_COUNTS}
        self._pair_first: dict[Any, dict[Any, int]] = {pair: {} for pair in DISTINCT}
        self._distinct: dict[Any, dict[Any, Timeline]] = {pair: {} for pair in DISTINCT}
        self._values: dict[str, dict[Any, Timeline]] = {dim: {} for dim in VALUE_MEANS}
        self._insp: dict[str, dict[Any, Timeline]] = {dim: {} for dim in OUTCOME_COUNTS}
        self._seiz: dict[str, dict[Any, Timeline]] = {dim: {} for dim in OUTCOME_COUNTS}
        self._port_insp: dict[str, Timeline] = {}
        self._port_seiz: dict[str, Timeline] = {}
        self._words: dict[str, int] = {}
        self._graph = LinkGraph()
        self._nodes: dict[str, int] = {}
        self._is_party: list[bool] = []
        self._links: dict[tuple[str, str], list] = {}
        self._display: dict[str, str] = {}
        self._shipments: dict[str, ShipmentRecord] = {}
        # report in force of each inspection: shipment id -> inspected at -> (result at,
        # seized); counted once the shipment is added
        self._outcomes: dict[str, dict[int, tuple[int, bool]]] = {}
        # declarations in force of amended shipments not added yet: shipment id -> amendment
        self._later: dict[str, tuple] = {}
        self._now: int | None = None

    @staticmethod
    def prepare(shipments: pd.DataFrame | Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The normalised keys of contract ``shipments`` as the state uses them. The service
        prepares a manifest once and passes the result to :meth:`features` and then to
        :meth:`add_shipments` (``prepared=``), rather than normalising it twice. One shipment
        may be given as a mapping of contract fields (three times cheaper than a frame)."""
        if isinstance(shipments, Mapping):
            check_shipment_mapping(shipments)
        else:
            check_shipments(shipments)
        return prepare(shipments, tuple_keys=True)

    def _node(self, kind: str, key: str | None) -> int:
        if key is None:
            return -1
        name = IDENT_PREFIX[kind] + key
        node = self._nodes.get(name)
        if node is None:
            node = self._nodes[name] = len(self._is_party)
            self._is_party.append(False)
            self._graph.grow(node + 1)
        return node

    def __len__(self) -> int:
        """Number of shipments held."""
        return len(self._shipments)


def optional_column(frame: pd.DataFrame, name: str) -> list:
    """An optional contract column's values (all None when the frame does not have it)."""
    return frame[name].tolist() if name in frame.columns else [None] * len(frame)


def check_shipments(shipments: pd.DataFrame) -> None:
    missing = missing_required("shipments", shipments.columns)
    if missing:
        raise ContractError(f"shipments lack required column(s): {', '.join(missing)}")


def check_shipment_mapping(shipment: Mapping[str, Any]) -> None:
    missing = missing_required("shipments", shipment)
    if missing:
        raise ContractError(f"shipment lacks required field(s): {', '.join(missing)}")
