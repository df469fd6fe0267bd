"""The ``reqmgmt`` command: demo, diagram, rules, db, remind, dispatch, outbox, form, report,
doctor, messages.

Each command is a function registered with :func:`reqmgmt.commandline.command`;
the options every command shares (``--json``, ``-v``, ``--plugin``, ...), the
exit codes and the error handling live in :mod:`reqmgmt.commandline`.  A
reading command opens an existing database only (``ctx.desk()``).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from . import diagram
from .commandline import Context, Exit, Outcome, UsageError, command, group, run
from .desk import TABLE_ALIASES
from .errors import ConfigError, NoDatabase
from .hookspecs import hookimpl
from .lifecycle import BUILTIN_LIFECYCLES
from .model import Notification
from .plugins import rule_functions
from .rendering import _width, render_table  # noqa: F401  (_width: read here by tests)
from .rules import RuleSet, default_rules, load_rules
from .rules.loader import facts_from_data
from .storage.base import OUTBOX_STATUSES
from .verification import Progress, anchor_writer, place_anchor, read_anchors

__all__ = ["main", "render_table"]

log = logging.getLogger("reqmgmt")


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


def _time(option: str, text: str | None) -> datetime | None:
    """An ISO time with its zone from ``--option``; a UsageError otherwise (exit 2)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--{option} {text!r}: expected an ISO time like 2026-03-02T09:00+08:00"
        ) from None
    if value.utcoffset() is None:
        raise UsageError(
            f"--{option} {text!r}: give the time zone: an ISO time with its zone, e.g. +08:00"
        )
    return value


def _db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", required=True, help="store URL of an existing database, e.g. sqlite:///reqmgmt.db"
    )


def _rules_option(p: argparse.ArgumentParser) -> None:
    """``--rules FILE`` (repeatable): the host's rule files, as the host's own Desk loads them.

    A worker without them would decide with the default rules: escalations on
    national holidays instead of the company's calendar (调休, shutdowns), reports
    classified by other thresholds.
    """
    p.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="FILE",
        help="a rule file merged over the defaults, as the host loads it (its [calendar] "
        "decides the working days); repeatable",
    )


# --- demo, diagram ----------------------------------------------------------------------------


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", default="sqlite:///reqmgmt.db", help="store URL (default sqlite:///reqmgmt.db)"
    )


@command("demo", help="walk the seed procedures end to end, then print the report",
         arguments=_demo_arguments)  # fmt: skip
def _demo(ctx: Context) -> Outcome:
    out = io.StringIO() if ctx.json else sys.stdout
    code = demo(ctx.args.db, out)
    text = out.getvalue() if isinstance(out, io.StringIO) else ""
    broken = code != 0
    return Outcome(
        data={"db": ctx.args.db, "output": text.splitlines(), "audit_chains_intact": not broken},
        code=Exit.ATTENTION if broken else Exit.OK,
    )


def _diagram_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", help="lifecycle kind (default: all)")
    p.add_argument("--format", choices=["mermaid", "dot", "markdown"], default="mermaid")
    p.add_argument("--write", metavar="DIR", help="write DIR/<kind>.md reference pages")
    p.add_argument(
        "--recipients",
        nargs="?",
        const="-",
        metavar="FILE",
        help="print the table of notification recipients (default rules), or refresh it "
        "between its markers in FILE (docs/hooks.md)",
    )


@command("diagram", help="print or write lifecycle diagrams", arguments=_diagram_arguments)
def _diagram(ctx: Context) -> Outcome:
    args = ctx.args
    if args.recipients is not None:
        return _recipients(args.recipients)
    kinds = [args.kind] if args.kind else sorted(BUILTIN_LIFECYCLES)
    for kind in kinds:
        if kind not in BUILTIN_LIFECYCLES:
            raise UsageError(
                f"unknown lifecycle {kind!r}; known: {', '.join(sorted(BUILTIN_LIFECYCLES))}"
            )
    render = {"mermaid": diagram.mermaid, "dot": diagram.graphviz, "markdown": diagram.markdown}
    texts: dict[str, str] = {}
    written: list[str] = []
    for kind in kinds:
        lc = BUILTIN_LIFECYCLES[kind]
        if args.write:
            target = Path(args.write) / f"{kind}.md"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(diagram.markdown(lc), encoding="utf-8")
            written.append(str(target))
        else:
            texts[kind] = render[args.format](lc)
    if args.write:
        return Outcome(data={"written": written}, text="\n".join(f"wrote {w}" for w in written))
    return Outcome(data=texts, text="".join(texts.values()))


