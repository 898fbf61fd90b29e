"""Supervision lanes as data: one policy row per lane, and the retry rule.

A lane is not a code path. The graph reads the row of the session's lane to decide whether to
plan, whether the teacher reviews, whether the plan collapses into one step, whether attempts
are validated, how many retries a step gets and whether the session is rewarded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from atlas_graph.config import AtlasConfig
    from atlas_graph.state import Verdict

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


def lane_policies(config: AtlasConfig) -> dict[Lane, LanePolicy]:
    """The lane table with the config's overrides applied."""
    policies = default_policies(
        max_retries=config.orchestration.max_retries,
        reward_auto=config.rim.reward_auto_lane,
    )
    for lane, override in config.orchestration.lanes.items():
        policies[lane] = replace(policies[lane], **override.changes())
    return policies


def passes(verdict: Verdict, retry_threshold: float) -> bool:
    """An attempt passes when the teacher calls it valid and scores it at the threshold or above."""
    return bool(verdict["valid"]) and float(verdict["score"]) >= retry_threshold


def should_retry(verdict: Verdict, attempt: int, max_retries: int, retry_threshold: float) -> bool:
    """Retry a failed attempt while the step has attempts left (``attempt`` is 1-based)."""
    return not passes(verdict, retry_threshold) and attempt <= max_retries
