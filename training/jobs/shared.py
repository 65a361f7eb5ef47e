"""What the jobs share: progress lines, timed steps, a declaration period as a mask."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import pandas as pd

from features.errors import CargoriskError
from training.dataset import Dataset

Progress = Callable[[str], None]


def quiet(_msg: str) -> None:
    """A :data:`Progress` that says nothing."""


@contextmanager
def timed_step(progress: Progress, what: str):
    """Say ``what`` starts, then how long it took."""
    progress(f"{what} ...")
    start = time.perf_counter()
    yield
    progress(f"{what}: done in {time.perf_counter() - start:.1f} s")


def period_mask(dataset: Dataset, start: str | None, end: str | None) -> np.ndarray:
    """The shipments of ``dataset`` declared between ``start`` and ``end`` (either open)."""
    times = dataset.declared_at
    mask = np.ones(len(times), dtype=bool)
    if start:
        mask &= (times >= pd.Timestamp(start)).to_numpy()
    if end:
        mask &= (times <= pd.Timestamp(end)).to_numpy()
    if not mask.any():
        raise CargoriskError(f"no shipment declared between {start or 'start'} and {end or 'end'}")
    return mask
