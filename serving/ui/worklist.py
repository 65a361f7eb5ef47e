"""The inspection plan of one day: shipments ranked by risk, the capacity cut line and the
random exploration picks.

Officers can open only a few % of the shipments of a day (``settings.capacity``). The plan
fills that capacity in two parts:

* **model picks** - the highest-scored shipments, down to the cut line;
* **exploration picks** - ``settings.exploration_share`` of the capacity drawn at random among
  the shipments *below* the cut line. Only inspected shipments ever get a label, so a model
  retrained only on its own picks learns only about what it already suspects; random picks
  give an unbiased sample of the rest of the traffic (new routes, new schemes) and let the
  service measure how many seizures the model misses.

The draw is deterministic per scope (day, mode, port of discharge): the list does not change on
reload and every officer of the team sees the same picks. These functions are pure: frames in,
new frames out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contracts import MODES, STREAM_OF_MODE, STREAMS
from features.errors import CargoriskError

STREAM_WORDS = {
    "sea": "sea (containers, bulk, inland waterway)",
    "air": "air cargo",
    "express": "express and post (parcels)",
    "land": "land (rail, road, pipelines)",
    "other": "other",
}
"""How the worklist names each stream (contracts.STREAMS): one team, one capacity."""

BANDS = ("high", "medium", "low")


class FilterError(CargoriskError):
    """A worklist filter the officer must fix; ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Filters:
    """What the officer asked to see. ``stream`` (or a single ``mode``) and ``port`` set the
    *scope* the capacity applies to (a team works one stream at one port); ``band``,
    ``transport`` and ``uninspected`` only hide rows of the plan."""

    day: dt.date | None = None
    stream: str = ""
    mode: str = ""
    port: str = ""
    transport: str = ""
    band: str = ""
    uninspected: bool = False

    @classmethod
    def from_query(cls, params) -> Filters:
        """Filters from the query string; a bad value raises :class:`FilterError`."""

        def text(name: str, limit: int = 64) -> str:
            value = (params.get(name) or "").strip()
            if len(value) > limit or any(ord(c) < 32 for c in value):
                raise FilterError(name, f"at most {limit} printable characters")
            return value

        day = None
        raw_day = text("day", 10)
        if raw_day:
            try:
                day = dt.date.fromisoformat(raw_day)
            except ValueError:
                raise FilterError("day", f"not a date (YYYY-MM-DD): {raw_day!r}") from None
        stream = text("stream")
        if stream and stream not in STREAMS:
            raise FilterError("stream", f"one of {', '.join(STREAMS)}")
        mode = text("mode")
        if mode and mode not in MODES:
            raise FilterError("mode", f"one of {', '.join(MODES)}")
        if stream and mode and STREAM_OF_MODE[mode] != stream:
            raise FilterError("mode", f"{mode} is not in the {stream} stream")
        band = text("band")
        if band and band not in BANDS:
            raise FilterError("band", f"one of {', '.join(BANDS)}")
        port = text("port").upper()
        if port and not (3 <= len(port) <= 5 and port.isalnum()):
            raise FilterError("port", "a port or airport code of 3-5 letters or digits")
        return cls(
            day=day,
            stream=stream,
            mode=mode,
            port=port,
            transport=text("transport"),
            band=band,
            uninspected=(params.get("uninspected") or "") in ("1", "on", "true"),
        )

    @property
    def scope_key(self) -> str:
        """The scope as text: the stream and/or mode the team works (a mode alone keeps the
        key it always had, so existing picks stay put)."""
        return f"{self.stream}:{self.mode}" if self.stream else self.mode

    @property
    def scope_words(self) -> str:
        """The scope as an officer reads it."""
        if self.mode:
            return self.mode
        return STREAM_WORDS[self.stream] if self.stream else "all streams"


@dataclass(frozen=True)
class PlanSummary:
    """The numbers behind the cut line of one scope."""

    scored: int
    unscored: int
    capacity: int
    model_picks: int
    random_picks: int
    capacity_share: float
    exploration_share: float
    pool: int = 0
    """Scored shipments below the cut line: what the random picks are drawn from."""

    @property
    def random_probability(self) -> float:
        """The chance each shipment below the cut line had of being a random pick (simple
        random sampling without replacement: picks / pool); 0 without a pool."""
        return self.random_picks / self.pool if self.pool else 0.0


def capacity_counts(n_scored: int, capacity: float, exploration_share: float) -> tuple[int, int]:
    """(model picks, random picks) for ``n_scored`` shipments: the capacity is
    ``ceil(capacity * n)`` inspections, of which ``round(exploration_share * capacity)`` are
    drawn at random."""
    total = math.ceil(capacity * n_scored - 1e-9) if n_scored else 0
    random_picks = min(math.floor(exploration_share * total + 0.5), total)
    return total - random_picks, random_picks


