"""The knobs of the simulated customs world, validated once.

Every number that shapes the world (size, period, base rate of smuggling, the mix of smuggling
schemes, drift, inspection capacity) lives in :class:`SimConfig`; everything else in the
simulator is derived from it and from the seed, so a config plus a seed *is* the world.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import pandas as pd

from features.errors import CargoriskError

MODE_NAMES: Final = ("sea", "air", "express")
"""Mode codes used inside the simulator: 0 = sea, 1 = air, 2 = express (contract names)."""

SCHEMES: Final = (
    "front_company",
    "hijacked_identity",
    "rip_on_rip_off",
    "express_network",
    "borrowed_code",
    "value_anomaly",
    "route_displacement",
)
"""Smuggling schemes, in the order of their numeric code in the simulator (see docs)."""

DEFAULT_SCHEME_MIX: Final = {
    "front_company": 0.11,
    "hijacked_identity": 0.08,
    "rip_on_rip_off": 0.11,
    "express_network": 0.34,
    "borrowed_code": 0.16,
    "value_anomaly": 0.10,
    "route_displacement": 0.10,
}
"""Share of illicit shipments each scheme produces at default settings (sums to 1)."""

DEFAULT_MODE_MIX: Final = {"express": 0.70, "sea": 0.18, "air": 0.12}
"""Share of shipments by transport mode (count), before smuggling is added."""

PARTY_HISTORIES: Final = ("scheme", "random")
"""Who ships the illicit goods. ``scheme``: each scheme's own parties (front companies, hijacked
identities, rings of senders and recipients), so a party's history is a risk signal.
``random``: illicit shipments use parties drawn exactly like those of legitimate shipments,
so no party is persistently riskier than another (see :mod:`simulator.random_history`)."""


class SimConfigError(CargoriskError):
    """A simulator knob has a value the simulator cannot honour."""


@dataclass(frozen=True)
class SimConfig:
    """Size, period and behaviour of one simulated world.

    ``end`` is the instant the period ends ("today"): shipments are declared in
    ``[end - days, end)``; inspections and results after ``end`` are not yet known.
    """

    days: int = 120
    shipments_per_day: int = 3000
    seed: int = 42
    end: pd.Timestamp = field(default_factory=lambda: default_end())
    prevalence: float = 0.004
    scheme_mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SCHEME_MIX))
    mode_mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MODE_MIX))
    drift: bool = True
    drift_at: float = 0.5
    inspection_capacity: float = 0.03
    random_share: float = 0.10
    party_history: str = "scheme"
    messy: bool = False
    """Make the world look like a real customs export (blank seller ids, rail/road/post modes,
    bulk cargo, calendar-day dates, the service's own attributes; :mod:`simulator.messy`)."""

    def __post_init__(self) -> None:
        _check(isinstance(self.days, int) and 7 <= self.days <= 3660, "days", "7..3660")
        _check(
            isinstance(self.shipments_per_day, int) and 50 <= self.shipments_per_day <= 200_000,
            "shipments_per_day",
            "50..200000",
        )
        _check(isinstance(self.seed, int) and 0 <= self.seed < 2**63, "seed", "0..2**63-1")
        _check(_finite(self.prevalence) and 0 <= self.prevalence <= 0.05, "prevalence", "0..0.05")
        _check(_finite(self.drift_at) and 0.05 <= self.drift_at <= 0.95, "drift_at", "0.05..0.95")
        _check(
            _finite(self.inspection_capacity) and 0.001 <= self.inspection_capacity <= 0.5,
            "inspection_capacity",
            "0.001..0.5",
        )
        _check(_finite(self.random_share) and 0 <= self.random_share <= 1, "random_share", "0..1")
        if self.party_history not in PARTY_HISTORIES:
            raise SimConfigError(
                f"party_history: expected one of {', '.join(PARTY_HISTORIES)}, "
                f"got {self.party_history!r}"
            )
        _check(isinstance(self.messy, bool), "messy", "True or False")
        unknown = set(self.scheme_mix) - set(SCHEMES)
        if unknown:
            raise SimConfigError(
                f"scheme_mix: unknown scheme(s) {sorted(unknown)}; known: {', '.join(SCHEMES)}"
            )
        for name, share in self.scheme_mix.items():
            _check(_finite(share) and share >= 0, f"scheme_mix[{name}]", "a share >= 0")
        if self.prevalence > 0 and sum(self.scheme_mix.values()) <= 0:
            raise SimConfigError("scheme_mix: at least one scheme needs a positive share")
        if set(self.mode_mix) != set(MODE_NAMES):
            raise SimConfigError(f"mode_mix: give a share for each of {', '.join(MODE_NAMES)}")
        for name, share in self.mode_mix.items():
            _check(_finite(share) and share > 0, f"mode_mix[{name}]", "a share > 0")
        end = pd.Timestamp(self.end)
        if end.tzinfo is not None:
            end = end.tz_convert("UTC").tz_localize(None)
        _check(pd.Timestamp("2000-01-01") <= end <= pd.Timestamp("2090-01-01"), "end", "2000..2090")
        object.__setattr__(self, "end", end)

    @property
    def start(self) -> pd.Timestamp:
        """First instant of the period."""
        return self.end - pd.Timedelta(days=self.days)

    def scheme_shares(self) -> dict[str, float]:
        """Normalised share of illicit shipments per scheme (every scheme listed, zeros kept)."""
        total = sum(self.scheme_mix.get(s, 0.0) for s in SCHEMES)
        if total <= 0:
            return dict.fromkeys(SCHEMES, 0.0)
        return {s: self.scheme_mix.get(s, 0.0) / total for s in SCHEMES}

    def mode_shares(self) -> dict[str, float]:
        total = sum(self.mode_mix.values())
        return {m: self.mode_mix[m] / total for m in MODE_NAMES}


def default_end() -> pd.Timestamp:
    """Start of the current UTC day: the default "today" on which the period ends.

    Using midnight (not the current second) keeps two runs on the same day identical.
    """
    return pd.Timestamp(dt.datetime.now(dt.UTC).date())


def parse_scheme_mix(text: str | None) -> dict[str, float]:
    """Parse ``"express_network=0.4,rip_on_rip_off=0"`` into a full scheme mix.

    Schemes not named keep their default share; a share of 0 switches a scheme off.
    """
    mix = dict(DEFAULT_SCHEME_MIX)
    if not text:
        return mix
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep:
            raise SimConfigError(f"scheme_mix: expected NAME=SHARE, got {part!r}")
        if name not in SCHEMES:
            raise SimConfigError(
                f"scheme_mix: unknown scheme {name!r}; known: {', '.join(SCHEMES)}"
            )
        try:
            mix[name] = float(value)
        except ValueError:
            raise SimConfigError(
                f"scheme_mix: share of {name} is not a number: {value!r}"
            ) from None
    return mix


def parse_mode_mix(text: str | None) -> dict[str, float]:
    """Parse ``"express=0.7,sea=0.18,air=0.12"``; modes not named keep their default."""
    mix = dict(DEFAULT_MODE_MIX)
    if not text:
        return mix
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name.strip() not in MODE_NAMES:
            raise SimConfigError(f"mode_mix: expected MODE=SHARE with MODE in {MODE_NAMES}")
        try:
            mix[name.strip()] = float(value)
        except ValueError:
            raise SimConfigError(f"mode_mix: share of {name} is not a number: {value!r}") from None
    return mix


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _check(ok: bool, name: str, allowed: str) -> None:
    if not ok:
        raise SimConfigError(f"{name}: value out of range (allowed {allowed})")
