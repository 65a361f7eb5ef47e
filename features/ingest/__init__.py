"""Turning a customs export in its own column names into contract rows, one chunk at a time.

A customs service never sends data in our column names: a Korean import-declaration export calls
the declaration number ``DECL_NO``, codes the transport mode as ``10``/``40``/``50``, writes dates
as ``25/11/2026`` and weights in tonnes. A **mapping** says, for each contract field, where its
value comes from and how to read it; applying it to a chunk of source rows splits the chunk into
valid ``shipments`` (and ``outcomes``) rows, **quarantine** rows (what cannot be scored) and
**blanked** values (an optional value left blank and reported). Nothing is changed silently.

The rooms, each with one job:

* :mod:`features.ingest.mapping` - the mapping file: its schema (:class:`~.mapping.Mapping`,
  ``FieldMap``, ``AttributeMap``, ``OutcomeMap``, ``WhenRule``), its checks against the
  contract, and :func:`~.mapping.read_mapping`.
* :mod:`features.ingest.values` - reading one field's values from the source cells: ``when``
  rules, ``column``/``coalesce``/``constant``, value maps, numbers, units, dates and time zones,
  identifiers, ``default``.
* :mod:`features.ingest.issues` - the bookkeeping of what failed: pandera's failure report as
  readable reasons, quarantine and blanked rows, repeated ids.
* :mod:`features.ingest.apply` - :func:`~.apply.ingest_chunk`: one chunk through the mapping
  and the contract into a :class:`~.apply.ChunkResult`.

Everything here is pure (frames in, new frames out); reading files and writing Parquet is the
job of :mod:`cargorisk.ingestion`.
"""
