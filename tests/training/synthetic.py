"""Small synthetic feature frames for unit tests of fitting, calibration and the registry
(independent of the feature pipelines): a numeric risk signal, a noise column and a categorical
route whose value ``risky`` multiplies the odds."""

from __future__ import annotations

import numpy as np
import pandas as pd

NAMES = ["signal", "noise", "route"]
CATEGORICAL = ["route"]


def frame(n: int = 6000, days: int = 30, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    declared = pd.Timestamp("2026-01-01") + pd.to_timedelta(
        np.sort(rng.integers(0, days * 86_400, n)), unit="s"
    )
    signal = rng.normal(size=n)
    route = rng.choice(["safe", "usual", "risky"], size=n, p=[0.5, 0.4, 0.1])
    logit = -3.0 + 1.5 * signal + 2.0 * (route == "risky")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    features = pd.DataFrame(
        {
            "shipment_id": [f"S{i:06d}" for i in range(n)],
            "declared_at": declared,
            "signal": signal,
            "noise": rng.normal(size=n),
            "route": pd.Series(route).where(rng.random(n) > 0.02, None),
        }
    )
    return features, y
