"""The ``reqmgmt`` command: demo, diagram, rules, db, remind, dispatch, outbox."""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from . import diagram, verification
from .desk import TABLE_ALIASES, Desk
from .errors import ConfigError, ReqMgmtError, ValidationError
from .hookspecs import hookimpl
from .lifecycle import BUILTIN_LIFECYCLES
from .model import AuditEvent, Notification
from .rules import RuleSet, default_rules, load_rules
from .rules.loader import facts_from_data
from .storage.base import OUTBOX_STATUSES

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
    """The seed procedures end to end, then the report (see :mod:`reqmgmt.demo`)."""
    from .demo import run_demo

    return run_demo(url, out if out is not None else sys.stdout)


def _time(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    if value.utcoffset() is None:
        raise ValidationError(f"--{name}", text, "an ISO time with its zone, e.g. +08:00")
    return value


def _report(args: argparse.Namespace) -> int:
    try:
        since, until = _time("since", args.since), _time("until", args.until)
    except ValueError as exc:
        print(f"reqmgmt report: {exc}", file=sys.stderr)
        return 2
    fancy = _rich_available() and sys.stderr.isatty()
    with Desk.open(args.db, load_entrypoints=not args.no_entrypoints) as desk:
        if fancy:
            from rich.progress import Progress

            from .reports import STEPS

            with Progress(transient=True) as bar:
                task = bar.add_task("report", total=len(STEPS))
                report = desk.report(
                    since=since, until=until, progress=lambda step: bar.advance(task)
                )
        else:
            report = desk.report(since=since, until=until)
    if args.format == "png":
        from .reports import charts

        if not args.out:
            print("reqmgmt report: --format png needs --out DIR", file=sys.stderr)
            return 2
        for path in charts(report, Path(args.out)):
            print(f"wrote {path}")
        return 0
    if args.format == "table" and not args.out and fancy and sys.stdout.isatty():
        from rich.console import Console

        from .reports import rich_tables

        Console().print(*rich_tables(report))
        return 0
    text = {"table": report.table, "csv": report.to_csv, "json": report.to_json}[args.format]()
    if args.out:
        target = Path(args.out)
        target.mkdir(parents=True, exist_ok=True)
        path = target / ("report.txt" if args.format == "table" else f"report.{args.format}")
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    else:
        sys.stdout.write(text)
    return 0


def _rich_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("rich") is not None


def _load(files: Sequence[str], defaults: bool) -> RuleSet:
    if not files:
        return default_rules()
    return load_rules(files, with_defaults=defaults)


def _rules(args: argparse.Namespace) -> int:
    try:
        rules = _load(args.files, not args.no_defaults)
    except ConfigError as err:
        print(f"{len(err.problems)} problem(s) in the rule set:", file=sys.stderr)
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    if args.action == "check":
        print(f"ok: {len(rules.tables)} tables, version {rules.version[:12]}")
        return 0
    if args.action == "explain":
        table_name = TABLE_ALIASES.get(args.kind, args.kind)
        try:
            table = rules.table(table_name)
            with open(args.facts, encoding="utf-8") as fh:
                raw = json.load(fh)
            decision = rules.decide(table_name, facts_from_data(table, raw))
        except (OSError, json.JSONDecodeError) as err:
            print(f"cannot read facts from {args.facts}: {err}", file=sys.stderr)
            return 1
        except ReqMgmtError as err:
            print(str(err), file=sys.stderr)
            return 1
        print(decision.explain(args.lang))
        return 0
    for name in sorted(rules.tables):
        table = rules.tables[name]
        print(f"\n{name}: {table.zh} / {table.en}  (hit {table.hit}; {table.source})")
        rows = [
            [r.id, r.when.source, ", ".join(f"{k}={v}" for k, v in r.then.items()), r.zh, r.clause]
            for r in table.rows
        ]
        print(render_table(["row", "when", "then", "说明", "clause"], rows))
    print(f"\nrule set version {rules.version[:12]}")
    return 0


def _db(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from .storage import migrate

    # Store options (sqlite ?synchronous=...) are reqmgmt's, not the driver's.
    engine = sa.create_engine(sa.engine.make_url(args.url).difference_update_query(["synchronous"]))
    try:
        with engine.begin() as conn:
            head = migrate.head_revision()
            current = migrate.current_revision(conn)
            if args.action == "upgrade":
                if current is None and not migrate.is_empty(conn):
                    print(
                        f"{args.url}: has tables but no reqmgmt revision; not touching it",
                        file=sys.stderr,
                    )
                    return 1
                migrate.upgrade(conn)
                print(f"{args.url}: at revision {head} (current)")
                return 0
            if current is None:
                empty = migrate.is_empty(conn)
                print("none (empty database)" if empty else "none (not a reqmgmt database)")
            else:
                print(f"{current} ({'current' if current == head else 'needs upgrade to ' + head})")
            return 0
    finally:
        engine.dispose()


def _open_worker(args: argparse.Namespace) -> Desk:
    """A Desk for a cron job: the host's plugins come from the ``reqmgmt`` entry points."""
    return Desk.open(args.db, load_entrypoints=not args.no_entrypoints, autodispatch=False)


def _remind(args: argparse.Namespace) -> int:
    now = None
    if args.now:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            print(f"--now {args.now!r}: expected an ISO time like 2026-03-02T09:00+08:00",
                  file=sys.stderr)  # fmt: skip
            return 2
        if now.utcoffset() is None:
            print(f"--now {args.now!r}: give the time zone, e.g. +08:00", file=sys.stderr)
            return 2
    with _open_worker(args) as desk:
        result = desk.run_reminders(now)
        print(f"checked {result.checked}, queued {result.queued}, already queued {result.already}")
        if args.dispatch:
            sent = desk.dispatch()
            print(f"delivered {sent.delivered}, failed {len(sent.failed)}, dead {sent.dead}")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    with _open_worker(args) as desk:
        if not desk.pm.hook.reqmgmt_notify.get_hookimpls():
            print("no reqmgmt_notify plugin is installed (entry-point group 'reqmgmt'); "
                  "nothing can be delivered", file=sys.stderr)  # fmt: skip
            return 1
        sent = desk.dispatch(limit=args.limit)
        print(f"delivered {sent.delivered}, failed {len(sent.failed)}, dead {sent.dead}")
    return 0


def _outbox(args: argparse.Namespace) -> int:
    with _open_worker(args) as desk:
        if args.retry or args.retry_dead:
            try:
                count = desk.retry(None if args.retry_dead else args.retry)
            except ReqMgmtError as exc:
                print(exc, file=sys.stderr)
                return 1
            print(f"{count} dead letter(s) queued again")
            return 0
        with desk.store.transaction() as tx:
            entries = tx.entries(status=args.status, limit=args.limit)
        rows = [
            [
                e.notification.key,
                e.status,
                str(e.attempts),
                e.next_attempt_at.isoformat(timespec="seconds") if e.next_attempt_at else "-",
                (e.last_error or "-")[:60],
            ]
            for e in entries
        ]
        print(render_table(["key", "status", "attempts", "next attempt", "last error"], rows))
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
    p_demo.add_argument(
        "--db", default="sqlite:///reqmgmt.db", help="store URL (default sqlite:///reqmgmt.db)"
    )
    p_diag = sub.add_parser("diagram", help="print or write lifecycle diagrams")
    p_diag.add_argument("kind", nargs="?", help="lifecycle kind (default: all)")
    p_diag.add_argument("--format", choices=["mermaid", "dot", "markdown"], default="mermaid")
    p_diag.add_argument("--write", metavar="DIR", help="write DIR/<kind>.md reference pages")
    p_rules = sub.add_parser("rules", help="check, explain and show rule sets")
    rules_sub = p_rules.add_subparsers(dest="action", required=True)
    for action, text in (
        ("check", "check rule files (exit 1 listing every mistake)"),
        ("explain", "decide one fact set and say why"),
        ("show", "print the tables"),
    ):
        p = rules_sub.add_parser(action, help=text)
        p.add_argument("files", nargs="*" if action != "check" else "+", metavar="FILE")
        p.add_argument(
            "--no-defaults", action="store_true", help="do not merge over the default rule set"
        )
        if action == "explain":
            p.add_argument("--kind", required=True, help="table name or contract/route/...")
            p.add_argument("--facts", required=True, help="JSON file of facts")
            p.add_argument("--lang", choices=["en", "zh"], default="en")
    p_db = sub.add_parser("db", help="database schema: current revision, upgrade")
    db_sub = p_db.add_subparsers(dest="action", required=True)
    for action, text in (("current", "print the schema revision"), ("upgrade", "migrate")):
        db_sub.add_parser(action, help=text).add_argument("url", help="database URL")
    p_remind = sub.add_parser("remind", help="queue due reminders and escalations (cron)")
    p_remind.add_argument("--now", help="the time of the pass (ISO, with zone); default now")
    p_remind.add_argument("--dispatch", action="store_true", help="then deliver the outbox")
    p_dispatch = sub.add_parser("dispatch", help="deliver pending notifications (cron)")
    p_dispatch.add_argument("--limit", type=int, help="at most this many in this pass")
    p_outbox = sub.add_parser("outbox", help="list the outbox, retry dead letters")
    p_outbox.add_argument("--status", choices=OUTBOX_STATUSES, default="dead")
    p_outbox.add_argument("--limit", type=int, default=100, help="rows listed (default 100)")
    p_outbox.add_argument("--retry", nargs="+", metavar="KEY", help="queue these dead letters")
    p_outbox.add_argument("--retry-dead", action="store_true", help="queue every dead letter")
    p_report = sub.add_parser("report", help="management report: counts, times, returns")
    p_report.add_argument("--since", help="from this time (ISO, with zone)")
    p_report.add_argument("--until", help="up to this time, excluded (ISO, with zone)")
    p_report.add_argument(
        "--format",
        choices=["table", "csv", "json", "png"],
        default="table",
        help="table (rich on a terminal when installed), csv, json, or png charts (--out)",
    )
    p_report.add_argument("--out", metavar="DIR", help="write DIR/report.<ext> instead")
    for p in (p_remind, p_dispatch, p_outbox, p_report):
        p.add_argument("--db", required=True, help="store URL, e.g. sqlite:///reqmgmt.db")
        p.add_argument(
            "--no-entrypoints", action="store_true", help="do not load the host's plugins"
        )
    verification.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ReqMgmtError as exc:
        print(f"reqmgmt {args.command}: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "verify":
        return verification.main(args)
    if args.command == "remind":
        return _remind(args)
    if args.command == "report":
        return _report(args)
    if args.command == "dispatch":
        return _dispatch(args)
    if args.command == "outbox":
        return _outbox(args)
    if args.command == "db":
        return _db(args)
    if args.command == "demo":
        return demo(args.db)
    if args.command == "rules":
        return _rules(args)
    return _diagram(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
