"""Tests for the ``atlas-graph`` command line (``atlas_graph.cli``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import TRACING_VARIABLES

from atlas_graph.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from atlas_graph.demo import DEMO_TASKS, demo_config_path
from atlas_graph.graph import NODES

LANES = ("auto", "paired", "coach", "escalate")
DB = Path(".atlas_graph") / "atlas.sqlite"


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own folder (the default SQLite file lands there), untraced."""
    monkeypatch.chdir(tmp_path)
    for name in TRACING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def demo_yaml(tmp_path: Path) -> Path:
    """A copy of the packaged demo config in the test folder."""
    target = tmp_path / "offline_demo.yaml"
    target.write_text(demo_config_path().read_text(encoding="utf-8"), encoding="utf-8")
    return target


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A uniquely named module in tmp_path with agents and validators the configs can import."""
    name = f"cli_user_code_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """\
            CALLS = []


            def echo_agent(request):
                CALLS.append(request.mode)
                return {"content": "forty-two"}


            def raising_agent(request):
                CALLS.append(request.mode)
                raise RuntimeError("agent exploded")


            def never_valid(request):
                return {"valid": False, "score": 0.1, "rationale": "no", "guidance": "try again"}


            def approve(request):
                return {"approved": True, "concerns": []}
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def write_config(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def lane_sections(text: str) -> dict[str, str]:
    """Split streamed demo output into the block printed under each lane header."""
    parts = re.split(r"^── (\w+) lane ─+$", text, flags=re.MULTILINE)
    return {parts[index]: parts[index + 1] for index in range(1, len(parts) - 1, 2)}


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("atlas-graph: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


# --------------------------------------------------------------------------- demo


def test_demo_stream_shows_the_whole_loop(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--stream"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert err == ""
    sections = lane_sections(out)
    assert list(sections) == list(LANES)

    coach = sections["coach"]
    invalid = coach.index("[step 1] validation: invalid")
    guidance = coach.index("[step 1] guidance: State the unit")
    retry = coach.index("[step 1] attempt 2 started")
    retry_output = coach.index("[step 1] output: 245 ms")
    assert invalid < guidance < retry < retry_output
    assert "[step 1] retry: attempt 2 of 2" in coach[invalid:guidance]
    assert "  step 1: succeeded, attempts 2, score 1.00" in coach
    assert re.search(r"^RIM scores \| max \d\.\d\d \| avg \d\.\d\d$", coach, re.M)
    assert "unit 'ms' is missing" in coach[invalid:guidance]
    assert re.search(r"^reward: \d\.\d\d \(process \d\.\d\d\)$", coach, re.MULTILINE)
    assert "final answer: 245 ms" in coach
    assert re.search(r"^succeeded: lane coach, 1 step\(s\), 1 retry, reward ", coach, re.M)

    for lane in LANES:
        section = sections[lane]
        assert f"lane: {lane} (set by run override)" in section
        assert re.search(rf"^task completed in [\d.]+s: succeeded \(lane {lane}\)$", section, re.M)
        assert re.search(rf"^succeeded: lane {lane}, ", section, re.M)
    for lane in ("auto", "paired", "escalate"):
        assert ", 0 retries, " in sections[lane]
    # auto is unsupervised: no validation, no reward.
    assert "validation:" not in sections["auto"]
    assert "reward -" in sections["auto"]
    assert "final answer: 1648" in sections["escalate"]
    # products go through the calculator tool, in a paired step and in a parallel escalate step
    paired = sections["paired"]
    call = paired.index('[step 1] tool call: calculate({"expression": "17 * 23"})')
    assert (
        call
        < paired.index("[step 1] tool result: calculate → 391")
        < paired.index("[step 1] output: 391")
    )
    assert "[step 2] tool result: calculate → 108" in sections["escalate"]
    assert "tool call" not in sections["coach"]


def test_demo_json_prints_one_result_per_lane(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert err == ""
    results = json_lines(out)
    assert len(results) == len(out.strip().splitlines()) == 4
    assert [result["lane"] for result in results] == list(LANES)
    assert [result["task"] for result in results] == [task for _, task in DEMO_TASKS]
    for result in results:
        assert result["status"] == "succeeded"
        assert result["session_metadata"] == {"source": "offline-demo", "demo": True}
        assert result["checkpoint_id"]
    assert len({result["session_id"] for result in results}) == 4
    assert [result["final_answer"] for result in results[:3]] == ["42", "391", "245 ms"]

    coach = results[2]
    (step,) = coach["steps"]
    assert step["attempts"] == 2
    first, second = step["attempt_history"]
    assert first["validation"]["valid"] is False
    assert first["output"] == "245"
    assert second["validation"]["valid"] is True
    assert second["output"] == "245 ms"
    assert step["guidance"]
    assert step["guidance"][0].startswith("State the unit")
    assert coach["reward"]["score"] == pytest.approx(0.9)


def test_demo_persists_to_sqlite_in_cwd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert not (tmp_path / DB).exists()
    assert main(["demo", "--no-stream"]) == EXIT_OK
    assert (tmp_path / DB).is_file()
    assert (tmp_path / DB).stat().st_size > 0
    out = capsys.readouterr().out
    # Without streaming each lane prints its answer then its summary.
    assert out.count("succeeded: lane ") == 4
    assert "\n245 ms\n" in out


def test_demo_console_script_subprocess(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in TRACING_VARIABLES}
    completed = subprocess.run(
        [sys.executable, "-m", "atlas_graph", "demo", "--stream"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    out = completed.stdout
    assert "validation: invalid" in out
    assert "guidance: State the unit" in out
    assert "245 ms" in out
    assert re.search(r"^reward: ", out, re.MULTILINE)
    assert "succeeded: lane coach, 1 step(s), 1 retry, " in out
    for lane in LANES:
        assert f"── {lane} lane" in out
        assert f"succeeded: lane {lane}, " in out
    assert (tmp_path / DB).is_file()


# --------------------------------------------------------------------------- run


def test_run_paired_json(demo_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "Multiply 6 by 7.", "--config", str(demo_yaml), "--mode", "paired",
                 "--json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    (result,) = json_lines(out)
    assert result["final_answer"] == "42"
    assert result["lane"] == "paired"
    assert result["status"] == "succeeded"
    assert result["task"] == "Multiply 6 by 7."
    assert result["steps"][0]["validation"]["valid"] is True


def test_run_plain_output_is_answer_then_summary(
    demo_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "Add 2 and 3.", "-c", str(demo_yaml), "--mode", "auto", "--thread-id",
                 "plain-1"])  # fmt: skip
    assert code == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "5",
        "succeeded: lane auto, 1 step(s), 0 retries, reward -, session plain-1",
    ]


def test_run_thread_id_and_finished_thread(
    demo_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "Multiply 6 by 7.", "-c", str(demo_yaml), "--mode", "paired",
            "--thread-id", "thread-x", "--json"]  # fmt: skip
    assert main(argv) == EXIT_OK
    (result,) = json_lines(capsys.readouterr().out)
    assert result["session_id"] == "thread-x"

    assert main(argv) == EXIT_USAGE  # nothing ran: the thread id was the wrong one
    out, err = capsys.readouterr()
    assert out == ""
    assert_one_line_error(err, "thread-x", "already finished")


def test_run_metadata_reaches_the_session(
    demo_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "Add 1 and 1.", "-c", str(demo_yaml), "--mode", "auto", "--json",
                 "--metadata", '{"team": "a", "source": "cli"}'])  # fmt: skip
    assert code == EXIT_OK
    (result,) = json_lines(capsys.readouterr().out)
    # The config's metadata defaults sit under the caller's; the caller wins on conflicts.
    assert result["session_metadata"] == {"team": "a", "source": "cli"}

    assert main(["run", "Add 1 and 1.", "-c", str(demo_yaml), "--mode", "auto", "--json",
                 "--metadata", '{"team": "b"}'])  == EXIT_OK  # fmt: skip
    (result,) = json_lines(capsys.readouterr().out)
    assert result["session_metadata"] == {"source": "offline-demo", "team": "b"}


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ("[1]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        ("{team: a}", "not JSON"),
        ("{", "not JSON"),
    ],
)
def test_run_bad_metadata_is_usage_error(
    demo_yaml: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, metadata: str,
    fragment: str,
) -> None:  # fmt: skip
    code = main(["run", "Add 1 and 1.", "-c", str(demo_yaml), "--metadata", metadata])
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE
    assert out == ""
    assert_one_line_error(err, "--metadata", fragment)
    assert not (tmp_path / DB).exists()  # rejected before any session was opened


def test_run_failing_session_exits_1(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        "failing.yaml",
        f"""\
        agent:
          type: python
          import_path: {user_module}
          attribute: echo_agent
        teacher:
          validator: {user_module}:never_valid
        """,
    )
    code = main(["run", "Say something.", "-c", str(config), "--mode", "paired", "--json"])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILED, err
    assert err == ""
    (result,) = json_lines(out)
    assert result["status"] == "failed"
    (step,) = result["steps"]
    assert step["status"] == "failed"
    assert step["attempts"] == 1  # the paired lane never retries
    assert step["validation"] == {
        "valid": False, "score": 0.1, "rationale": "no", "guidance": "try again",
    }  # fmt: skip
    assert result["reward"]["score"] == pytest.approx(0.1)
    assert sys.modules[user_module].CALLS == ["execute"]


def test_run_failing_session_plain_summary(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        "failing.yaml",
        f"""\
        agent: {{type: python, import_path: {user_module}, attribute: echo_agent}}
        teacher: {{validator: "{user_module}:never_valid"}}
        """,
    )
    code = main(["run", "Say something.", "-c", str(config), "--mode", "paired", "--no-stream",
                 "--thread-id", "failing-1"])  # fmt: skip
    assert code == EXIT_FAILED
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "forty-two",
        "failed: lane paired, 1 step(s), 0 retries, reward 0.10, session failing-1",
    ]


@pytest.mark.parametrize(
    "mode",
    [
        None,
        "auto",
        "paired",
        "coach",
        "escalate",
    ],
)
def test_run_with_raising_agent_completes_as_failed(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str], mode: str | None
) -> None:
    config = write_config(
        tmp_path,
        "raising.yaml",
        f"""\
        agent:
          type: python
          import_path: {user_module}
          attribute: raising_agent
        teacher:
          validator: atlas_graph.demo:validator
          plan_reviewer: {user_module}:approve
        """,
    )
    argv = ["run", "Add 2 and 2.", "-c", str(config), "--json"]
    if mode is not None:
        argv += ["--mode", mode]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == EXIT_FAILED, err
    assert err == ""
    (result,) = json_lines(out)
    assert result["status"] == "failed"
    assert result["lane"] == (mode or "paired")  # the config's fallback lane is paired
    assert result["steps"]
    for step in result["steps"]:
        assert step["status"] == "failed"
        for attempt in step["attempt_history"]:
            assert "RuntimeError: agent exploded" in attempt["error"]
    assert "execute" in sys.modules[user_module].CALLS


def test_run_unknown_import_is_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        "missing_module.yaml",
        """\
        agent: {type: python, import_path: no_such_module_atlas_cli_test, attribute: agent}
        """,
    )
    assert main(["run", "Hi.", "-c", str(config)]) == EXIT_USAGE
    assert_one_line_error(capsys.readouterr().err, "no_such_module_atlas_cli_test")


