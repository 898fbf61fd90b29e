"""The ``rim`` section: both Atlas layouts, defaults, and one-line errors for bad values."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from atlas_graph.config import ConfigError, parse_config

LLM = {"provider": "openai", "model": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"}

# The seed layout: every judge names its own llm, and a separate arbiter model.
SEED_RIM = """\
rim:
  judges:
    - identifier: process
      kind: process
      weight: 0.5
      principles: [Logical reasoning]
      llm: {provider: openai, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}
    - identifier: helpfulness
      kind: helpfulness
      weight: 0.5
      llm: {provider: openai, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}
  arbiter: {provider: openai, model: gpt-4o, api_key_env: OPENAI_API_KEY}
  aggregation_strategy: minimum
  success_threshold: 0.7
  retry_threshold: 0.6
"""

# The later layout: shared small and large models and built-in judges switched on by name.
LATER_RIM = """\
rim:
  small_model: {provider: openai, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}
  large_model: {provider: openai, model: gpt-5, api_key_env: OPENAI_API_KEY}
  active_judges: {process: true, helpfulness: false}
  variance_threshold: 0.1
  uncertainty_threshold: 0.25
  parallel_workers: 8
  judge_prompt: Judge the SRE answer.
"""


def rim_error(rim: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config({"rim": rim}, source="cfg.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults() -> None:
    rim = parse_config({}).rim
    assert rim.temperatures == [0.2, 0.5, 0.8]
    assert (rim.variance_threshold, rim.uncertainty_threshold) == (0.15, 0.3)
    assert (rim.aggregation, rim.scope, rim.parallel_workers) == ("weighted_mean", "session", 4)
    assert rim.large_model is None and rim.active_judges is None
    assert rim.reuse_validation_as_reward is True and rim.audit_prompts is False


def test_seed_layout_loads() -> None:
    rim = parse_config(yaml.safe_load(SEED_RIM)).rim
    assert rim.large_model is not None and rim.large_model.model == "gpt-4o"
    assert rim.aggregation == "minimum"
    assert [judge.llm.model for judge in rim.judges if judge.llm] == ["gpt-4o-mini"] * 2


def test_later_layout_loads() -> None:
    from atlas_graph.nodes.reward import active_judges

    rim = parse_config(yaml.safe_load(LATER_RIM)).rim
    assert rim.small_model is not None and rim.small_model.model == "gpt-4o-mini"
    assert rim.large_model is not None and rim.large_model.model == "gpt-5"
    assert rim.active_judges == {"process": True, "helpfulness": False}
    assert [judge.identifier for judge in active_judges(rim, has_model=True)] == ["process"]
    assert (rim.variance_threshold, rim.uncertainty_threshold) == (0.1, 0.25)
    assert rim.judge_prompt == "Judge the SRE answer."


def test_active_judges_as_a_list_and_next_to_configured_judges() -> None:
    from atlas_graph.nodes.reward import active_judges

    rim = parse_config(
        {"rim": {"active_judges": ["helpfulness", "process"],
                 "judges": [{"identifier": "process", "prompt": "mine"}]}}
    ).rim  # fmt: skip
    judges = active_judges(rim, has_model=True)
    assert [(judge.identifier, judge.prompt) for judge in judges] == [
        ("process", "mine"),  # a configured judge wins over the built-in of the same name
        ("helpfulness", None),
    ]
    assert active_judges(parse_config({}).rim, has_model=False) == []
    rim = parse_config(
        {"rim": {"active_judges": ["process"], "judges": [{"identifier": "process",
                                                           "enabled": False}]}}
    ).rim  # fmt: skip
    assert active_judges(rim, has_model=True) == []  # switched off stays off


@pytest.mark.parametrize(
    ("rim", "fragment"),
    [
        ({"variance_threshold": 1.5}, "rim.variance_threshold: Input should be less than or"),
        ({"uncertainty_threshold": -0.1}, "rim.uncertainty_threshold: Input should be greater"),
        ({"temperatures": []}, "rim.temperatures: list at least one sampling temperature"),
        ({"temperatures": [0.2, 3]}, "rim.temperatures: temperatures must lie between 0 and 2"),
        ({"judges": [{"identifier": "j", "weight": 0}]}, "rim.judges[0].weight: Input should be"),
        ({"judges": [{"identifier": "j", "weight": -1}]}, "rim.judges[0].weight: Input should be"),
        ({"aggregation": "median"}, "rim.aggregation: Input should be 'weighted_mean' or"),
        ({"scope": "steps"}, "rim.scope: Input should be 'session', 'step' or 'both'"),
        ({"parallel_workers": 0}, "rim.parallel_workers: Input should be greater than or"),
        ({"active_judges": {"safety": True}}, "rim.active_judges.safety"),
        ({"arbiter": LLM, "large_model": LLM}, "give either large_model or arbiter"),
        ({"aggregation": "minimum", "aggregation_strategy": "minimum"}, "give either aggregation"),
        ({"judges": [{"identifier": "a"}, {"identifier": "a"}]}, "repeated: ['a']"),
    ],
)
def test_bad_values_are_one_line_errors(rim: dict[str, Any], fragment: str) -> None:
    message = rim_error(rim)
    assert message.startswith("cfg.yaml: rim")
    assert fragment in message, message
