"""The pairwise latency matrix (Distem's ``set_peers_latencies``), as one-way delays between vnodes.

    matrix[i][j] = one-way delay in ms from vnodes[i] to vnodes[j]; RTT(i, j) = M[i][j] + M[j][i]
    0 = no added delay; the diagonal is ignored.

It is kept as {(source, destination): delay_us} of the non-zero cells, so that
setting a matrix on some vnodes leaves the others' cells alone and a change
can be applied as the difference with what is there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

from ..errors import ValidationError
from .units import MAX_DELAY_US

Cells = dict[tuple[str, str], int]  # (source, destination) -> one-way delay in microseconds
DELAY_ALLOWED = f"expected a finite number of milliseconds, 0 to {MAX_DELAY_US // 1000}"


def parse_matrix(vnodes: object, matrix: object, known: Sequence[str]) -> Cells:
    """Every cell of ``matrix`` among ``vnodes`` (zeros included, so that they clear), in us.

    Raises:
        ValidationError: unknown or repeated names, not square / not N x N, a value that is
            not a finite number >= 0 (ms). Nothing is changed by the caller before this passes.
    """
    if isinstance(vnodes, str) or not isinstance(vnodes, Sequence):
        raise ValidationError("vnodes", vnodes, "expected a list of vnode names")
    names = list(vnodes)
    for name in names:
        if name not in known:
            raise ValidationError("vnodes", name, f"no such vnode; known: {', '.join(sorted(known)) or 'none'}")
        if names.count(name) > 1:
            raise ValidationError("vnodes", name, "each vnode may appear once")
    if isinstance(matrix, (str, bytes)) or not isinstance(matrix, Sequence) or len(matrix) != len(names):
        raise ValidationError("matrix", _short(matrix), f"expected {len(names)} rows, one per vnode")
    cells: Cells = {}
    for i, row in enumerate(matrix):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or len(row) != len(names):
            raise ValidationError(f"matrix[{i}]", _short(row), f"expected a row of {len(names)} delays in ms")
        for j, value in enumerate(row):
            if i == j:
                continue
            problem = delay_problem(value)
            if problem:
                raise ValidationError(f"matrix[{i}][{j}] ({names[i]} -> {names[j]})", value,
                                      f"{problem}; {DELAY_ALLOWED}")
            cells[(names[i], names[j])] = round(float(value) * 1000)
    return cells


def delay_problem(value: object) -> str | None:
    """Why ``value`` is not a one-way delay in ms (a finite number >= 0); None when it is one."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return "not a number"
    if math.isnan(value):
        return "NaN"
    if not math.isfinite(value):
        return "infinite"
    if float(value) * 1000 > MAX_DELAY_US:
        return f"above {MAX_DELAY_US // 1000} ms (a longer delay only fills the queue)"
    return "negative" if value < 0 else None


def cells_from_frame(frame: Any, known: Sequence[str]) -> Cells:
    """A pandas DataFrame indexed and columned by vnode names (same names, any order)."""
    rows, cols = [str(n) for n in frame.index], [str(n) for n in frame.columns]
    if sorted(rows) != sorted(cols):
        raise ValidationError("latencies", f"rows {rows[:5]}..., columns {cols[:5]}...",
                              "expected the same vnode names as rows and columns")
    ordered = frame.loc[rows, rows]
    values = [[_number(v) for v in row] for row in ordered.itertuples(index=False)]
    return parse_matrix(rows, values, known)


def _number(value: object) -> object:
    """numpy scalars as Python numbers; anything else as given (parse_matrix rejects it)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