def _recipients(target: str) -> Outcome:
    from .rules import default_rules

    table = diagram.recipients(
        [BUILTIN_LIFECYCLES[k] for k in sorted(BUILTIN_LIFECYCLES)], default_rules()
    )
    if target == "-":
        return Outcome(data={"recipients": table.splitlines()}, text=table)
    path = Path(target)
    try:
        page = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--recipients {target}: cannot read it ({exc.strerror})") from exc
    begin, end = page.find(diagram.RECIPIENTS_BEGIN), page.find(diagram.RECIPIENTS_END)
    if begin < 0 or end < begin:
        raise UsageError(
            f"--recipients {target}: the page has no {diagram.RECIPIENTS_BEGIN!r} ... "
            f"{diagram.RECIPIENTS_END!r} markers to write between"
        )
    end += len(diagram.RECIPIENTS_END) + 1
    path.write_text(page[:begin] + table + page[end:], encoding="utf-8")
    return Outcome(data={"written": [target]}, text=f"wrote {target}")


def _messages_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--write", metavar="FILE", help="write the catalogue page (docs/errors.md)")


@command(
    "messages",
    help="the reason and error codes with their English and Chinese texts",
    arguments=_messages_arguments,
)
def _messages(ctx: Context) -> Outcome:
    from .i18n import CATALOGUE, catalogue_markdown

    page = catalogue_markdown()
    if ctx.args.write:
        target = Path(ctx.args.write)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page, encoding="utf-8")
        return Outcome(data={"written": [str(target)]}, text=f"wrote {target}")
    codes = {c: {"en": t.en, "zh": t.zh, "group": t.group} for c, t in CATALOGUE.items()}
    return Outcome(data=codes, text=page)


# --- rules ------------------------------------------------------------------------------------

group("rules", help="check, explain, show and import (DMN) rule sets")


def _rules_arguments(files: str) -> Any:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("files", nargs=files, metavar="FILE")
        p.add_argument(
            "--no-defaults", action="store_true", help="do not merge over the default rule set"
        )

    return add


def _explain_arguments(p: argparse.ArgumentParser) -> None:
    _rules_arguments("*")(p)
    p.add_argument("--kind", required=True, help="table name or contract/route/...")
    p.add_argument("--facts", required=True, help="JSON file of facts")
    p.add_argument("--lang", choices=["en", "zh"], default="en")


def _load(ctx: Context) -> RuleSet:
    """The rule files with the rule functions of ``--plugin`` and the entry-point plugins."""
    functions = rule_functions(ctx.plugin_manager())
    if not ctx.args.files:
        return default_rules(functions)
    return load_rules(ctx.args.files, functions=functions, with_defaults=not ctx.args.no_defaults)


def _rule_problems(ctx: Context) -> RuleSet | Outcome:
    try:
        return _load(ctx)
    except ConfigError as err:
        lines = [f"{len(err.problems)} problem(s) in the rule set:"]
        lines += [f"  - {problem}" for problem in err.problems]
        if not ctx.json:
            print("\n".join(lines), file=sys.stderr)
        return Outcome(data={"ok": False, "problems": list(err.problems)}, code=Exit.ERROR)


@command("rules check", help="check rule files (exit 1 listing every mistake)",
         arguments=_rules_arguments("+"))  # fmt: skip
def _rules_check(ctx: Context) -> Outcome:
    rules = _rule_problems(ctx)
    if isinstance(rules, Outcome):
        return rules
    return Outcome(
        data={"ok": True, "tables": sorted(rules.tables), "version": rules.version},
        text=f"ok: {len(rules.tables)} tables, version {rules.version[:12]}",
    )


