"""The notebooks in ``notebooks/`` run against the offline models, and are stored clean."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from helpers import TRACING_VARIABLES
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_the_four_notebooks_are_there() -> None:
    assert [path.stem[:3] for path in NOTEBOOKS] == ["01_", "02_", "03_", "04_"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert dirty == [], f"{path.name}: clear the outputs of cells {dirty} before committing"


def _execute(path: Path, folder: Path) -> None:
    """Run one notebook top to bottom in a fresh kernel working in ``folder``; no errors."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(new_code_cell("import sys\nprint(sys.executable, end='')"))
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,  # a guard against a hung kernel, not a performance bound
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert errors == [], f"{path.name}: {errors}"
    # it ran on this interpreter, where atlas_graph is installed
    assert notebook.cells[-1].outputs[0].text == sys.executable


@pytest.fixture
def kernel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TRACING_VARIABLES:
        monkeypatch.delenv(name, raising=False)  # the kernel inherits this environment
    # this environment's "python3" kernel spec first (its "python" runs as sys.executable)
    monkeypatch.setenv("JUPYTER_PATH", str(Path(sys.prefix) / "share" / "jupyter"))


@pytest.mark.usefixtures("kernel_environment")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    """Each notebook executes top to bottom in a fresh kernel, in an empty working folder."""
    _execute(path, tmp_path)


@pytest.mark.usefixtures("kernel_environment")
def test_notebooks_rerun_and_run_in_any_order_in_one_folder(tmp_path: Path) -> None:
    """The quickstart's sessions do not change the export notebook's counts; a re-run of the
    time-travel notebook finds its threads anew."""
    by_stem = {path.stem[:2]: path for path in NOTEBOOKS}
    for stem in ("01", "04", "02", "02"):
        _execute(by_stem[stem], tmp_path)
