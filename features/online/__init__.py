"""The online feature state: the history the scoring service keeps in memory.

It holds, per key (party, place, commodity, identifier, combination), the sorted times of
earlier declarations and of known inspection results, and answers the same point-in-time
questions as the offline pipeline with binary search, then finishes the numbers with the same
functions (:func:`features.pipeline.feature_columns` and ``feature_frame``). A parity test
replays a simulated month through both and compares every feature of every shipment.

Time semantics of :meth:`OnlineFeatureState.features`: each shipment is described as of its own
``declared_at`` using what was added to the state before: earlier declarations and results
known (``max(result_at, declared_at)``) strictly before it. Serving scores shipments as they
are declared, so that is "now". A shipment declared in the past relative to the state is still
computed as of its own time for every history, change and one-hop network feature (the state
keeps full timelines); only the two whole-network features (``network_size``,
``network_seizures``) describe the link graph as the state holds it now, because connected
components cannot be taken back to an earlier time.

Adding is idempotent: a shipment is counted once per ``shipment_id`` (re-scoring never counts
it twice; the first version added wins; an amendment, :meth:`OnlineFeatureState.amend_shipments`,
moves only where its inspections count) and an inspection once per ``(shipment_id,
inspected_at)``: a later, different report of the same inspection (a correction) replaces the
earlier one's effect, so the report in force counts, as when the state is rebuilt from the
reports in force. An outcome whose shipment is not in the state yet is kept and applied when
the shipment is added.

The package, one job a module (:class:`OnlineFeatureState` in :mod:`.state` is made of them):
:mod:`.storage` the timelines the state keeps, its shipment records, link-graph nodes and input
checks; :mod:`.bulk` filling an empty state from a whole history at once; :mod:`.update`
adding shipments, amendments and inspection reports; :mod:`.aggregates` the raw point-in-time
aggregates and the feature rows made of them; :mod:`.views` what an officer sees of a party.
"""

from features.catalog import CATEGORICAL_FEATURES, FEATURE_NAMES
from features.online.state import OnlineFeatureState

__all__ = ["CATEGORICAL_FEATURES", "FEATURE_NAMES", "OnlineFeatureState"]
