"""Tests for atlas_graph.lanes: the lane table, config overrides and the retry rule."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from atlas_graph.config import parse_config
from atlas_graph.lanes import LANES, LanePolicy, default_policies
from atlas_graph.routes import passes, should_retry
from atlas_graph.services import lane_policies
from atlas_graph.state import Verdict


def verdict(valid: bool, score: float) -> Verdict:
    return {"valid": valid, "score": score, "rationale": "r", "guidance": "g"}


def policies_for(data: dict[str, Any]) -> dict[str, LanePolicy]:
    return lane_policies(parse_config(data, environ={}))


# --------------------------------------------------------------------------- the table


def test_lane_names() -> None:
    assert LANES == ("auto", "paired", "coach", "escalate")
    assert list(default_policies()) == list(LANES)


def test_default_table() -> None:
    table = default_policies()
    assert table["auto"] == LanePolicy(
        plan=False, review=False, single_step=True, validate=False, max_retries=0, reward=False
    )
    assert table["paired"] == LanePolicy(
        plan=False, review=False, single_step=True, validate=True, max_retries=0, reward=True
    )
    assert table["coach"] == LanePolicy(
        plan=True, review=True, single_step=True, validate=True, max_retries=1, reward=True
    )
    assert table["escalate"] == LanePolicy(
        plan=True, review=True, single_step=False, validate=True, max_retries=1, reward=True
    )


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_retries_belong_to_coach_and_escalate(max_retries: int) -> None:
    table = default_policies(max_retries=max_retries)
    assert table["auto"].max_retries == 0
    assert table["paired"].max_retries == 0
    assert table["coach"].max_retries == max_retries
    assert table["escalate"].max_retries == max_retries


def test_auto_reward_only_when_asked() -> None:
    assert default_policies()["auto"].reward is False
    assert default_policies(reward_auto=True)["auto"].reward is True
    for lane in ("paired", "coach", "escalate"):
        assert default_policies(reward_auto=False)[lane].reward is True


def test_policy_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        default_policies()["auto"].validate = True  # type: ignore[misc]


def test_default_policies_returns_a_fresh_table() -> None:
    first = default_policies()
    first["auto"] = first["coach"]
    assert default_policies()["auto"].plan is False


# --------------------------------------------------------------------------- from config


def test_lane_policies_of_empty_config_is_the_default_table() -> None:
    assert policies_for({}) == default_policies(max_retries=1, reward_auto=False)


def test_lane_policies_follow_orchestration_max_retries() -> None:
    table = policies_for({"orchestration": {"max_retries": 3}})
    assert table["coach"].max_retries == 3
    assert table["escalate"].max_retries == 3
    assert table["paired"].max_retries == 0
    assert table["auto"].max_retries == 0

    table = policies_for({"orchestration": {"max_retries": 0}})
    assert table["coach"].max_retries == 0
    assert table["escalate"].max_retries == 0


def test_lane_policies_follow_reward_auto_lane() -> None:
    assert policies_for({"rim": {"reward_auto_lane": True}})["auto"].reward is True
    assert policies_for({"rim": {"reward_auto_lane": False}})["auto"].reward is False


def test_override_paired_retries() -> None:
    table = policies_for({"orchestration": {"lanes": {"paired": {"max_retries": 2}}}})
    default = default_policies()
    assert table["paired"] == dataclasses.replace(default["paired"], max_retries=2)
    for lane in ("auto", "coach", "escalate"):
        assert table[lane] == default[lane]


def test_override_auto_validate_uses_the_yaml_name() -> None:
    table = policies_for({"orchestration": {"lanes": {"auto": {"validate": True}}}})
    assert table["auto"].validate is True
    assert table["auto"] == dataclasses.replace(default_policies()["auto"], validate=True)


def test_override_several_fields_and_lanes() -> None:
    table = policies_for(
        {
            "orchestration": {
                "max_retries": 2,
                "lanes": {
                    "coach": {"single_step": False, "review": False},
                    "escalate": {"reward": False, "plan": False},
                },
            }
        }
    )
    assert table["coach"] == LanePolicy(
        plan=True, review=False, single_step=False, validate=True, max_retries=2, reward=True
    )
    assert table["escalate"] == LanePolicy(
        plan=False, review=True, single_step=False, validate=True, max_retries=2, reward=False
    )


def test_override_wins_over_config_level_settings() -> None:
    table = policies_for(
        {
            "orchestration": {"max_retries": 3, "lanes": {"coach": {"max_retries": 0}}},
            "rim": {"reward_auto_lane": True},
        }
    )
    assert table["coach"].max_retries == 0
    assert table["escalate"].max_retries == 3
    assert table["auto"].reward is True

    table = policies_for(
        {"rim": {"reward_auto_lane": True}, "orchestration": {"lanes": {"auto": {"reward": False}}}}
    )
    assert table["auto"].reward is False


def test_empty_override_changes_nothing() -> None:
    assert policies_for({"orchestration": {"lanes": {"coach": {}}}}) == default_policies()


# --------------------------------------------------------------------------- passes


@pytest.mark.parametrize(
    ("valid", "score", "threshold", "expected"),
    [
        (True, 0.9, 0.6, True),  # above
        (True, 0.6, 0.6, True),  # at the threshold passes
        (True, 0.59, 0.6, False),  # below
        (True, 0.0, 0.0, True),
        (True, 1.0, 1.0, True),
        (False, 1.0, 0.6, False),  # invalid fails whatever the score
        (False, 0.6, 0.6, False),
        (False, 0.0, 0.6, False),
    ],
)
def test_passes(valid: bool, score: float, threshold: float, expected: bool) -> None:
    assert passes(verdict(valid, score), threshold) is expected


def test_passes_accepts_integer_scores() -> None:
    assert passes(verdict(True, 1), 0.6) is True
    assert passes(verdict(True, 0), 0.6) is False


# --------------------------------------------------------------------------- should_retry

FAILING = [
    pytest.param(verdict(False, 0.9), id="invalid-high-score"),
    pytest.param(verdict(True, 0.5), id="valid-below-threshold"),
    pytest.param(verdict(False, 0.0), id="invalid-zero"),
]
PASSING = [
    pytest.param(verdict(True, 0.6), id="valid-at-threshold"),
    pytest.param(verdict(True, 0.95), id="valid-above-threshold"),
]


@pytest.mark.parametrize("failed", FAILING)
@pytest.mark.parametrize(
    ("max_retries", "attempt", "expected"),
    [
        (0, 1, False),  # one attempt allowed: no retry
        (1, 1, True),
        (1, 2, False),  # two attempts allowed: second is the last
        (3, 1, True),
        (3, 2, True),
        (3, 3, True),
        (3, 4, False),  # four attempts allowed: fourth is the last
        (3, 5, False),
    ],
)
def test_failed_attempt_retries_while_attempts_remain(
    failed: Verdict, max_retries: int, attempt: int, expected: bool
) -> None:
    assert should_retry(failed, attempt, max_retries, 0.6) is expected


@pytest.mark.parametrize("passed", PASSING)
@pytest.mark.parametrize(("max_retries", "attempt"), [(0, 1), (1, 1), (3, 1), (3, 3), (3, 4)])
def test_passing_attempt_never_retries(passed: Verdict, max_retries: int, attempt: int) -> None:
    assert should_retry(passed, attempt, max_retries, 0.6) is False


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_total_attempts_is_max_retries_plus_one(max_retries: int) -> None:
    failed = verdict(False, 0.0)
    attempts = 1
    while should_retry(failed, attempts, max_retries, 0.6):
        attempts += 1
    assert attempts == max_retries + 1


def test_should_retry_uses_the_given_threshold() -> None:
    scored = verdict(True, 0.7)
    assert should_retry(scored, 1, 1, 0.8) is True
    assert should_retry(scored, 1, 1, 0.7) is False
    assert should_retry(scored, 1, 1, 0.5) is False