@command("rules explain", help="decide one fact set and say why", arguments=_explain_arguments)
def _rules_explain(ctx: Context) -> Outcome:
    args = ctx.args
    rules = _rule_problems(ctx)
    if isinstance(rules, Outcome):
        return rules
    table_name = TABLE_ALIASES.get(args.kind, args.kind)
    table = rules.table(table_name)
    try:
        with open(args.facts, encoding="utf-8") as fh:
            raw = json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"facts file {args.facts}", f"cannot read it: {err}") from None
    decision = rules.decide(table_name, facts_from_data(table, raw))
    return Outcome(
        data={
            "table": table_name,
            "outcome": _plain(decision.outcome),
            "matched": list(decision.matched),
            "rules_version": rules.version,
            "explanation": decision.explain(args.lang),
        },
        text=decision.explain(args.lang),
    )


def _plain(value: Any) -> Any:
    """Read-only mappings and tuples of a decision as JSON-ready dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@command("rules show", help="print the tables", arguments=_rules_arguments("*"))
def _rules_show(ctx: Context) -> Outcome:
    rules = _rule_problems(ctx)
    if isinstance(rules, Outcome):
        return rules
    parts: list[str] = []
    data: dict[str, Any] = {"version": rules.version, "tables": {}}
    for name in sorted(rules.tables):
        table = rules.tables[name]
        parts.append(f"\n{name}: {table.zh} / {table.en}  (hit {table.policy}; {table.source})")
        for output, values in (table.output_values or {}).items():
            parts.append(f"  output_values {output}: {' > '.join(str(v) for v in values)}")
        rows = [
            [r.id, r.when.source, ", ".join(f"{k}={v}" for k, v in r.then.items()), r.zh, r.clause]
            for r in table.rows
        ]
        parts.append(render_table(["row", "when", "then", "说明", "clause"], rows))
        data["tables"][name] = {
            "zh": table.zh,
            "en": table.en,
            "hit": table.hit,
            "aggregation": table.aggregation,
            "output_values": _plain(table.output_values or {}),
            "source": str(table.source),
            "rows": [
                {"id": r.id, "when": r.when.source, "then": _plain(r.then), "zh": r.zh}
                | {"clause": r.clause}
                for r in table.rows
            ],
        }
    parts.append(f"\nrule set version {rules.version[:12]}")
    return Outcome(data=data, text="\n".join(parts))


def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE.dmn", help="a DMN file of decision tables")
    p.add_argument("--out", metavar="FILE.toml", help="write the TOML there (default: stdout)")


@command("rules import", help="write a DMN file's decision tables as a TOML rule file",
         arguments=_import_arguments)  # fmt: skip
def _rules_import(ctx: Context) -> Outcome:
    from .rules.dmn import dmn_to_toml

    args = ctx.args
    text = dmn_to_toml(args.file)  # ConfigError (exit 1) names the file and element refused
    # The written TOML must load as it stands: checked before anything is written.
    try:
        rules = load_rules(tomllib.loads(text))
    except ConfigError as err:
        shown = f"{args.file} as TOML"
        raise ConfigError(
            f"rules import {args.file}", [p.replace("<dict #1>", shown, 1) for p in err.problems]
        ) from None
    tables = sorted(rules.tables)
    if args.out is None:
        return Outcome(data={"tables": tables, "toml": text}, text=text.rstrip("\n"))
    try:
        with open(args.out, "x", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as err:
        raise ConfigError(f"--out {args.out}", f"cannot write it: {err.strerror or err}") from None
    return Outcome(
        data={"tables": tables, "out": args.out},
        text=f"wrote {len(tables)} table(s) to {args.out}: {', '.join(tables)}",
    )


# --- db ---------------------------------------------------------------------------------------

group("db", help="database schema: current revision, upgrade (or its SQL)")


def _url_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", help="database URL")


def _upgrade_arguments(p: argparse.ArgumentParser) -> None:
    _url_argument(p)
    p.add_argument(
        "--sql",
        action="store_true",
        help="print the migration SQL for a DBA instead of running it (nothing is changed)",
    )
    p.add_argument(
        "--from",
        dest="start",
        metavar="REV",
        help="with --sql: the database's revision ('none' for an empty one); default: read it",
    )


def _revision(url: str) -> tuple[bool, str | None]:
    """``(empty, revision)`` of the existing database at ``url``; creates nothing."""
    from .storage import migrate
    from .storage.sql import connecting, make_engine

    engine = make_engine(url, create=False)
    try:
        with connecting(url), engine.connect() as conn:
            return migrate.schema_state(conn)
    finally:
        engine.dispose()


@command("db current", help="print the schema revision", arguments=_url_argument)
def _db_current(ctx: Context) -> Outcome:
    from .storage.migrate import HEAD_REVISION
    from .storage.sql import shown_url

    url = ctx.args.url
    empty, current = _revision(url)
    if empty:
        raise NoDatabase(shown_url(url), "the database has no tables")
    if current is None:
        raise ConfigError(f"database {shown_url(url)}", "has tables but no reqmgmt revision")
    state = "current" if current == HEAD_REVISION else f"needs upgrade to {HEAD_REVISION}"
    return Outcome(
        data={"revision": current, "head": HEAD_REVISION, "current": current == HEAD_REVISION},
        text=f"{current} ({state})",
        code=Exit.OK if current == HEAD_REVISION else Exit.ATTENTION,
    )


@command("db upgrade", help="migrate the schema to this reqmgmt's (creates a new database)",
         arguments=_upgrade_arguments)  # fmt: skip
def _db_upgrade(ctx: Context) -> Outcome:
    from .storage import migrate
    from .storage.sql import connecting, make_engine, shown_url

    url = ctx.args.url
    shown = shown_url(url)
    if ctx.args.sql:
        return _upgrade_sql(ctx, url)
    if ctx.args.start:
        raise UsageError("--from goes with --sql only")
    engine = make_engine(url, create=True)
    try:
        with connecting(url), engine.begin() as conn:
            empty, current = migrate.schema_state(conn)
            if current is None and not empty:
                raise ConfigError(f"database {shown}", "has tables but no reqmgmt revision; "
                                  "not touching it")  # fmt: skip
            if current != migrate.HEAD_REVISION:
                log.info("upgrading %s from %s to %s", shown, current, migrate.HEAD_REVISION)
                migrate.upgrade(conn)
    finally:
        engine.dispose()
    return Outcome(
        data={"revision": migrate.HEAD_REVISION, "was": current},
        text=f"{shown}: at revision {migrate.HEAD_REVISION} (current)",
    )


def _upgrade_sql(ctx: Context, url: str) -> Outcome:
    import sqlalchemy as sa

    from .storage import migrate

    start: str | None = ctx.args.start
    if start is None:
        try:
            start = _revision(url)[1]
        except NoDatabase:
            start = None  # a database still to create: the whole schema
    elif start.lower() == "none":
        start = None
    try:
        dialect = sa.engine.make_url(url).get_backend_name()
    except sa.exc.ArgumentError as exc:
        raise UsageError(f"{url!r}: {exc}") from None
    if dialect not in ("sqlite", "postgresql"):
        raise UsageError(f"{url!r}: supported: sqlite and postgresql")
    out = io.StringIO()
    if start != migrate.HEAD_REVISION:
        migrate.upgrade_sql(dialect, out, start)
    sql = out.getvalue() or f"-- already at revision {migrate.HEAD_REVISION}: nothing to do\n"
    return Outcome(
        data={"dialect": dialect, "from": start, "to": migrate.HEAD_REVISION, "sql": sql},
        text=sql,
    )


# --- workers: remind, dispatch, outbox --------------------------------------------------------


def _remind_arguments(p: argparse.ArgumentParser) -> None:
    _db_option(p)
    _rules_option(p)
    p.add_argument("--now", help="the time of the pass (ISO, with zone); default now")
    p.add_argument("--dispatch", action="store_true", help="then deliver the outbox")


def _failures(failed: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"ref": ref, "reason": reason} for ref, reason in failed]


def _failure_lines(failed: Sequence[tuple[str, str]]) -> str:
    return "".join(f"\n  failed {ref}: {reason}" for ref, reason in failed)


def _sent(sent: Any) -> tuple[dict[str, Any], str, Exit]:
    data = {
        "delivered": sent.delivered,
        "failed": len(sent.failed),
        "dead": sent.dead,
        "failures": _failures(sent.failed),
    }
    text = f"delivered {sent.delivered}, failed {len(sent.failed)}, dead {sent.dead}"
    log.info("dispatch: %s", text)
    text += _failure_lines(sent.failed)
    return data, text, Exit.ATTENTION if sent.failed or sent.dead else Exit.OK


@command("remind", help="queue due reminders and escalations (cron)", arguments=_remind_arguments)
def _remind(ctx: Context) -> Outcome:
    now = _time("now", ctx.args.now)
    with ctx.desk() as desk:
        result = desk.run_reminders(now)
        text = f"checked {result.checked}, queued {result.queued}, already queued {result.already}"
        log.info("remind: %s", text)
        data: dict[str, Any] = {
            "checked": result.checked,
            "queued": result.queued,
            "already": result.already,
        }
        code = Exit.OK
        if result.failed:  # records the pass could not handle: logged, listed, skipped
            data["failed"] = _failures(result.failed)
            text += _failure_lines(result.failed)
            code = Exit.ATTENTION
        if ctx.args.dispatch:
            data["dispatch"], line, sent_code = _sent(desk.dispatch())
            text += "\n" + line
            code = max(code, sent_code)
    return Outcome(data=data, text=text, code=code)


@command(
    "compact",
    help="sum the report's summary delta rows (cron, beside remind)",
    arguments=_db_option,
)
def _compact(ctx: Context) -> Outcome:
    from .reports import compact

    with ctx.desk() as desk:
        before = compact(desk.store)
    return Outcome(data={"rows_before": before}, text=f"compacted {before} summary rows")


def _dispatch_arguments(p: argparse.ArgumentParser) -> None:
    _db_option(p)
    _rules_option(p)
    p.add_argument("--limit", type=int, help="at most this many in this pass")


@command("dispatch", help="deliver pending notifications (cron)", arguments=_dispatch_arguments)
def _dispatch(ctx: Context) -> Outcome:
    with ctx.desk() as desk:
        if not desk.pm.hook.reqmgmt_notify.get_hookimpls():
            raise ConfigError(
                "plugins",
                "no reqmgmt_notify plugin is installed (entry-point group 'reqmgmt', or "
                "--plugin MODULE:ATTR); nothing can be delivered",
            )
        data, text, code = _sent(desk.dispatch(limit=ctx.args.limit))
    return Outcome(data=data, text=text, code=code)


def _outbox_arguments(p: argparse.ArgumentParser) -> None:
    _db_option(p)
    p.add_argument("--status", choices=OUTBOX_STATUSES, default="dead")
    p.add_argument("--limit", type=int, default=100, help="rows listed (default 100)")
    p.add_argument("--retry", nargs="+", metavar="KEY", help="queue these dead letters")
    p.add_argument("--retry-dead", action="store_true", help="queue every dead letter")


@command("outbox", help="list the outbox (exit 3 when it lists dead letters), retry dead letters",
         arguments=_outbox_arguments)  # fmt: skip
def _outbox(ctx: Context) -> Outcome:
    args = ctx.args
    with ctx.desk() as desk:
        if args.retry or args.retry_dead:
            count = desk.retry(None if args.retry_dead else args.retry)
            return Outcome(data={"queued": count}, text=f"{count} dead letter(s) queued again")
        with desk.store.transaction() as tx:
            entries = tx.entries(status=args.status, limit=args.limit)
    data: list[dict[str, Any]] = [
        {
            "key": e.notification.key,
            "status": e.status,
            "attempts": e.attempts,
            "next_attempt_at": e.next_attempt_at.isoformat() if e.next_attempt_at else None,
            "last_error": e.last_error,
        }
        for e in entries
    ]
    rows = [
        [
            d["key"],
            d["status"],
            str(d["attempts"]),
            d["next_attempt_at"][:19] if d["next_attempt_at"] else "-",
            (d["last_error"] or "-")[:60],
        ]
        for d in data
    ]
    dead = args.status == "dead" and bool(entries)
    return Outcome(
        data=data,
        text=render_table(["key", "status", "attempts", "next attempt", "last error"], rows),
        code=Exit.ATTENTION if dead else Exit.OK,
    )


# --- doctor ---------------------------------------------------------------------------------


def _doctor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="store URL of the database to check (never created or changed)")
    p.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="FILE",
        help="a rule file merged over the defaults, as the host loads it; repeatable",
    )
    p.add_argument(
        "--today",
        type=_day,
        help="the day the calendar check counts from (YYYY-MM-DD; default today)",
    )


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a date like 2026-12-01") from None


@command("doctor", help="check the install, database, rules, plugins and calendar; exit 3 "
         "on warnings, 1 on errors", arguments=_doctor_arguments)  # fmt: skip
def _doctor(ctx: Context) -> Outcome:
    from .doctor import diagnose

    args = ctx.args
    findings = diagnose(
        url=args.db,
        rule_files=args.rules,
        plugins=ctx.plugins,
        load_entrypoints=ctx.entrypoints,
        today=args.today,
    )
    statuses = {f.status for f in findings}
    code = Exit.ERROR if "error" in statuses else Exit.ATTENTION if "warn" in statuses else Exit.OK
    lines = []
    for f in findings:
        lines.append(f"{f.status:<5} {f.area:<8} {f.what}")
        if f.fix and f.status != "ok":
            lines.append(f"{'':<14} fix: {f.fix}")
    counts = {s: sum(f.status == s for f in findings) for s in ("ok", "warn", "error")}
    lines.append(f"{counts['error']} error(s), {counts['warn']} warning(s), {counts['ok']} ok")
    return Outcome(
        data={
            "ok": code == Exit.OK,
            "exit": int(code),
            "findings": [
                {"area": f.area, "status": f.status, "what": f.what, "fix": f.fix} for f in findings
            ],
        },
        text="\n".join(lines),
        code=code,
    )


# --- verify -----------------------------------------------------------------------------------


def _verify_arguments(p: argparse.ArgumentParser) -> None:
    _db_option(p)
    p.add_argument(
        "--anchor",
        metavar="FILE",
        help="check every chain against the heads anchored in FILE; when FILE does not "
        "exist, write the heads there (only when everything verifies)",
    )
    p.add_argument(
        "--write-anchor",
        metavar="NEW",
        help="after checking, write the current heads to NEW, a new file (never "
        "overwritten; only when everything verifies)",
    )
    p.add_argument("--batch", type=int, default=200, help="records per transaction (200)")


def _progress(enabled: bool) -> tuple[Progress | None, Callable[[], None]]:
    """A progress bar on stderr: rich's when installed, else a plain counter line."""
    if not enabled:
        return None, lambda: None
    try:
        from rich.progress import Progress as RichProgress
    except ImportError:

        def plain(done: int, total: int | None) -> None:
            of = f"/{total}" if total is not None else ""
            sys.stderr.write(f"\rverified {done}{of} records")
            sys.stderr.flush()

        def end() -> None:
            sys.stderr.write("\n")

        return plain, end
    bar = RichProgress(transient=True)
    bar.start()
    task = bar.add_task("verifying", total=None)

    def update(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    return update, bar.stop


@command("verify", help="verify every record's audit chain and columns (cron); exit 3 if "
         "anything is broken", arguments=_verify_arguments)  # fmt: skip
def _verify(ctx: Context) -> Outcome:
    args = ctx.args
    if args.batch < 1:
        raise UsageError(f"--batch {args.batch}: give a positive number of records")
    anchor = Path(args.anchor) if args.anchor else None
    new = Path(args.write_anchor) if args.write_anchor else None
    anchors: dict[str, tuple[int, str]] | None = None
    if anchor is not None and anchor.exists():
        anchors = read_anchors(anchor)
    elif anchor is not None:
        if new is not None:
            raise UsageError(
                f"--anchor {anchor} does not exist; give --write-anchor only with an "
                "existing anchor"
            )
        new, anchor = anchor, None  # no anchor yet: this run writes it
    if new is not None and (new.exists() or new.with_name(new.name + ".partial").exists()):
        raise ConfigError(f"anchor file {str(new)!r}", "exists; anchors are never overwritten")
    progress, done = _progress(sys.stderr.isatty() and not ctx.json)
    try:
        with ctx.desk() as desk:
            if new is None:
                report = desk.verify_all(progress=progress, batch_size=args.batch, anchors=anchors)
            else:
                with anchor_writer(new) as head:
                    report = desk.verify_all(
                        progress=progress, batch_size=args.batch, anchors=anchors, on_head=head
                    )
                place_anchor(new, keep=bool(report))
    finally:
        done()
    written = str(new) if new is not None and report else None
    data = {
        "checked": report.checked,
        "intact": report.intact,
        "broken": [
            {"ref": c.ref, "broken_at": c.broken_at, "column": c.column, "problem": c.problem}
            for c in report.broken
        ],
        "anchor": str(anchor) if anchor is not None else None,
        "anchored": report.anchored,
        "anchor_written": written,
    }
    lines = [
        f"verified {report.checked} records: {report.intact} intact, {len(report.broken)} broken"
    ]
    for c in report.broken:
        where = f" [{c.column}]" if c.column else ""
        lines.append(f"  {c.ref} at version {c.broken_at}{where}: {c.problem}")
    if anchor is not None:
        lines.append(f"compared {report.anchored} chains with the anchors in {anchor}")
    if written is not None:
        lines.append(f"anchored the heads of {report.checked} chains in {written}")
    elif new is not None:
        lines.append(f"no anchor written to {new}: the store is not intact")
    return Outcome(data=data, text="\n".join(lines), code=Exit.OK if report else Exit.ATTENTION)


# --- form -------------------------------------------------------------------------------------


def _form_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", help="the record, e.g. REQ-2026-000001")
    p.add_argument(
        "--form",
        metavar="NAME",
        help="the form to render (its name or Chinese title, e.g. production_notice or "
        "生产通知表); without it, list the forms that apply to REF",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="write FILE.html, or FILE.pdf (needs the 'forms' extra), instead of printing HTML",
    )
    p.add_argument("--templates", metavar="DIR", help="a folder of templates overriding the forms'")
    _db_option(p)
    _rules_option(p)


@command("form", help="render a record as one of the seed's forms (HTML or PDF)",
         arguments=_form_arguments)  # fmt: skip
def _form(ctx: Context) -> Outcome:
    from .forms import forms_for, render_pdf

    args = ctx.args
    suffix = Path(args.out).suffix.lower() if args.out else None
    if suffix not in {None, ".html", ".htm", ".pdf"}:
        raise UsageError(f"--out {args.out!r}: expected a file ending in .html or .pdf")
    if args.out and not args.form:
        raise UsageError("--out needs --form NAME (reqmgmt form REF lists the forms)")
    with ctx.desk() as desk:
        if args.templates is not None:
            from .forms.forms import template_folder

            desk.form_templates = template_folder(args.templates)
        if not args.form:
            record = desk.get(args.ref)
            specs = forms_for(record, desk.history(args.ref))
            rows = [[s.name, s.zh, s.en] for s in specs]
            listed = [{"name": s.name, "zh": s.zh, "en": s.en} for s in specs]
            data = {"ref": args.ref, "forms": listed}
            text = render_table(["form", "表单", "title"], rows) if rows else "no form applies"
            return Outcome(data=data, text=text)
        html = desk.form(args.ref, args.form)
    if args.out is None:
        return Outcome(data={"ref": args.ref, "form": args.form, "html": html}, text=html)
    target = Path(args.out)
    target.write_bytes(render_pdf(html) if suffix == ".pdf" else html.encode("utf-8"))
    return Outcome(data={"written": [str(target)]}, text=f"wrote {target}")


# --- report -----------------------------------------------------------------------------------


def _report_arguments(p: argparse.ArgumentParser) -> None:
    _db_option(p)
    _rules_option(p)
    p.add_argument("--since", help="from this time (ISO, with zone)")
    p.add_argument("--until", help="up to this time, excluded (ISO, with zone)")
    p.add_argument(
        "--format",
        choices=["table", "csv", "json", "png"],
        default="table",
        help="table (rich on a terminal when installed), csv, json, or png charts (--out)",
    )
    p.add_argument("--out", metavar="DIR", help="write DIR/report.<ext> instead")
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="first recompute the summary tables from the records and audit trails "
        "(lists the records it cannot read; exit 3 then)",
    )
    p.add_argument(
        "--encoding",
        help="text encoding of the output (default: utf-8-sig for csv, a BOM Excel "
        "recognises; utf-8 otherwise)",
    )
    p.add_argument(
        "--lang",
        choices=["en", "zh"],
        default="en",
        help="language of the png charts' titles and labels (zh needs a font with Chinese "
        "characters: docs/reports.md)",
    )
    p.add_argument(
        "--font",
        metavar="FILE",
        help="font file for --lang zh charts (default: an installed Noto Sans CJK, Source Han "
        "Sans, WenQuanYi... or $REQMGMT_CJK_FONT)",
    )


