"""The ingest job: stream a customs export (CSV or Parquet) through a mapping into contract files.

Reads the source in chunks (bounded memory whatever the file size), applies
:func:`features.ingest.apply.ingest_chunk` to each, and writes, in the output directory:

* ``shipments.parquet`` - every accepted row, in contract form, then its ``attr.*`` columns;
* ``outcomes.parquet`` - the inspection results when the file holds the mapping's label column
  (an unlabelled file gets an empty one, so the directory is always complete);
* ``dataset.json`` - the attribute schema and what a positive label means
  (:class:`features.contracts.DatasetInfo`), read by training;
* ``quarantine.csv`` - every rejected source row with its row number, field and reason,
  including CSV rows with the wrong number of fields (the rest of the file is still read);
* ``blanked.csv`` - every optional value of an accepted row that was left blank, and why;
* ``summary.json`` - rows read / accepted / quarantined, counts per reason and per blanked field.

Files are written under temporary names and renamed only when the whole source was read, so an
unreadable file never leaves half an output that looks complete.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.contracts import attribute_column
from features.errors import CargoriskError
from features.ingest.apply import empty_outcomes, empty_shipments, ingest_chunk
from features.ingest.issues import (
    BLANKED_COLUMNS,
    QUARANTINE_COLUMNS,
    ROW_FIELD,
    SOURCE_PREFIX,
    reason_counts,
)
from features.ingest.mapping import Mapping
from features.tables import ContractDirWriter

BLOCK_BYTES = 16 << 20
"""CSV bytes parsed at a time: bounds memory and is the largest single row we accept."""
PARQUET_BATCH_ROWS = 100_000
_MAX_SHOWN = 200


class IngestError(CargoriskError):
    """The source or the mapping cannot be ingested at all (nothing was written)."""


@dataclass
class IngestSummary:
    """What one ingest run did.

    ``reasons`` counts quarantined source rows per "field: reason"; ``blanked`` counts accepted
    rows per "field: reason" whose optional value was left blank. ``label_column`` is the
    mapping's label column and ``labelled`` whether the file held it; ``absent_columns`` are
    columns named only in ``coalesce``/``when`` that the file lacks (read as blank)."""

    source: str
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    outcomes: int = 0
    labelled: bool = False
    label_column: str | None = None
    label: dict[str, str] = field(default_factory=dict)
    attributes: list[str] = field(default_factory=list)
    absent_columns: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    blanked: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def reject_share(self) -> float:
        return self.quarantined / self.rows_read if self.rows_read else 0.0

    def lines(self) -> list[str]:
        """The human summary printed by ``cargorisk ingest``."""
        out = [
            f"rows read     {self.rows_read:>10,}",
            f"accepted      {self.accepted:>10,}",
            f"quarantined   {self.quarantined:>10,}  ({self.reject_share:.2%})",
        ]
        if self.labelled:
            out.append(f"outcomes      {self.outcomes:>10,}")
        elif self.label_column is not None:
            out.append(f"no label column ({self.label_column}): unlabelled file")
        if self.label:
            out.append(f"label         {self.label['name']} (a positive: {self.label['positive']})")
        if self.attributes:
            out.append(f"attributes    {', '.join(self.attributes)}")
        if self.absent_columns:
            out.append(
                "not in the file, read as blank (coalesce/when): " + ", ".join(self.absent_columns)
            )
        if self.reasons:
            out.append("quarantined rows by reason:")
            out += [f"  {count:>8,}  {reason}" for reason, count in self.reasons.items()]
        if self.blanked:
            out.append("accepted rows with a value left blank (blanked.csv):")
            out += [f"  {count:>8,}  {reason}" for reason, count in self.blanked.items()]
        out += [f"{name:13} {path}" for name, path in self.outputs.items()]
        out.append(f"took {self.seconds:.1f} s")
        return out


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"PAR1"


def _csv_header(path: Path, delimiter: str, encoding: str) -> list[str]:
    with path.open("rb") as fh:
        first = fh.readline(1 << 20)
    try:
        line = first.decode(encoding)
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{path}: the header is not valid {encoding} text (byte {exc.start}); "
            "pass the file's --encoding (e.g. cp949 for Korean exports, latin-1)"
        ) from exc
    except LookupError as exc:
        raise IngestError(f"unknown --encoding {encoding!r}") from exc
    try:
        header = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter), None)
    except csv.Error as exc:
        raise IngestError(f"{path}: cannot read the header ({exc})") from exc
    if not header or all(not h.strip() for h in header):
        raise IngestError(f"{path}: the first line (the header) is empty")
    header = [h.removeprefix("\ufeff").strip() for h in header]
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise IngestError(f"{path}: column {name!r} appears twice in the header")
        seen.add(name)
    return header


def _check_columns(path: Path, header: list[str], mapping: Mapping, delimiter: str) -> None:
    missing = mapping.missing_columns(header)
    if not missing:
        return
    hint = ""
    if len(header) == 1:
        others = [d for d in (";", "\t", "|", ",") if d != delimiter and d in header[0]]
        if others:
            hint = f"; the header has one column: is the delimiter {others[0]!r}? (--delimiter)"
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    raise IngestError(f"{path}: source column(s) named in the mapping are missing: {shown}{hint}")


def _arrow_message(exc: Exception, path: Path, encoding: str, rows: int) -> str:
    text = " ".join(str(exc).split())
    if "UTF8" in text or "UTF-8" in text or "decode" in text.lower():
        return (
            f"{path}: bytes that are not valid {encoding} text (at data row {rows + 1:,} or "
            "later); pass the file's --encoding (e.g. cp949 for Korean exports, latin-1)"
        )
    if "Could not skip initial" in text:
        return f"{path}: the file has a header but no data rows"
    if "straddle" in text:
        return f"{path}: a row after data row {rows:,} is larger than {BLOCK_BYTES >> 20} MB"
    return f"{path}: cannot read after data row {rows:,} ({text[:200]})"


class _RaggedRows:
    """CSV rows whose number of fields differs from the header's.

    Arrow's reader calls this for each such row (``ParseOptions.invalid_row_handler``) and skips
    it, so the rest of the file is still read; the row goes to the quarantine with its number.
    The reader runs single-threaded, where Arrow knows each row's number (``InvalidRow.number``
    counts records from the header as 1, blank lines not counted: the header is record 1, so a
    data row's number is ``number - 1``, the same numbering as ``source_row``). With those
    numbers the accepted rows after a skipped one keep their true source row numbers too.
    """

    def __init__(self) -> None:
        self.pending: list[tuple[int, int, int, str]] = []
        self._numbers: list[int] = []

    def __call__(self, row: pacsv.InvalidRow) -> str:
        if row.number is None:  # only a multi-threaded reader loses it; ours is single-threaded
            return "error"
        text = row.text if len(row.text) <= _MAX_SHOWN else row.text[:_MAX_SHOWN] + "…"
        self.pending.append((row.number - 1, row.expected_columns, row.actual_columns, text))
        self._numbers.append(row.number - 1)
        return "skip"

    def take(self) -> list[tuple[int, int, int, str]]:
        """The rows set aside since the last call."""
        rows, self.pending = self.pending, []
        return rows

    def source_rows(self, first_kept: int, count: int) -> np.ndarray:
        """Source row numbers of accepted-by-the-parser rows ``first_kept`` .. ``+count-1``
        (1-based, counting only rows the parser kept): each is shifted past the set-aside rows
        before it."""
        kept = np.arange(first_kept, first_kept + count, dtype="int64")
        if not self._numbers:
            return kept
        skipped = np.sort(np.asarray(self._numbers, dtype="int64"))
        kept_before = skipped - 1 - np.arange(len(skipped))  # kept rows before each skipped one
        return kept + np.searchsorted(kept_before, kept, side="left")

    @staticmethod
    def quarantine(rows: list[tuple[int, int, int, str]]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "source_row": [r[0] for r in rows],
                "field": ROW_FIELD,
                "reason": [f"has {r[2]} fields where the header has {r[1]}" for r in rows],
                "value": [r[3] for r in rows],
            }
        )


@dataclass
class _Source:
    """An opened source: its header and its chunks; ``ragged`` collects malformed CSV rows."""

    header: list[str]
    chunks: Iterator[pd.DataFrame]
    ragged: _RaggedRows | None = None


def _csv_source(path: Path, mapping: Mapping, delimiter: str, encoding: str) -> _Source:
    header = _csv_header(path, delimiter, encoding)
    _check_columns(path, header, mapping, delimiter)
    ragged = _RaggedRows()
    try:
        reader = _open_csv(path, header, delimiter, encoding, ragged)
    except pa.ArrowException as exc:
        raise IngestError(_arrow_message(exc, path, encoding, 0)) from exc
    return _Source(header, (batch.to_pandas() for batch in reader), ragged)


def _open_csv(
    path: Path, header: list[str], delimiter: str, encoding: str, ragged: _RaggedRows
) -> Any:
    # Arrow reads UTF-8 natively; any other name makes it transcode through Python codecs
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf8"
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            block_size=BLOCK_BYTES,
            encoding=encoding,
            skip_rows=1,
            column_names=header,
            use_threads=False,  # single-threaded: malformed rows keep their row numbers
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter, newlines_in_values=True, invalid_row_handler=ragged
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
        ),
    )


def _parquet_source(path: Path, mapping: Mapping) -> _Source:
    try:
        source = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{path}: not a readable Parquet file ({exc})") from exc
    header = source.schema_arrow.names
    _check_columns(path, header, mapping, ",")
    batches = source.iter_batches(batch_size=PARQUET_BATCH_ROWS)
    return _Source(header, (b.to_pandas() for b in batches))


def _open_source(path: Path, mapping: Mapping, delimiter: str, encoding: str) -> _Source:
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if not path.is_file():
        raise IngestError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty")
    if len(delimiter) != 1:
        raise IngestError(f"--delimiter must be one character, got {delimiter!r}")
    if _is_parquet(path):
        return _parquet_source(path, mapping)
    return _csv_source(path, mapping, delimiter, encoding)


def _shipments_schema(mapping: Mapping) -> pa.Schema:
    """The Parquet schema of shipments: the contract's columns, then one ``attr.*`` column per
    attribute (text for categorical, float64 for numeric) - typed even when all are blank."""
    schema = pa.Schema.from_pandas(empty_shipments(), preserve_index=False)
    for name, spec in mapping.attributes.items():
        kind = pa.float64() if spec.kind == "numeric" else pa.string()
        schema = schema.append(pa.field(attribute_column(name), kind))
    return schema


class _Outputs:
    """The contract tables and ``dataset.json`` through :class:`features.tables.ContractDirWriter`,
    the quarantine and blanked CSV files beside them, all under temporary names made final by
    :meth:`commit`."""

    def __init__(self, out_dir: Path, mapping: Mapping, source_columns: list[str]) -> None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IngestError(
                f"--out {out_dir}: cannot create the directory ({exc.strerror})"
            ) from exc
        if not os.access(out_dir, os.W_OK):
            raise IngestError(f"--out {out_dir}: the directory is not writable")
        names = {"quarantine": "quarantine.csv", "blanked": "blanked.csv"}
        self.final = {k: out_dir / name for k, name in names.items()}
        self.tmp = {k: p.with_name(f".{p.name}.partial") for k, p in self.final.items()}
        self.tables = ContractDirWriter(
            out_dir,
            {
                "shipments": _shipments_schema(mapping),
                "outcomes": pa.Schema.from_pandas(empty_outcomes(), preserve_index=False),
            },
            mapping.dataset_info,
        )
        self.quarantine_columns = list(QUARANTINE_COLUMNS) + [
            f"{SOURCE_PREFIX}{c}" for c in source_columns
        ]
        pd.DataFrame(columns=self.quarantine_columns).to_csv(self.tmp["quarantine"], index=False)
        pd.DataFrame(columns=list(BLANKED_COLUMNS)).to_csv(self.tmp["blanked"], index=False)

    def write(self, name: str, frame: pd.DataFrame) -> None:
        self.tables.write(name, frame)

    def append_csv(self, name: str, frame: pd.DataFrame) -> None:
        if len(frame):
            columns = self.quarantine_columns if name == "quarantine" else list(BLANKED_COLUMNS)
            frame = frame.reindex(columns=columns)
            frame.to_csv(self.tmp[name], mode="a", header=False, index=False)

    def commit(self) -> dict[str, str]:
        final = self.tables.commit()
        for key, tmp in self.tmp.items():
            tmp.replace(self.final[key])
        return {k: str(p) for k, p in {**final, **self.final}.items()}

    def abandon(self) -> None:
        self.tables.abandon()
        for tmp in self.tmp.values():
            tmp.unlink(missing_ok=True)


def delimiter_option(text: str) -> str:
    """The ``--delimiter`` value as typed: ``\\t``, ``tab`` or ``TAB`` mean a tab."""
    return "\t" if text in ("\\t", "tab", "TAB") else text


def run_ingest(
    source: Path,
    mapping: Mapping,
    out_dir: Path,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> IngestSummary:
    """Ingest ``source`` into ``out_dir`` as ``mapping`` says; returns the run's summary.

    Raises :class:`IngestError` (nothing written) when the source cannot be read at all: missing,
    empty or header-only file, missing source columns, undecodable bytes. A CSV row with the
    wrong number of fields does not stop the run: it is quarantined with its row number.
    """
    started = time.perf_counter()
    source, out_dir = Path(source), Path(out_dir)
    opened = _open_source(source, mapping, delimiter, encoding)
    info = mapping.dataset_info
    summary = IngestSummary(
        source=str(source),
        labelled=mapping.is_labelled(opened.header),
        label_column=mapping.label_column,
        label=info.label.model_dump() if mapping.label is not None else {},
        attributes=list(info.attributes),
        absent_columns=mapping.absent_columns(opened.header),
    )
    outputs = _Outputs(out_dir, mapping, opened.header)
    seen: set[str] = set()
    reasons: pd.Series = pd.Series(dtype="int64")
    blanked: pd.Series = pd.Series(dtype="int64")
    parsed = 0  # rows the CSV parser kept (every row, for Parquet)
    try:
        try:
            for chunk in opened.chunks:
                ragged = opened.ragged.take() if opened.ragged else []
                rows = (
                    opened.ragged.source_rows(parsed + 1, len(chunk))
                    if opened.ragged
                    else np.arange(parsed + 1, parsed + 1 + len(chunk))
                )
                parsed += len(chunk)
                result = ingest_chunk(chunk, mapping, source_rows=rows, seen_ids=seen)
                outputs.write("shipments", result.shipments)
                outputs.write("outcomes", result.outcomes)
                quarantine = result.quarantine
                if ragged:
                    quarantine = pd.concat([_RaggedRows.quarantine(ragged), quarantine])
                outputs.append_csv("quarantine", quarantine)
                outputs.append_csv("blanked", result.blanked)
                seen.update(result.shipments["shipment_id"])
                summary.rows_read += result.rows + len(ragged)
                summary.accepted += len(result.shipments)
                summary.quarantined += result.rejected + len(ragged)
                summary.outcomes += len(result.outcomes)
                reasons = reasons.add(reason_counts(quarantine), fill_value=0)
                blanked = blanked.add(reason_counts(result.blanked), fill_value=0)
            ragged = opened.ragged.take() if opened.ragged else []
            if ragged:  # malformed rows after the last batch
                quarantine = _RaggedRows.quarantine(ragged)
                outputs.append_csv("quarantine", quarantine)
                summary.rows_read += len(ragged)
                summary.quarantined += len(ragged)
                reasons = reasons.add(reason_counts(quarantine), fill_value=0)
        except pa.ArrowException as exc:
            raise IngestError(_arrow_message(exc, source, encoding, summary.rows_read)) from exc
        except UnicodeDecodeError as exc:
            raise IngestError(_arrow_message(exc, source, encoding, summary.rows_read)) from exc
        if summary.rows_read == 0:
            raise IngestError(f"{source}: the file has a header but no data rows")
        summary.outputs = outputs.commit()
    except BaseException:
        outputs.abandon()
        raise
    summary.reasons = _counts(reasons)
    summary.blanked = _counts(blanked)
    summary.seconds = time.perf_counter() - started
    summary_path = out_dir / "summary.json"
    summary.outputs["summary"] = str(summary_path)
    summary_path.write_text(json.dumps(_jsonable(summary), indent=2), encoding="utf-8")
    return summary


def _counts(counts: pd.Series) -> dict[str, int]:
    ordered = counts.sort_values(ascending=False, kind="stable")
    return {str(k): int(v) for k, v in ordered.items()}


def _jsonable(summary: IngestSummary) -> dict[str, Any]:
    return {**asdict(summary), "reject_share": summary.reject_share}