def test_run_with_broken_user_module_is_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"cli_broken_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text("def agent(request:\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = write_config(
        tmp_path, "broken.yaml", f"agent: {{type: python, import_path: {name}, attribute: agent}}\n"
    )
    assert main(["run", "Hi.", "-c", str(config)]) == EXIT_USAGE
    assert_one_line_error(capsys.readouterr().err, name)


def test_run_bad_mode_is_rejected_by_argparse(
    demo_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "Hi.", "-c", str(demo_yaml), "--mode", "solo"])
    assert exit_info.value.code == EXIT_USAGE
    assert "invalid choice: 'solo'" in capsys.readouterr().err


# --------------------------------------------------------------------------- config validate


def test_config_validate_demo_ok(demo_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", str(demo_yaml)]) == EXIT_OK
    out, err = capsys.readouterr()
    assert err == ""
    assert out.strip() == f"{demo_yaml}: ok (agent: python, teacher: python, storage: sqlite)"


def test_config_validate_reports_agent_and_teacher(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "minimal.yaml", "storage: {backend: memory}\n")
    assert main(["config", "validate", str(config)]) == EXIT_OK
    assert capsys.readouterr().out.strip() == (
        f"{config}: ok (agent: none (pass agent= in code), teacher: none, storage: memory)"
    )


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("unknown_key.yaml", "bogus: 1\n", "bogus: unknown field"),
        ("bad_type.yaml", "orchestration:\n  max_retries: abc\n", "orchestration.max_retries"),
        ("bad_yaml.yaml", "agent: [unclosed\n", "invalid YAML at line"),
        ("top_level_list.yaml", "- 1\n- 2\n", "expected a mapping"),
        ("missing.yaml", None, "file not found"),
    ],
)
def test_config_validate_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str | None,
    fragment: str,
) -> None:  # fmt: skip
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    assert main(["config", "validate", str(path)]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert_one_line_error(err, str(path), fragment)


def test_run_with_bad_config_is_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        tmp_path, "bad.yaml", "rim:\n  retry_threshold: 0.9\n  success_threshold: 0.5\n"
    )
    assert main(["run", "Hi.", "-c", str(path)]) == EXIT_USAGE
    assert_one_line_error(capsys.readouterr().err, str(path), "retry_threshold")
    assert not (tmp_path / DB).exists()


