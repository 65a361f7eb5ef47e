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


def _quiet(_msg: str) -> None:
    pass


@contextmanager
def _step(progress: Progress, what: str):
    progress(f"{what} ...")
    start = time.perf_counter()
    yield
    progress(f"{what}: done in {time.perf_counter() - start:.1f} s")


def _plural(noun: str) -> str:
    return noun if noun.endswith("s") else noun + "s"


def _period_mask(dataset: Dataset, start: str | None, end: str | None) -> np.ndarray:
    times = dataset.declared_at
    mask = np.ones(len(times), dtype=bool)
    if start:
        mask &= (times >= pd.Timestamp(start)).to_numpy()
    if end:
        mask &= (times <= pd.Timestamp(end)).to_numpy()
    if not mask.any():
        raise CargoriskError(f"no shipment declared between {start or 'start'} and {end or 'end'}")
    return mask
