"""The online feature state, made of its parts (see the package's docstring)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from features.contracts import AttributeSpec
from features.online.aggregates import RawAggregates
from features.online.bulk import BulkAdd
from features.online.update import Updates
from features.online.views import OfficerViews


class OnlineFeatureState(BulkAdd, Updates, RawAggregates, OfficerViews):
    """In-memory history for scoring shipments one by one, with the same numbers as
    :func:`features.pipeline.build_training_frame`.

    ``attributes``: the attribute schema of the model served (name -> spec); each feature row
    ends with the ``attr.<name>`` columns of these attributes, as in the training frame.
    Attributes have no history: they are read from the shipments scored."""

    @classmethod
    def from_history(
        cls,
        shipments: pd.DataFrame,
        outcomes: pd.DataFrame,
        *,
        attributes: Mapping[str, AttributeSpec] | None = None,
        amended: tuple[pd.DataFrame, list[int]] | None = None,
    ) -> OnlineFeatureState:
        """A state holding ``shipments`` (as first declared) and their known ``outcomes``
        (contract frames), giving features with the ``attributes`` of this schema.
        ``amended``: the declarations in force of amended shipments and their version numbers
        (see :meth:`amend_shipments`).

        Built in bulk (timelines grouped with numpy, one Python step per key rather than per
        shipment and key); the result is the same as adding the shipments one by one."""
        state = cls(attributes=attributes)
        if len(shipments):
            state._bulk_add(shipments)
        if amended is not None:
            state.amend_shipments(*amended)
        state.add_outcomes(outcomes)
        return state