def exploration_seed(day: dt.date, mode: str, port: str, seed: int) -> int:
    """A stable random seed for one scope (same day, stream or mode and port -> same picks).
    ``mode`` is the scope key of :class:`Filters` (a mode, or ``stream:mode``)."""
    text = f"{day.isoformat()}|{mode}|{port}|{seed}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def scope(frame: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The shipments of the team's scope (stream or mode, port of discharge / arrival
    airport)."""
    keep = pd.Series(True, index=frame.index)
    if filters.stream:
        keep &= frame["mode"].map(STREAM_OF_MODE) == filters.stream
    if filters.mode:
        keep &= frame["mode"] == filters.mode
    if filters.port:
        keep &= frame["discharge_port"].fillna("").str.upper() == filters.port
    return frame.loc[keep]


def plan(
    frame: pd.DataFrame,
    *,
    capacity: float,
    exploration_share: float,
    seed: int,
) -> tuple[pd.DataFrame, PlanSummary]:
    """Rank the scored shipments of a scope and mark the inspection plan.

    Returns a new frame, riskiest first then unscored shipments, with ``rank`` (1 = riskiest;
    null when not scored) and ``pick`` (``"model"``, ``"random"`` or ``""``), and the summary.
    """
    scored = frame[frame["score"].notna()]
    unscored = frame[frame["score"].isna()]
    ranked = scored.sort_values(["score", "shipment_id"], ascending=[False, True], kind="stable")
    n_model, n_random = capacity_counts(len(ranked), capacity, exploration_share)
    ranks = np.arange(1, len(ranked) + 1)
    pick = np.where(ranks <= n_model, "model", "")
    below = ranked.iloc[n_model:]
    if n_random and len(below):
        rng = np.random.default_rng(seed)
        pool = np.sort(below["shipment_id"].astype(str).to_numpy())
        chosen = set(rng.choice(pool, size=min(n_random, len(pool)), replace=False).tolist())
        pick = np.where(ranked["shipment_id"].astype(str).isin(chosen).to_numpy(), "random", pick)
    ranked = ranked.assign(rank=pd.array(ranks, dtype="Int64"), pick=pick)
    rest = unscored.sort_values("shipment_id").assign(
        rank=pd.array([pd.NA] * len(unscored), dtype="Int64"), pick=""
    )
    out = (
        pd.concat([ranked, rest], ignore_index=True) if len(rest) else ranked.reset_index(drop=True)
    )
    summary = PlanSummary(
        scored=len(ranked),
        unscored=len(unscored),
        capacity=n_model + n_random,
        model_picks=n_model,
        random_picks=int((pick == "random").sum()),
        capacity_share=capacity,
        exploration_share=exploration_share,
        pool=len(below),
    )
    return out, summary


PICK_COLUMNS = ("shipment_id", "pick", "probability", "rank", "score", "model_version")
"""What is recorded of each pick of a plan (the store's ``exploration_picks``)."""


def picks(planned: pd.DataFrame, summary: PlanSummary) -> pd.DataFrame:
    """The picks of a plan with their selection probability: 1 for a model pick (the cut line
    takes it whatever the draw), ``random picks / pool`` for a random pick."""
    chosen = planned[planned["pick"] != ""]
    probability = np.where(chosen["pick"] == "model", 1.0, summary.random_probability)
    version = (
        chosen["model_version"]
        if "model_version" in chosen.columns
        else pd.Series(None, index=chosen.index, dtype=object)
    )
    return pd.DataFrame(
        {
            "shipment_id": chosen["shipment_id"].astype(str).to_numpy(),
            "pick": chosen["pick"].to_numpy(),
            "probability": probability.astype(float),
            "rank": chosen["rank"].astype(int).to_numpy(),
            "score": chosen["score"].astype(float).to_numpy(),
            "model_version": [None if pd.isna(v) else str(v) for v in version],
        },
        columns=list(PICK_COLUMNS),
    )


def view(planned: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The planned rows the officer wants to see (band, vessel/voyage/flight text, not yet
    inspected); the plan itself is unchanged."""
    keep = pd.Series(True, index=planned.index)
    if filters.band:
        keep &= planned["band"] == filters.band
    if filters.transport:
        needle = filters.transport.casefold()
        hay = (
            planned["vessel"].fillna("")
            + " "
            + planned["voyage"].fillna("")
            + " "
            + planned["flight"].fillna("")
        ).str.casefold()
        keep &= hay.str.contains(needle, regex=False)
    if filters.uninspected:
        keep &= planned["outcome"].isna()
    return planned.loc[keep]
