"""The ingest job: stream a customs export (CSV or Parquet) through a mapping into contract files.

Reads the source in chunks (bounded memory whatever the file size), applies
:func:`features.ingest.ingest_chunk` to each, and writes, in the output directory:

* ``shipments.parquet`` - every accepted row, in contract form;
* ``outcomes.parquet`` - the inspection results, when the mapping names a label column;
* ``quarantine.csv`` - every rejected source row with its row number, field and reason;
* ``summary.json`` - rows read / accepted / quarantined, and the count per reason.

Files are written under temporary names and renamed only when the whole source was read, so an
unreadable file never leaves half an output that looks complete.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pydantic
import yaml

from features.errors import CargoriskError
from features.ingest import (
    QUARANTINE_COLUMNS,
    SOURCE_PREFIX,
    Mapping,
    empty_outcomes,
    empty_shipments,
    ingest_chunk,
    load_mapping,
    reason_counts,
)

BLOCK_BYTES = 16 << 20
"""CSV bytes parsed at a time: bounds memory and is the largest single row we accept."""
PARQUET_BATCH_ROWS = 100_000


class IngestError(CargoriskError):
    """The source or the mapping cannot be ingested at all (nothing was written)."""


@dataclass
class IngestSummary:
    """What one ingest run did; ``reasons`` counts quarantined source rows per field: reason."""

    source: str
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    outcomes: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
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
        if "outcomes" in self.outputs:
            out.append(f"outcomes      {self.outcomes:>10,}")
        if self.reasons:
            out.append("quarantined rows by reason:")
            out += [f"  {count:>8,}  {reason}" for reason, count in self.reasons.items()]
        out += [f"{name:13} {path}" for name, path in self.outputs.items()]
        out.append(f"took {self.seconds:.1f} s")
        return out


def read_mapping(path: Path) -> Mapping:
    """Load and validate a mapping YAML; any problem is one :class:`IngestError` line."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise IngestError(f"mapping {path}: cannot read ({exc.strerror})") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise IngestError(f"mapping {path}: not valid YAML ({first})") from exc
    try:
        return load_mapping(data)
    except pydantic.ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"] if p not in ("fields",))
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "is not a known mapping option"
            problems.append(f"{where}: {message}" if where else message)
        raise IngestError(f"mapping {path}: " + "; ".join(problems)) from exc


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
    missing = [c for c in mapping.source_columns if c not in header]
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
    found = re.search(r"Expected (\d+) columns, got (\d+): (.*)", text)
    if found:
        expected, got, row = found.groups()
        shown = row if len(row) <= 60 else row[:60] + "…"
        return (
            f"{path}: a row has {got} fields where the header has {expected} ({shown!r}) - "
            "a wrong --delimiter or a field with an unquoted delimiter or quote"
        )
    if "Could not skip initial" in text:
        return f"{path}: the file has a header but no data rows"
    if "straddle" in text:
        return f"{path}: a row after data row {rows:,} is larger than {BLOCK_BYTES >> 20} MB"
    return f"{path}: cannot read after data row {rows:,} ({text[:200]})"


def _csv_chunks(
    path: Path, mapping: Mapping, delimiter: str, encoding: str
) -> Iterator[pd.DataFrame]:
    header = _csv_header(path, delimiter, encoding)
    _check_columns(path, header, mapping, delimiter)
    try:
        reader = _open_csv(path, header, delimiter, encoding)
    except pa.ArrowException as exc:
        raise IngestError(_arrow_message(exc, path, encoding, 0)) from exc
    return (batch.to_pandas() for batch in reader)


def _open_csv(path: Path, header: list[str], delimiter: str, encoding: str) -> Any:
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
            use_threads=True,
        ),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
        ),
    )


def _parquet_chunks(path: Path, mapping: Mapping) -> Iterator[pd.DataFrame]:
    try:
        source = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{path}: not a readable Parquet file ({exc})") from exc
    header = source.schema_arrow.names
    _check_columns(path, header, mapping, ",")
    return (b.to_pandas() for b in source.iter_batches(batch_size=PARQUET_BATCH_ROWS))