@command("report", help="management report: counts, times, returns", arguments=_report_arguments)
def _report(ctx: Context) -> Outcome:
    args = ctx.args
    since, until = _time("since", args.since), _time("until", args.until)
    fmt = "json" if ctx.json and args.format == "table" else args.format
    encoding = args.encoding or ("utf-8-sig" if fmt == "csv" else "utf-8")
    try:
        "".encode(encoding)
    except LookupError:
        raise UsageError(f"--encoding {encoding!r}: not a text encoding Python knows") from None
    if fmt == "png" and not args.out:
        raise UsageError("--format png needs --out DIR")
    fancy = not ctx.json and _rich_available() and sys.stderr.isatty()
    with ctx.desk() as desk:
        rebuilt: list[tuple[str, str]] = []
        if args.rebuild:
            from .reports import rebuild

            rebuilt = rebuild(desk.store, desk.engines)
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
    if rebuilt:
        import attrs

        report = attrs.evolve(report, failed=(*report.failed, *rebuilt))
    # Records the report could not count: named on stderr, exit 3 (the rest is reported).
    code = Exit.ATTENTION if report.failed else Exit.OK
    for ref, reason in report.failed:
        print(f"reqmgmt report: left out {ref}: {reason}", file=sys.stderr)
    if fmt == "png":
        from .reports import charts

        paths = [str(p) for p in charts(report, Path(args.out), lang=args.lang, font=args.font)]
        return Outcome(
            data={"written": paths}, text="\n".join(f"wrote {p}" for p in paths), code=code
        )
    if fmt == "table" and not args.out and fancy and sys.stdout.isatty():
        from rich.console import Console

        from .reports import rich_tables

        Console().print(*rich_tables(report))
        return Outcome(code=code)
    text = {"table": report.table, "csv": report.to_csv, "json": report.to_json}[fmt]()
    if args.out:
        target = Path(args.out)
        target.mkdir(parents=True, exist_ok=True)
        path = target / ("report.txt" if fmt == "table" else f"report.{fmt}")
        path.write_bytes(text.encode(encoding))
        return Outcome(data={"written": [str(path)]}, text=f"wrote {path}", code=code)
    if ctx.json:
        return Outcome(data=report.to_data(), code=code)
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode(encoding))
    return Outcome(code=code)


def _rich_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("rich") is not None


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``reqmgmt`` command; returns the exit code (docs/cli.md)."""
    return run(argv, _version)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
