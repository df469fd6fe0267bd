"""The ``reqmgmt`` command: ``demo`` and ``diagram``."""

from __future__ import annotations

import argparse
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from . import diagram
from .desk import Desk
from .hookspecs import hookimpl
from .lifecycle import BUILTIN_LIFECYCLES
from .model import Actor, AuditEvent, Customer, Notification

__all__ = ["main", "render_table"]


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


def history_table(desk: Desk, ref: str) -> str:
    """The audit trail of ``ref`` as a table with zh-CN and English state labels."""
    events: Sequence[AuditEvent] = desk.history(ref)
    engine = desk.engine(events[0].record_kind)
    labels = engine.labels
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


class _PrintingNotifier:
    """Demo plugin: notifications go to a list printed at the end."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    @hookimpl
    def reqmgmt_notify(self, notification: Notification) -> None:
        self.sent.append(notification)


def demo(url: str, out: TextIO | None = None) -> int:
    """Walk one customer requirement from fax receipt to completion."""
    stream = out if out is not None else sys.stdout
    notifier = _PrintingNotifier()
    clerk = Actor("zhang.wei", "张伟 (发货部)", departments={"shipping"}, roles={"sales"})
    engineer = Actor("li.na", "李娜 (工程部)", departments={"engineering"})
    warehouse = Actor("wang.fang", "王芳 (货仓部)", departments={"materials"})
    production = Actor(
        "liu.yang", "刘洋 (生产部)", departments={"production"}, roles={"production"}
    )
    customer = Customer("HK-001", "香港客户 Hong Kong Trading Ltd", category="important")
    with Desk.open(url, plugins=[notifier]) as desk:
        req = desk.requirements.receive(
            customer=customer,
            description="冲压支架 10,000 pcs, 镀锌 / stamped brackets, zinc plated",
            channel="fax",
            kind="order",
            priority="high",
            actor=clerk,
        )
        ref = req.ref
        desk.fire(ref, "clarify", actor=clerk, note="镀层厚度? / plating thickness?")
        desk.fire(ref, "clarified", actor=clerk, note="8-12 µm, per customer fax")
        desk.fire(ref, "start_evaluation", actor=clerk)
        desk.sign(
            ref, department="engineering", actor=engineer, opinion="现有模具可做 existing die"
        )
        desk.sign(ref, department="materials", actor=warehouse, opinion="原材料充足 stock ok")
        desk.sign(ref, department="production", actor=production, opinion="第12周 week 12")
        desk.fire(ref, "accept", actor=clerk, delivery_plan="2 批: 第12周, 第14周 / 2 lots")
        desk.fire(ref, "start", actor=production)
        desk.fire(ref, "complete", actor=production, note="全部出货 shipped in full")
        final = desk.fire(ref, "close", actor=clerk)
        check = desk.verify_history(ref)
        print(f"客户需求 customer requirement {ref}: {final.state}", file=stream)
        print(history_table(desk, ref), file=stream)
        print(
            f"\naudit chain: {'intact' if check else check.problem} ({check.events} events); "
            f"notifications delivered: {len(notifier.sent)}",
            file=stream,
        )
    return 0


def _diagram(args: argparse.Namespace) -> int:
    kinds = [args.kind] if args.kind else sorted(BUILTIN_LIFECYCLES)
    for kind in kinds:
        if kind not in BUILTIN_LIFECYCLES:
            print(
                f"unknown lifecycle {kind!r}; known: {', '.join(sorted(BUILTIN_LIFECYCLES))}",
                file=sys.stderr,
            )
            return 2
    render = {"mermaid": diagram.mermaid, "dot": diagram.graphviz, "markdown": diagram.markdown}
    for kind in kinds:
        lc = BUILTIN_LIFECYCLES[kind]
        if args.write:
            target = Path(args.write) / f"{kind}.md"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(diagram.markdown(lc), encoding="utf-8")
            print(f"wrote {target}")
        else:
            sys.stdout.write(render[args.format](lc))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``reqmgmt`` command."""
    parser = argparse.ArgumentParser(prog="reqmgmt", description="Customer-requirement management")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="walk a customer requirement through its lifecycle")
    p_demo.add_argument("--db", default="memory://", help="store URL (default memory://)")
    p_diag = sub.add_parser("diagram", help="print or write lifecycle diagrams")
    p_diag.add_argument("kind", nargs="?", help="lifecycle kind (default: all)")
    p_diag.add_argument("--format", choices=["mermaid", "dot", "markdown"], default="mermaid")
    p_diag.add_argument("--write", metavar="DIR", help="write DIR/<kind>.md reference pages")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args.db)
    return _diagram(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
