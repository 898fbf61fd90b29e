"""Supervision lanes as data: one policy row per lane.

A lane is not a code path. The graph reads the row of the session's lane to decide whether to
plan, whether the teacher reviews, whether the plan collapses into one step, whether attempts
are validated, how many retries a step gets and whether the session is rewarded. The lane
vocabulary sits at the bottom of the package: it imports nothing of it. The retry rule that
reads these rows is in ``routes.py``; the config's overrides are applied by ``services.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Lane = Literal["auto", "paired", "coach", "escalate"]
LANES: tuple[Lane, ...] = get_args(Lane)


@dataclass(frozen=True)
class LanePolicy:
    """What one lane does. ``max_retries`` counts retries, so attempts = retries + 1."""

    plan: bool
    review: bool
    single_step: bool
    validate: bool
    max_retries: int
    reward: bool


def default_policies(max_retries: int = 1, reward_auto: bool = False) -> dict[Lane, LanePolicy]:
    """The lane table: retries belong to coach and escalate, plans to the supervised lanes."""
    return {
        "auto": LanePolicy(
            plan=False, review=False, single_step=True, validate=False, max_retries=0,
            reward=reward_auto,
        ),
        "paired": LanePolicy(
            plan=False, review=False, single_step=True, validate=True, max_retries=0, reward=True
        ),
        "coach": LanePolicy(
            plan=True, review=True, single_step=True, validate=True, max_retries=max_retries,
            reward=True,
        ),
        "escalate": LanePolicy(
            plan=True, review=True, single_step=False, validate=True, max_retries=max_retries,
            reward=True,
        ),
    }  # fmt: skip
