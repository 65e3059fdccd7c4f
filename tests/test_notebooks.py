"""Every notebook runs top to bottom on a real platform, and leaves nothing behind: its last cell
(tagged "teardown") runs even after a cell failed, so a failure leaves no platform or cluster."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from distem.testing.notebooks import run, teardown_cells

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_ends_with_its_teardown(path):
    notebook = nbformat.read(path, as_version=4)
    code = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    assert teardown_cells(notebook) == code[-1:]


@pytest.mark.root
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    copy = tmp_path / path.name  # run beside a copy: what a notebook writes stays in the test's directory
    copy.write_bytes(path.read_bytes())
    notebook = run(copy)
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
