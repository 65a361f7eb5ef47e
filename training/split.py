"""Temporal train / validation / test split by declaration day.

A targeting model is used on shipments that arrive *after* it was trained, so it is judged the
same way: train on the oldest days, stop early and calibrate on the following days
(validation), and measure on the most recent days (test). Boundaries fall on whole days
(midnight UTC) and every shipment declared on or after a boundary belongs to the later part,
so no training row is ever declared after a validation or test row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import CargoriskError


@dataclass(frozen=True)
class TemporalSplit:
    """Boundaries of the three periods and a boolean mask per period over the rows given."""

    start: pd.Timestamp
    valid_from: pd.Timestamp
    test_from: pd.Timestamp
    end: pd.Timestamp
    """Last declaration time in the data (inclusive)."""
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    def period(self, name: str) -> dict[str, str]:
        """``{"from": ISO, "to": ISO}`` of ``train`` / ``valid`` / ``test`` (``to`` exclusive
        except for test, whose ``to`` is the last declaration time)."""
        bounds = {
            "train": (self.start, self.valid_from),
            "valid": (self.valid_from, self.test_from),
            "test": (self.test_from, self.end),
        }[name]
        return {"from": bounds[0].isoformat(), "to": bounds[1].isoformat()}


def _day(value: str | pd.Timestamp, what: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise CargoriskError(f"{what}: {value!r} is not a date (use YYYY-MM-DD)") from exc
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.normalize()


def temporal_split(
    declared_at: pd.Series,
    *,
    valid_from: str | pd.Timestamp | None = None,
    test_from: str | pd.Timestamp | None = None,
    test_days: int | None = None,
    valid_days: int | None = None,
    test_share: float = 0.2,
    valid_share: float = 0.15,
    span: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> TemporalSplit:
    """Split rows by their declaration time.

    Either give both dates (``valid_from`` < ``test_from``), or a number of days for the test
    (and optionally the validation) period counted back from the last declaration day, or
    nothing: then the last ``test_share`` of the calendar days are the test period and the
    ``valid_share`` before them the validation period. Raises :class:`CargoriskError` when the
    data cannot hold three non-empty periods.

    ``span``: the first and last declaration time of the whole history when the rows given
    are only some of it (training reads only the rows it needs,
    :func:`training.dataset.build_dataset_from_parquet`): the boundaries are those of the
    whole history, the masks are over the rows given.
    """
    times = pd.to_datetime(declared_at)
    if len(times) == 0:
        raise CargoriskError("no shipments to split (declared_at is empty)")
    if times.isna().any():
        raise CargoriskError("declared_at has missing values; every shipment needs a time")
    start, end = span if span is not None else (times.min(), times.max())
    v, t = split_bounds(
        start,
        end,
        valid_from=valid_from,
        test_from=test_from,
        test_days=test_days,
        valid_days=valid_days,
        test_share=test_share,
        valid_share=valid_share,
    )
    values = times.to_numpy()
    train = values < v.to_datetime64()
    test = values >= t.to_datetime64()
    valid = ~train & ~test
    for name, mask in (("train", train), ("validation", valid), ("test", test)):
        if not mask.any():
            raise CargoriskError(f"the {name} period holds no shipments; move the boundaries")
    return TemporalSplit(
        start=start, valid_from=v, test_from=t, end=end, train=train, valid=valid, test=test
    )


def split_bounds(
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    valid_from: str | pd.Timestamp | None = None,
    test_from: str | pd.Timestamp | None = None,
    test_days: int | None = None,
    valid_days: int | None = None,
    test_share: float = 0.2,
    valid_share: float = 0.15,
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``(valid_from, test_from)`` of :func:`temporal_split` for data declared from ``start``
    to ``end``: known before any row is read (which rows training needs depends on them)."""
    first_day, last_day = start.normalize(), end.normalize()
    n_days = (last_day - first_day).days + 1
    if n_days < 3:
        raise CargoriskError(
            f"the data covers {n_days} day(s) of declarations ({first_day.date()}"
            f" to {last_day.date()}); a temporal split needs at least 3 days "
            "(train, validation, test)"
        )
    if (valid_from is None) != (test_from is None):
        raise CargoriskError("give both --valid-from and --test-from, or neither")
    if valid_from is not None and test_days is not None:
        raise CargoriskError("give either --valid-from/--test-from or --test-days, not both")

    if valid_from is not None:
        v, t = _day(valid_from, "valid_from"), _day(test_from, "test_from")
    else:
        if test_days is None:
            test_days = max(1, math.floor(n_days * test_share))
            valid_days = valid_days or max(1, math.floor(n_days * valid_share))
        if test_days < 1:
            raise CargoriskError(f"test_days must be at least 1, got {test_days}")
        valid_days = valid_days or test_days
        t = last_day - pd.Timedelta(days=test_days - 1)
        v = t - pd.Timedelta(days=valid_days)
    if not first_day < v < t <= last_day:
        raise CargoriskError(
            f"split boundaries must satisfy first day {first_day.date()} < valid_from "
            f"{v.date()} < test_from {t.date()} <= last day {last_day.date()}"
        )
    return v, t
