"""Plain-text rendering shared by the command line and the demo.

Tables line up Chinese and Latin text (a Chinese character takes two columns
in a terminal); :func:`history_table` shows an audit trail with the states'
zh-CN and English labels.  Nothing here reads a store or a Desk: callers
pass what is shown.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

from .lifecycle.base import State
from .model import AuditEvent

__all__ = ["history_table", "render_table"]


def _width(text: str) -> int:
    # Chinese characters take two columns in a terminal.
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table that lines up Chinese and Latin text."""
    widths = [_width(h) for h in headers]
    for row in rows:
        widths = [max(w, _width(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = (c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True))
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def history_table(events: Sequence[AuditEvent], labels: Mapping[str, State]) -> str:
    """An audit trail as a table with zh-CN and English state labels (``labels``: the engine's)."""
    rows = []
    for e in events:
        frm = labels[e.from_state] if e.from_state else None
        to = labels[e.to_state]
        rows.append(
            [
                str(e.version),
                e.at.strftime("%Y-%m-%d %H:%M:%S"),
                e.event,
                f"{frm.zh} {frm.en}" if frm else "-",
                f"{to.zh} {to.en}",
                e.actor_name or e.actor_id,
                (e.note or "")[:40],
            ]
        )
    return render_table(["v", "at", "event", "from", "to", "by", "note"], rows)