# --------------------------------------------------------------------------- graph


def test_graph_prints_mermaid_with_every_node(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "graph TD;" in out
    expected = ("triage", "probe", "plan", "review", "dispatch", "execute", "validate",
                "guide", "synthesize", "reward", "arbiter", "learn", "finalize")  # fmt: skip
    assert set(expected) == set(NODES)
    for node in expected:
        assert re.search(rf"^\s*{node}\({node}\)$", out, re.MULTILINE), node
    assert re.search(r"__start__ --> triage;", out)
    assert re.search(r"finalize --> __end__;", out)


def test_graph_with_bad_config_is_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["graph", "-c", str(tmp_path / "nope.yaml")]) == EXIT_USAGE
    assert_one_line_error(capsys.readouterr().err, "nope.yaml", "file not found")


def test_run_without_task_needs_a_thread_id(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "-c", "whatever.yaml"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.strip() == "atlas-graph: run needs a TASK, or --thread-id of an unfinished session"


def test_run_without_task_for_unknown_thread_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlas_graph.demo import demo_config_path

    code = main(["run", "-c", str(demo_config_path()), "--thread-id", "nope"])
    _, err = capsys.readouterr()
    assert code == EXIT_USAGE
    assert "no session nope to resume" in err


def test_version_flag_and_module_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    import atlas_graph

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"atlas-graph {version('atlas-graph')}"
    assert atlas_graph.__version__ == version("atlas-graph")