def _source_chunks(
    path: Path, mapping: Mapping, delimiter: str, encoding: str
) -> Iterator[pd.DataFrame]:
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if not path.is_file():
        raise IngestError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty")
    if len(delimiter) != 1:
        raise IngestError(f"--delimiter must be one character, got {delimiter!r}")
    if _is_parquet(path):
        return _parquet_chunks(path, mapping)
    return _csv_chunks(path, mapping, delimiter, encoding)


class _Outputs:
    """Output files under temporary names, made final by :meth:`commit`."""

    def __init__(self, out_dir: Path, with_outcomes: bool) -> None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IngestError(
                f"--out {out_dir}: cannot create the directory ({exc.strerror})"
            ) from exc
        if not os.access(out_dir, os.W_OK):
            raise IngestError(f"--out {out_dir}: the directory is not writable")
        self.final = {"shipments": out_dir / "shipments.parquet"}
        if with_outcomes:
            self.final["outcomes"] = out_dir / "outcomes.parquet"
        self.final["quarantine"] = out_dir / "quarantine.csv"
        self.tmp = {k: p.with_name(f".{p.name}.partial") for k, p in self.final.items()}
        self.schemas = {"shipments": pa.Schema.from_pandas(empty_shipments(), preserve_index=False)}
        if with_outcomes:
            self.schemas["outcomes"] = pa.Schema.from_pandas(empty_outcomes(), preserve_index=False)
        self.writers = {k: pq.ParquetWriter(self.tmp[k], s) for k, s in self.schemas.items()}
        self.quarantine_columns: list[str] | None = None

    def write(self, name: str, frame: pd.DataFrame) -> None:
        if len(frame):
            table = pa.Table.from_pandas(frame, schema=self.schemas[name], preserve_index=False)
            self.writers[name].write_table(table)

    def write_quarantine(self, frame: pd.DataFrame, source_columns: list[str]) -> None:
        first = self.quarantine_columns is None
        if first:
            self.quarantine_columns = list(QUARANTINE_COLUMNS) + [
                f"{SOURCE_PREFIX}{c}" for c in source_columns
            ]
        frame = frame.reindex(columns=self.quarantine_columns)
        frame.to_csv(self.tmp["quarantine"], mode="w" if first else "a", header=first, index=False)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def commit(self) -> dict[str, str]:
        self.close()
        for key, tmp in self.tmp.items():
            tmp.replace(self.final[key])
        return {k: str(p) for k, p in self.final.items()}

    def abandon(self) -> None:
        self.close()
        for tmp in self.tmp.values():
            tmp.unlink(missing_ok=True)


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
    empty or header-only file, missing source columns, undecodable bytes, a malformed row.
    """
    started = time.perf_counter()
    source, out_dir = Path(source), Path(out_dir)
    summary = IngestSummary(source=str(source))
    chunks = _source_chunks(source, mapping, delimiter, encoding)
    outputs = _Outputs(out_dir, with_outcomes=mapping.outcomes is not None)
    seen: set[str] = set()
    reasons: pd.Series = pd.Series(dtype="int64")
    try:
        try:
            for chunk in chunks:
                result = ingest_chunk(
                    chunk, mapping, first_row=summary.rows_read + 1, seen_ids=seen
                )
                outputs.write("shipments", result.shipments)
                if mapping.outcomes is not None:
                    outputs.write("outcomes", result.outcomes)
                outputs.write_quarantine(result.quarantine, list(chunk.columns))
                seen.update(result.shipments["shipment_id"])
                summary.rows_read += result.rows
                summary.accepted += len(result.shipments)
                summary.quarantined += result.rejected
                summary.outcomes += len(result.outcomes)
                reasons = reasons.add(reason_counts(result.quarantine), fill_value=0)
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
    summary.reasons = {
        str(k): int(v) for k, v in reasons.sort_values(ascending=False, kind="stable").items()
    }
    summary.seconds = time.perf_counter() - started
    summary_path = out_dir / "summary.json"
    summary.outputs["summary"] = str(summary_path)
    summary_path.write_text(json.dumps(_jsonable(summary), indent=2), encoding="utf-8")
    return summary


def _jsonable(summary: IngestSummary) -> dict[str, Any]:
    return {**asdict(summary), "reject_share": summary.reject_share}
