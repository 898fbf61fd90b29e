"""Optional dependencies: features that need an extra say which one, in one line.

A missing package is simulated with ``None`` in ``sys.modules``, which makes its import raise
``ModuleNotFoundError`` naming it, as when it is not installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from atlas_graph.cli import EXIT_OK, EXIT_USAGE, main
from atlas_graph.config import LLMParameters, StorageConfig
from atlas_graph.errors import AtlasUserError, MissingExtraError
from atlas_graph.extras import EXTRA_MODULES, require_extra
from atlas_graph.models import chat_model_from_params
from atlas_graph.storage.persistence import aopen_persistence, open_persistence


def uninstall(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-example-test")


def test_a_model_without_the_openai_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    uninstall(monkeypatch, "langchain_openai")
    with pytest.raises(MissingExtraError) as caught:
        chat_model_from_params(LLMParameters(model="gpt-4.1-mini"), role="teacher")
    error = caught.value
    assert isinstance(error, AtlasUserError) and isinstance(error, ImportError)
    assert str(error) == (
        "model gpt-4.1-mini (role teacher) needs the 'openai' extra: "
        "pip install 'atlas-graph[openai]'"
    )
    assert (error.extra, error.module) == ("openai", "langchain_openai")


def test_the_cli_names_the_extra_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uninstall(monkeypatch, "langchain_openai", "openai")
    config = tmp_path / "atlas.yaml"
    config.write_text(
        textwrap.dedent("""\
            agent: {type: openai, llm: {model: gpt-4.1-mini}}
            teacher: {llm: {model: gpt-4.1-mini}}
            storage: {backend: memory}
        """),
        encoding="utf-8",
    )
    assert main(["run", "Add 2 and 3.", "--config", str(config), "--no-stream"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "needs the 'openai' extra: pip install 'atlas-graph[openai]'" in err


async def test_postgres_storage_without_the_postgres_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uninstall(monkeypatch, "psycopg", "psycopg_pool")
    storage = StorageConfig(backend="postgres", database_url="postgresql://atlas:pw@db/atlas")
    with pytest.raises(MissingExtraError, match=r"pip install 'atlas-graph\[postgres\]'$"):
        async with aopen_persistence(storage):
            pass
    with pytest.raises(MissingExtraError) as caught, open_persistence(storage):
        pass
    assert caught.value.module == "psycopg" and "pw" not in str(caught.value)


def test_the_saver_package_alone_missing_is_named_too(monkeypatch: pytest.MonkeyPatch) -> None:
    uninstall(monkeypatch, "langgraph.checkpoint.postgres")
    with pytest.raises(MissingExtraError) as caught:
        require_extra("postgres", "PostgreSQL storage")
    assert caught.value.module == "langgraph.checkpoint.postgres"


def test_other_import_failures_are_left_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An installed module of the extra that misses something else: not the extra's fault."""
    (tmp_path / "installed_part.py").write_text("import not_part_of_any_extra\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(EXTRA_MODULES, "example", ("installed_part",))
    with pytest.raises(ModuleNotFoundError) as caught:
        require_extra("example", "the example")
    assert not isinstance(caught.value, MissingExtraError)
    assert caught.value.name == "not_part_of_any_extra"


def test_the_offline_path_needs_no_extra(tmp_path: Path) -> None:
    """The demo, in a process where neither extra can be imported."""
    blocked = [module for modules in EXTRA_MODULES.values() for module in modules]
    code = textwrap.dedent(f"""\
        import sys
        for name in {blocked!r}:
            sys.modules[name] = None
        from atlas_graph.cli import main
        code = main(["demo", "--json"])
        loaded = sorted(name for name in {blocked!r} if sys.modules.get(name) is not None)
        print("loaded:", loaded, file=sys.stderr)
        sys.exit(code)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert "loaded: []" in done.stderr
    assert len(done.stdout.strip().splitlines()) == 4  # one result per lane
