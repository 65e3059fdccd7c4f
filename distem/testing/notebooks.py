"""Run a notebook top to bottom in a fresh kernel, its teardown cell even after a failure.

The project's notebooks end with a cell tagged ``teardown`` (``p.close()``, a cluster's ``close()``):
run after a failed cell too, so that a failure leaves no platform behind. ``python -m
distem.testing.notebooks notebooks/*.ipynb`` runs them and writes their outputs back into them
(the notebooks ship with what they showed on the machine that ran them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def teardown_cells(notebook: nbformat.NotebookNode) -> list[int]:
    return [i for i, cell in enumerate(notebook.cells) if "teardown" in cell.metadata.get("tags", [])]


def run(path: str | Path, timeout: int = 300) -> nbformat.NotebookNode:
    """The notebook at ``path`` with its outputs. Raises CellExecutionError (after the teardown ran)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(path).parent)}})
    with client.setup_kernel():
        try:
            for index, cell in enumerate(notebook.cells):
                client.execute_cell(cell, index)
        except CellExecutionError:
            for index in teardown_cells(notebook):
                client.execute_cell(notebook.cells[index], index)
            raise
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distem.testing.notebooks", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.paths:
        print(f"{path}: running", flush=True)
        nbformat.write(run(path), path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
