"""Pure helpers of the latency matrix editor: cells typed by hand, filled, random or read from a CSV.

The grid holds what was typed (strings or numbers, object columns) so that a bad value can be shown
and named instead of being refused by the grid; ``delays`` turns it into the float frame that
``p.latencies`` takes. Rules are the platform's own (``model.matrix.delay_problem``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from os import PathLike

import numpy as np
import pandas as pd

from ..errors import ValidationError
from ..model.matrix import DELAY_ALLOWED as ALLOWED
from ..model.matrix import delay_problem

Cell = tuple[str, str]  # (from, to)


def cell_value(value: object) -> float:
    """A typed cell as a number of ms. Raises ValueError saying why it is not one."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("empty")
        try:
            value = float(text)
        except ValueError:
            raise ValueError("not a number") from None
    elif value is None:
        raise ValueError("empty")
    elif isinstance(value, np.generic):
        value = value.item()
    problem = delay_problem(value)
    if problem:
        raise ValueError(problem)
    return float(value)  # type: ignore[arg-type]  # delay_problem accepted it: a Real


def typed_number(value: object) -> object:
    """What a cell should hold: text that reads as a finite number becomes that number ("12.5" -> 12.5,
    "-3" -> -3.0, to be named as negative); other text is kept as typed, to be shown and named. A whole
    number is a float too: the grid sends a typed -3 as text or as a number, and its message must read
    the same (a browser run waited for "-3.0 is negative" and got "-3 is negative")."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    value = value.item() if isinstance(value, np.generic) else value
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def cell_problem(cell: Cell, value: object) -> str | None:
    """The message for a bad off-diagonal cell, naming it; None when it holds a delay."""
    reason = _reason(cell, value)
    return f"{cell[0]} → {cell[1]}: {_plain(value)!r} is {reason}" if reason else None


def problems(frame: pd.DataFrame) -> dict[Cell, str]:
    """Every bad cell of ``frame`` (rows: from, columns: to) with its message."""
    found = {}
    for src, row in zip(frame.index, frame.itertuples(index=False)):
        for dst, value in zip(frame.columns, row):
            message = cell_problem((str(src), str(dst)), value)
            if message:
                found[(str(src), str(dst))] = message
    return found


def delays(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as floats (ms) with the diagonal at 0, ready for ``p.latencies``.

    Raises:
        ValidationError: a cell is not a finite number >= 0 (the first one is named, with the count).
    """
    bad = sorted(problems(frame))
    if bad:
        src, dst = bad[0]
        value = frame.loc[src, dst]
        more = f" ({len(bad) - 1} more bad cells)" if len(bad) > 1 else ""
        raise ValidationError(f"cell {src} -> {dst}", _plain(value), f"{_reason((src, dst), value)}; {ALLOWED}{more}")
    values = [[0.0 if s == d else cell_value(v) for d, v in zip(frame.columns, row)]
              for s, row in zip(frame.index, frame.itertuples(index=False))]
    return pd.DataFrame(values, index=pd.Index(frame.index, name="from"), columns=pd.Index(frame.columns, name="to"))


def filled(names: Sequence[str], value: float) -> pd.DataFrame:
    """Every off-diagonal cell at ``value`` ms."""
    values = np.full((len(names), len(names)), cell_check(value))
    np.fill_diagonal(values, 0.0)
    return pd.DataFrame(values, index=pd.Index(names, name="from"), columns=pd.Index(names, name="to"))


def random_delays(names: Sequence[str], low: float, high: float, seed: int | None = None,
                  symmetric: bool = False, decimals: int = 1) -> pd.DataFrame:
    """Uniform delays in [low, high] ms, rounded to ``decimals``; the same for a given seed."""
    cell_check(low)
    cell_check(high)
    if high < low:
        raise ValidationError("random range", (low, high), "expected low <= high")
    values = np.random.default_rng(seed).uniform(low, high, (len(names), len(names))).round(decimals)
    if symmetric:
        values = np.triu(values, 1) + np.triu(values, 1).T
    np.fill_diagonal(values, 0.0)
    return pd.DataFrame(values, index=pd.Index(names, name="from"), columns=pd.Index(names, name="to"))


def read_csv(source: str | PathLike[str] | bytes, known: Sequence[str]) -> pd.DataFrame:
    """A square CSV (first column and header: vnode names, as written by ``p.latencies.to_csv()``),
    for some or all of ``known``. Bad values are kept, so that the grid shows and names them.

    Raises:
        ValidationError: unreadable, not square, unknown or repeated names.
    """
    try:
        frame = pd.read_csv(io.BytesIO(source) if isinstance(source, bytes) else source, index_col=0)
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
        raise ValidationError("CSV", _name(source), f"could not be read: {exc}") from exc
    rows, cols = [str(n) for n in frame.index], [str(n) for n in frame.columns]
    frame.index, frame.columns = rows, cols
    if sorted(rows) != sorted(cols) or len(set(rows)) != len(rows):
        raise ValidationError("CSV", _name(source), "expected the same vnode names, once each, as rows and columns")
    unknown = [n for n in rows if n not in known]
    if unknown:
        raise ValidationError("CSV", _name(source), f"unknown vnodes: {', '.join(unknown[:5])}")
    return frame.loc[rows, rows]


def cell_check(value: object) -> float:
    """A helper's parameter as a delay. Raises ValidationError."""
    try:
        return cell_value(value)
    except ValueError as exc:
        raise ValidationError("delay", value, f"{exc}; {ALLOWED}") from None


def heat_expression(top: float) -> str:
    """A Vega expression colouring a cell: grey diagonal, red when not a delay, white to blue up to ``top`` ms."""
    top = top if math.isfinite(top) and top > 0 else 1.0
    number = "(+cell.value)"  # JS: numbers and numeric strings; NaN for anything else
    valid = f"cell.value !== null && cell.value !== '' && isFinite({number}) && {number} >= 0"
    shade = f"'hsl(210, 80%, ' + (97 - 37 * min({number} / {top!r}, 1)) + '%)'"
    return f"cell.row == cell.column ? '#e8e8e8' : ({valid} ? {shade} : '#ff8a8a')"


def _reason(cell: Cell, value: object) -> str | None:
    if cell[0] == cell[1]:
        return None  # the diagonal is ignored, as by p.latencies
    try:
        cell_value(value)
    except ValueError as exc:
        return str(exc)
    return None


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value  # shown as -1, not np.int64(-1)


def _name(source: object) -> str:
    return "uploaded file" if isinstance(source, bytes) else str(source)
