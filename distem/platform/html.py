"""Notebook display: pure object -> HTML renderers; every value escaped, a text version kept inside."""

from __future__ import annotations

import html as _html
import logging
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)
_STYLE = ("<style>.distem details{margin:2px 0}.distem summary{cursor:pointer;font-weight:600}"
          ".distem pre.distem-text{display:none}</style>")


def pre(text: str) -> str:
    return f"<pre>{_html.escape(text)}</pre>"


def _section(title: str, frame: pd.DataFrame, open_: bool = False) -> str:
    body = frame.to_html(escape=True, border=0) if len(frame) else "<i>none</i>"
    return (f"<details{' open' if open_ else ''}><summary>{_html.escape(title)} ({len(frame)})</summary>"
            f"{body}</details>")


def platform_html(p: Any) -> str:
    """A distem.Platform (not imported here: it imports this module)."""
    try:
        head = _html.escape(repr(p))
        if p.pool.closed:  # its model still lists what it had: not what the pnodes hold
            return (f"<div class='distem'><b>{head}</b><br><i>closed: its vnodes, vnetworks and cgroups were "
                    "removed from every pnode (what was measured stays: p.events, p.metrics)</i></div>")
        return (f"{_STYLE}<div class='distem'><b>{head}</b>"
                f"<pre class='distem-text'>{head}</pre>"
                + _section("pnodes", p.pnodes)
                + _section("vnetworks", p.vnetworks, True)
                + _section("vnodes", p.vnodes, True)
                + _section("vifaces", p.vifaces)
                + "</div>")
    except Exception:  # a broken display must never break the notebook
        log.exception("rendering the platform failed")
        return pre(repr(p))


def dict_html(title: str, data: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th style='text-align:left'>{_html.escape(str(k))}</th>"
                   f"<td>{_html.escape(str(v))}</td></tr>" for k, v in data.items())
    return f"<div class='distem'><b>{_html.escape(title)}</b><table>{rows}</table></div>"


def placement_html(head: str, vnodes: pd.DataFrame, pnodes: pd.DataFrame, links: pd.DataFrame) -> str:
    try:
        return (f"{_STYLE}<div class='distem'><b>{_html.escape(head)}</b>"
                f"<pre class='distem-text'>{_html.escape(head)}</pre>"
                + _section("vnodes", vnodes, True) + _section("pnodes", pnodes, True) + _section("links", links)
                + "</div>")
    except Exception:  # a broken display must never break the notebook
        log.exception("rendering the placement failed")
        return pre(head)
