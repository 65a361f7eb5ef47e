"""Online features: the same definitions as the offline engine, evaluated over the aggregates
per key that the store keeps as of now (issue 15). Nothing here holds the history.

:mod:`.rows` the keys a manifest needs, its features from their aggregate rows (through the
snapshot's one function, :func:`features.snapshot.tables_raw`), and the deltas every stored
declaration, amendment, inspection report and correction adds to the rows (the link graph as a
union-find table); :class:`.rows.MemoryRows` the same arithmetic on dicts. :mod:`.replay` a
history replayed event by event over those rows the way the service receives it (the parity
tests' online side). :mod:`.views` how an officer's views walk the link graph. The store applies
the deltas in the transaction that stores each event (:mod:`serving.store.online`).
"""

from features.catalog import CATEGORICAL_FEATURES, FEATURE_NAMES

__all__ = ["CATEGORICAL_FEATURES", "FEATURE_NAMES"]
