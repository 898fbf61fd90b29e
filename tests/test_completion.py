"""``atlas-graph completion``: shell completion scripts generated from the real parser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from atlas_graph.cli import EXIT_OK, EXIT_USAGE, main


def script(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["completion", shell]) == EXIT_OK
    return capsys.readouterr().out


@pytest.mark.parametrize("shell", ["bash", "zsh", "tcsh"])
def test_script_names_real_commands_and_flags(
    shell: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = script(shell, capsys)
    for word in ("atlas-graph", "eval", "demo", "resume", "export", "completion", "--config"):
        assert word in text, f"{shell} script lacks {word}"
    assert "concurrency" in text  # a flag of a subcommand (tcsh lists flags without "--")


def test_bash_script_parses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    path = tmp_path / "atlas-graph.bash"
    path.write_text(script("bash", capsys), encoding="utf-8")
    checked = subprocess.run([bash, "-n", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_config_files_complete_as_paths(capsys: pytest.CaptureFixture[str]) -> None:
    text = script("zsh", capsys)
    config_lines = [line for line in text.splitlines() if "--config" in line and "[" in line]
    assert config_lines and all("_files" in line for line in config_lines)


def test_unknown_shell_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["completion", "fish"])
    assert exit_info.value.code == EXIT_USAGE
    assert "invalid choice" in capsys.readouterr().err
