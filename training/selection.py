"""Which feature families a model keeps: backward elimination on the validation period.

A feature family (manifest, rates, history, change, network, attributes; see
``features.catalog.FAMILIES``) is kept only if it earns its place: it is dropped when taking it
away leaves validation no worse on *both* measures - precision at the inspection capacity among
labelled validation shipments and validation average precision
(:meth:`training.train.ValidScore.no_worse_than`). On data where, say, party history carries no
signal, its features only add noise and both measures say so; one hit more or less among a
few dozen validation positives (precision alone) does not decide.

The search is bounded, each step one LightGBM fit:

1. fit all families, then all families minus each one in turn (``1 + k`` fits for ``k``
   families). A family whose removal makes validation worse on either measure is kept.
2. The others are candidates for removal. Starting from all families, try removing them one
   after another, the one whose removal helped most first; a removal is taken when validation
   is not worse without the family (the first candidate's fit is already known from step 1).

At most ``2k`` fits (``k = 6``: 12), against ``2^k - 1`` for an exhaustive search. The
decision for each family and the two scores it rested on make the ablation table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from training.train import ValidScore

Evaluate = Callable[[tuple[str, ...]], ValidScore]


@dataclass(frozen=True)
class Decision:
    """One row of the ablation table: the family, the family set it was judged in, the
    validation score of that set with and without it, and whether it stays."""

    family: str
    judged_in: tuple[str, ...]
    with_family: ValidScore
    without_family: ValidScore
    kept: bool


@dataclass
class Selection:
    """The outcome of :func:`select_families`."""

    kept: tuple[str, ...]
    score: ValidScore
    """Validation score of the kept families together."""
    decisions: list[Decision]
    fits: list[tuple[tuple[str, ...], ValidScore]] = field(default_factory=list)
    """Every family set fitted, in order, with its validation score."""

    def as_dict(self, capacity: float) -> dict:
        """JSON-able form (the MLflow artifact ``family_selection.json``)."""

        def score(s: ValidScore) -> dict[str, float]:
            return {"precision_at_capacity": s.precision, "pr_auc": s.pr_auc}

        return {
            "capacity": capacity,
            "metric": "precision at capacity among labelled validation shipments and "
            "validation average precision: a family is dropped when validation is no worse "
            "on both without it",
            "kept": list(self.kept),
            "dropped": [d.family for d in self.decisions if not d.kept],
            "score": score(self.score),
            "decisions": [
                {
                    "family": d.family,
                    "judged_in": list(d.judged_in),
                    "with": score(d.with_family),
                    "without": score(d.without_family),
                    "kept": d.kept,
                }
                for d in self.decisions
            ],
            "fits": [{"families": list(f), **score(s)} for f, s in self.fits],
        }

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(family, with, without, kept?) for the console and the markdown table."""

        def fmt(s: ValidScore) -> str:
            if s.precision != s.precision:
                return "-"
            return f"{s.precision:.4f} / {s.pr_auc:.4f}"

        return [
            (
                d.family,
                fmt(d.with_family),
                fmt(d.without_family),
                "kept" if d.kept else "dropped",
            )
            for d in self.decisions
        ]

    def markdown(self, capacity: float) -> str:
        head = f"precision@{capacity:.0%} / PR-AUC"
        lines = [
            f"| family | with ({head}) | without ({head}) | decision |",
            "|---|---|---|---|",
            *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in self.rows()),
        ]
        return (
            "Validation period; a family is dropped only when validation is no worse without it "
            "on both measures.\n\n"
            + "\n".join(lines)
            + f"\n\nKept: {', '.join(self.kept)}. Fits: {len(self.fits)}.\n"
        )


def select_families(
    families: Sequence[str],
    evaluate: Evaluate,
    *,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Selection:
    """Backward elimination over ``families`` (in the order given; at least one is always
    kept). ``evaluate(family_set)`` fits a model on those families and returns its validation
    score; each distinct set is evaluated once."""
    families = tuple(dict.fromkeys(families))
    if not families:
        raise ValueError("no feature family to select from")
    fits: list[tuple[tuple[str, ...], ValidScore]] = []
    cache: dict[frozenset[str], ValidScore] = {}

    def score_of(subset: Sequence[str]) -> ValidScore:
        key = frozenset(subset)
        if key not in cache:
            ordered = tuple(f for f in families if f in key)
            cache[key] = evaluate(ordered)
            fits.append((ordered, cache[key]))
        return cache[key]

    every = score_of(families)
    if len(families) == 1:
        only = Decision(families[0], families, every, every, kept=True)
        return Selection(kept=families, score=every, decisions=[only], fits=fits)

    without = {f: score_of([g for g in families if g != f]) for f in families}
    decisions: dict[str, Decision] = {}
    candidates = []
    for f in families:
        if without[f].no_worse_than(every):
            candidates.append(f)
        else:
            decisions[f] = Decision(f, families, every, without[f], kept=True)
    # the removal that helped most goes first; family order breaks ties (stable sort)
    candidates.sort(key=lambda f: without[f].key, reverse=True)

    current, current_score = list(families), every
    for f in candidates:
        if len(current) == 1:
            # the last family left stays: a model needs features
            nothing = ValidScore(float("nan"), float("nan"))
            decisions[f] = Decision(f, tuple(current), current_score, nothing, kept=True)
            continue
        rest = [g for g in current if g != f]
        rest_score = score_of(rest)
        drop = rest_score.no_worse_than(current_score)
        decisions[f] = Decision(f, tuple(current), current_score, rest_score, kept=not drop)
        if drop:
            progress(f"  dropping family {f}: validation not worse without it")
            current, current_score = rest, rest_score
    return Selection(
        kept=tuple(current),
        score=current_score,
        decisions=[decisions[f] for f in families],
        fits=fits,
    )
