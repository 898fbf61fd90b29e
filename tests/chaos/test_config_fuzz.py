"""Config loading under hostile files: a config or a one-line ConfigError naming the file.

Property tests feed arbitrary bytes and arbitrary YAML (anchors, aliases, merge keys, complex
keys, deep nesting, ``${VAR}``); fixed cases cover a FIFO, ``/dev/zero``, billion laughs,
recursive anchors, UTF-16 and huge numbers.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlas_graph.config import MAX_CONFIG_BYTES, AtlasConfig, load_config
from atlas_graph.errors import ConfigError

FUZZ = settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def outcome(path: Path) -> str:
    """``ok`` or the error line; anything but a ConfigError fails the test."""
    try:
        config = load_config(path, environ={"HOME": "/home/x"})
    except ConfigError as error:
        message = str(error)
        assert "\n" not in message, message
        assert message.startswith(str(path)), message
        return message
    assert isinstance(config, AtlasConfig)
    return "ok"


@FUZZ
@given(data=st.binary(max_size=2000))
def test_any_bytes_give_a_config_or_a_config_error(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    outcome(path)


FRAGMENTS = [
    "&a ", "*a", "&b ", "*b", "<<: *a", "<<: ", "? ", ": ", "- ", "[", "]", "{", "}", ", ",
    "\n", "\n  ", "\n    ", "${HOME}", "${NOPE}", "${X:-1}", "!!python/object:os.system ",
    "!!binary ", "1.0e+30", ".inf", ".nan", "~", "'", '"', "#", "---\n", "...\n", "|\n  ",
    "teacher", "llm", "model", "orchestration", "trajectory_event_limit", "storage",
    "metadata", "x", "%YAML 1.1\n", "\t", "\x00", "\ufeff",
]  # fmt: skip


@FUZZ
@given(parts=st.lists(st.sampled_from(FRAGMENTS), max_size=60))
def test_yaml_shaped_text_gives_a_config_or_a_config_error(
    parts: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text("".join(parts), encoding="utf-8")
    outcome(path)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(string.printable, max_size=8)
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(string.ascii_lowercase, max_size=6), children, max_size=4),
    ),
    max_leaves=30,
)
SECTIONS = ["teacher", "student", "orchestration", "rim", "storage", "metadata", "learning"]


@FUZZ
@given(tree=st.dictionaries(st.sampled_from(SECTIONS), trees, max_size=4))
def test_any_yaml_tree_gives_a_config_or_a_config_error(
    tree: dict[str, object], tmp_path: Path
) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    outcome(path)


def laughs(levels: int = 9) -> str:
    lines = ["metadata:", '  home: "${HOME}"', '  l0: &l0 ["lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"  l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "billion-laughs": (laughs(), "expands to more than"),
    "recursive-anchor": ("metadata: &a {x: *a}\n", "refers to itself"),
    "recursive-list": ("metadata: {x: &a [*a]}\n", "refers to itself"),
    "deep-brackets": ("metadata: " + "[" * 50_000 + "\n", "nested too deeply"),
    "deep-mapping": ("metadata:" + "".join(f"\n{'  ' * i}k:" for i in range(1, 120)) + " 1\n",
                     "nested deeper"),
    "complex-key": ("metadata:\n  ? [1, 2]\n  : x\n", "key must be plain text"),
    "mapping-key": ("metadata: {{a: 1}: x}\n", "key must be plain text"),
    "huge-int": ("orchestration:\n  trajectory_event_limit: 1.0e+30\n", "trajectory_event_limit"),
    "huge-int-text": ("orchestration:\n  trajectory_event_limit: 1e30\n", "trajectory_event_limit"),
    "big-int": ("orchestration:\n  trajectory_event_limit: 99999999999999999999\n",
                "trajectory_event_limit"),
    "python-tag": ("metadata: !!python/object/apply:os.system [echo]\n", "invalid YAML"),
    "oversized": ("metadata: {x: '" + "y" * MAX_CONFIG_BYTES + "'}\n", "larger than"),
}  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_files_are_refused_in_one_line(case: str, tmp_path: Path) -> None:
    text, expected = HOSTILE[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text, encoding="utf-8")
    assert expected in outcome(path)


def test_utf16_and_binary_files_are_named(tmp_path: Path) -> None:
    utf16 = tmp_path / "utf16.yaml"
    utf16.write_text("storage:\n  backend: memory\n", encoding="utf-16")
    assert "UTF-16" in outcome(utf16)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)))
    assert "not UTF-8" in outcome(binary)


def test_special_files_are_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer for ever
    assert "not a regular file" in outcome(fifo)
    if Path("/dev/zero").exists():
        with pytest.raises(ConfigError, match="not a regular file"):
            load_config("/dev/zero")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_merge_keys_are_accepted_and_explicit_keys_win(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(
        "teacher:\n  llm: &llm\n    provider: openai\n    model: gpt-4o-mini\n"
        "learning:\n  llm:\n    <<: *llm\n    model: gpt-4o\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.learning.llm is not None and config.teacher.llm is not None
    assert (config.learning.llm.provider, config.learning.llm.model) == ("openai", "gpt-4o")
    assert config.teacher.llm.model == "gpt-4o-mini"


def test_duplicate_keys_beside_a_merge_are_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("teacher: {}\nteacher: {}\n", encoding="utf-8")
    assert "duplicate key" in outcome(path)
