"""Management reports (DOMAIN §5): counts, cycle and dwell times, timeliness, returns.

``desk.report(since=, until=)`` returns a :class:`Report`.  On SQL stores the
figures are aggregated by the database (GROUP BY, window functions over the
audit table's indexed columns); only aggregates, and one number per finished
record for the percentiles, come back to Python.  On any other store the same
figures are computed in Python from ``query()`` and ``audit()``; a test checks
that both give the same report.

Definitions (times are wall-clock hours; a window is ``since <= t < until``):

- ``counts``: records created in the window, by ``state``, ``channel``
  (requirements, contracts), customer ``category`` and contract ``class``;
- ``outcomes``: records that reached a final state in the window, by state;
- ``cycle_times``: per kind, from creation to the final state, for records
  finished in the window: median and 90th percentile (nearest rank);
- ``dwell``: per kind and state, the time spent in the state by records that
  left it in the window: entries, total and mean hours (the bottleneck is
  the state with the largest total);
- ``timeliness``: per kind, records finished in the window that had a
  deadline (``due_at``, moved by customer waits): on time when the final
  state came at or before it;
- ``first_response``: per kind, from creation to the first event that moved
  the record out of its initial state (a question to the customer, the
  start of the evaluation, a rejection...; remarks and sign-offs do not
  count), for records first moved in the window: how many, median and 90th
  percentile;
- ``returns``: complaints and returns created in the window, by customer,
  product, defect category and month; valid and invalid judgements, the
  validity rate and the number of CAPAs opened.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from attrs import frozen

from .storage.base import Lenient

if TYPE_CHECKING:
    from .desk import Desk

log = logging.getLogger("reqmgmt")

__all__ = [
    "Count",
    "CycleTime",
    "Dwell",
    "FirstResponse",
    "Report",
    "ReturnFigures",
    "Timeliness",
    "build_report",
    "charts",
    "rich_tables",
]


@frozen
class Count:
    """How many records of ``kind`` have ``value`` for ``dimension``."""

    dimension: str
    kind: str
    value: str
    count: int


@frozen
class CycleTime:
    kind: str
    finished: int
    median_hours: float
    p90_hours: float


@frozen
class FirstResponse:
    """Time to first response (首次响应) of ``kind``: creation to the first state change."""

    kind: str
    responded: int
    median_hours: float
    p90_hours: float


@frozen
class Dwell:
    kind: str
    state: str
    entries: int
    total_hours: float
    mean_hours: float


@frozen
class Timeliness:
    kind: str
    finished: int
    on_time: int
    overdue: int

    @property
    def on_time_rate(self) -> float | None:
        return None if not self.finished else self.on_time / self.finished


@frozen
class ReturnFigures:
    by_customer: tuple[tuple[str, int], ...] = ()
    by_product: tuple[tuple[str, int], ...] = ()
    by_defect: tuple[tuple[str, int], ...] = ()
    by_month: tuple[tuple[str, int], ...] = ()
    valid: int = 0
    invalid: int = 0
    capa: int = 0

    @property
    def validity_rate(self) -> float | None:
        judged = self.valid + self.invalid
        return None if not judged else self.valid / judged


@frozen
class Report:
    """The figures of one report; ``to_json()``, ``to_csv()``, ``table()`` render them."""

    since: datetime | None
    until: datetime | None
    counts: tuple[Count, ...]
    outcomes: tuple[Count, ...]
    cycle_times: tuple[CycleTime, ...]
    dwell: tuple[Dwell, ...]
    timeliness: tuple[Timeliness, ...]
    returns: ReturnFigures
    #: Records left out because they could not be read or counted, as (ref, reason).
    failed: tuple[tuple[str, str], ...] = ()
    first_response: tuple[FirstResponse, ...] = ()

    def bottleneck(self, kind: str) -> Dwell | None:
        """The state of ``kind`` where records spent the most time in the window."""
        found = [d for d in self.dwell if d.kind == kind]
        return max(found, key=lambda d: d.total_hours, default=None)

    def to_data(self) -> dict[str, Any]:
        """JSON-ready data (rates included)."""
        data: dict[str, Any] = attrs.asdict(self, recurse=True)
        for key in ("since", "until"):
            data[key] = None if data[key] is None else data[key].isoformat()
        for item, t in zip(data["timeliness"], self.timeliness, strict=True):
            item["on_time_rate"] = t.on_time_rate
        data["returns"]["validity_rate"] = self.returns.validity_rate
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_data(), ensure_ascii=False, indent=2)

    def to_csv(self) -> str:
        """One CSV: section, then the section's columns."""
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["section", "kind", "key", "value", "count_or_hours", "extra"])
        for c in self.counts:
            w.writerow(["count", c.kind, c.dimension, c.value, c.count, ""])
        for c in self.outcomes:
            w.writerow(["outcome", c.kind, "state", c.value, c.count, ""])
        for t in self.cycle_times:
            w.writerow(["cycle_time", t.kind, "median_hours", t.median_hours, t.finished,
                        f"p90={t.p90_hours}"])  # fmt: skip
        for d in self.dwell:
            w.writerow(["dwell", d.kind, d.state, d.mean_hours, d.total_hours,
                        f"entries={d.entries}"])  # fmt: skip
        for tl in self.timeliness:
            w.writerow(["timeliness", tl.kind, "on_time", tl.on_time, tl.finished,
                        f"overdue={tl.overdue}"])  # fmt: skip
        for f in self.first_response:
            w.writerow(["first_response", f.kind, "median_hours", f.median_hours, f.responded,
                        f"p90={f.p90_hours}"])  # fmt: skip
        r = self.returns
        for name, rows in (("customer", r.by_customer), ("product", r.by_product),
                           ("defect", r.by_defect), ("month", r.by_month)):  # fmt: skip
            for value, count in rows:
                w.writerow(["returns", "return", name, value, count, ""])
        w.writerow(["returns", "return", "judgement", "valid", r.valid, ""])
        w.writerow(["returns", "return", "judgement", "invalid", r.invalid, ""])
        w.writerow(["returns", "return", "capa", "opened", r.capa, ""])
        for ref, reason in self.failed:
            w.writerow(["failed", "", "ref", ref, "", reason])
        return out.getvalue()

    def sections(self) -> list[tuple[str, list[str], list[list[str]]]]:
        """Each section as (title, column headers, rows of text): what tables show."""
        r = self.returns
        rate = "-" if r.validity_rate is None else f"{r.validity_rate:.0%}"
        left_out = (
            [
                (
                    f"未计入 records left out: {len(self.failed)}",
                    ["ref", "reason"],
                    [[ref, reason] for ref, reason in self.failed],
                )
            ]
            if self.failed
            else []
        )
        return [
            ("记录数 records", ["kind", "by", "value", "count"],
             [[c.kind, c.dimension, c.value, str(c.count)] for c in self.counts]),
            ("结果 outcomes", ["kind", "final state", "count"],
             [[c.kind, c.value, str(c.count)] for c in self.outcomes]),
            ("周期 cycle time (h)", ["kind", "finished", "median", "p90"],
             [[t.kind, str(t.finished), f"{t.median_hours:.1f}", f"{t.p90_hours:.1f}"]
              for t in self.cycle_times]),
            ("停留 dwell per state (h)", ["kind", "state", "entries", "total", "mean"],
             [[d.kind, d.state, str(d.entries), f"{d.total_hours:.1f}", f"{d.mean_hours:.1f}"]
              for d in self.dwell]),
            ("首次响应 first response (h)", ["kind", "responded", "median", "p90"],
             [[f.kind, str(f.responded), f"{f.median_hours:.1f}", f"{f.p90_hours:.1f}"]
              for f in self.first_response]),
            ("及时率 on time", ["kind", "finished", "on time", "overdue", "rate"],
             [[t.kind, str(t.finished), str(t.on_time), str(t.overdue),
               "-" if t.on_time_rate is None else f"{t.on_time_rate:.0%}"]
              for t in self.timeliness]),
            (f"投诉退货 complaints and returns: valid {r.valid}, invalid {r.invalid}, "
             f"validity {rate}, CAPA {r.capa}", ["by", "value", "count"],
             [[name, value, str(count)]
              for name, pairs in (("customer", r.by_customer), ("product", r.by_product),
                                  ("defect", r.by_defect), ("month", r.by_month))
              for value, count in pairs]),
            *left_out,
        ]  # fmt: skip

    def table(self) -> str:
        """Plain-text tables for a terminal (Chinese and Latin text aligned)."""
        from .cli import render_table

        parts = [
            f"{title}\n{render_table(headers, rows)}" for title, headers, rows in self.sections()
        ]
        return "\n\n".join(parts) + "\n"


# --- rich tables and charts (the optional "tables" and "charts" extras) ----------------------


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        from .errors import ConfigError

        package = module.split(".")[0]
        extra = "tables" if package == "rich" else "charts"
        raise ConfigError(
            f"report output needs {package}",
            f"install the extra: pip install 'reqmgmt[{extra}]'",
        ) from None


def rich_tables(report: Report) -> list[Any]:
    """The report as ``rich`` tables, for ``Console().print(*tables)``."""
    table_mod = _require("rich.table")

    def make(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Any:
        table = table_mod.Table(title=title, title_justify="left")
        for i, h in enumerate(headers):
            table.add_column(h, justify="right" if i >= len(headers) - 2 else "left")
        for row in rows:
            table.add_row(*row)
        return table

    return [make(title, headers, rows) for title, headers, rows in report.sections()]


#: Fonts with Chinese characters ``charts(lang="zh")`` looks for, best first
#: (matplotlib's family names).
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
    "Droid Sans Fallback",
    "AR PL UMing CN",
)
#: Font files of those fonts, looked for among the system's fonts when
#: matplotlib's font cache predates them (lower case, part of the file name).
_CJK_FILES = (
    "notosanscjk",
    "notosanssc",
    "sourcehansans",
    "wqy-microhei",
    "wqy-zenhei",
    "msyh",
    "simhei",
    "pingfang",
    "droidsansfallback",
    "uming",
)
#: The environment variable naming a font file for Chinese charts.
CJK_FONT_ENV = "REQMGMT_CJK_FONT"
#: Characters a font for Chinese charts must have (a test of its coverage).
_CJK_PROBE = "客户需求停留时间每月诉退货"

_INSTALL_CJK = (
    "install one, e.g. on Debian or Ubuntu: apt-get install fonts-noto-cjk (or the smaller "
    "fonts-wqy-microhei); or name a font file with Chinese characters: "
    f"{CJK_FONT_ENV}=/path/to/font.ttc, charts(..., font=PATH) or reqmgmt report --font PATH"
)

#: Chart texts by language.
CHART_TEXTS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "dwell_title": "Dwell per state: where records wait",
        "dwell_axis": "hours spent in the state (total)",
        "complaints_title": "Complaints and returns per month",
        "complaints_axis": "complaints and returns",
    },
    "zh": {
        "dwell_title": "各状态停留时间：记录在哪里等待",
        "dwell_axis": "在该状态停留的小时数（合计）",
        "complaints_title": "每月客诉与退货",
        "complaints_axis": "客诉与退货数",
    },
}


def cjk_font(font: str | Path | None = None) -> str:
    """The matplotlib family name of a font with Chinese characters.

    ``font`` (or the environment variable ``REQMGMT_CJK_FONT``) names a font
    file to use; otherwise the first of :data:`CJK_FONTS` installed.  Raises
    :class:`~reqmgmt.errors.ConfigError` saying how to install one when none
    is found, or when the file named lacks Chinese characters.
    """
    import os

    from .errors import ConfigError

    font_manager = _require("matplotlib.font_manager")
    named = font or os.environ.get(CJK_FONT_ENV) or None
    if named is not None:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"chart font {str(path)!r}", f"no such file; {_INSTALL_CJK}")
        _check_cjk(path, font_manager)
        font_manager.fontManager.addfont(str(path))
        name: str = font_manager.FontProperties(fname=str(path)).get_name()
        return name
    known = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in known:
            return name
    # Installed after matplotlib cached the system's fonts: add the files.
    for file in sorted(font_manager.findSystemFonts()):
        if any(part in Path(file).name.lower() for part in _CJK_FILES):
            try:
                font_manager.fontManager.addfont(file)
            except (OSError, RuntimeError, ValueError):  # an unreadable font file
                continue
    known = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in known:
            return name
    raise ConfigError(
        "charts in Chinese (lang='zh')",
        f"no font with Chinese characters found (looked for {', '.join(CJK_FONTS)}); "
        + _INSTALL_CJK,
    )


def _check_cjk(path: Path, font_manager: Any) -> None:
    from .errors import ConfigError

    ft2font = _require("matplotlib.ft2font")
    try:
        charmap = ft2font.FT2Font(str(path)).get_charmap()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"chart font {str(path)!r}", f"not a font file ({exc})") from None
    missing = [ch for ch in _CJK_PROBE if ord(ch) not in charmap]
    if missing:
        raise ConfigError(
            f"chart font {str(path)!r}",
            f"it has no Chinese characters (lacks {''.join(missing)}); {_INSTALL_CJK}",
        )


def _chart_label(kind: str, state: str, lang: str) -> str:
    if lang != "zh":
        return f"{kind} / {state}"
    from .lifecycle import BUILTIN_LIFECYCLES

    lc = BUILTIN_LIFECYCLES.get(kind)
    if lc is None:
        return f"{kind} / {state}"
    labels = {s.name: s.zh for s in lc.states}
    return f"{lc.zh} / {labels.get(state, state)}"


def charts(
    report: Report, directory: Path, *, lang: str = "en", font: str | Path | None = None
) -> list[Path]:
    """PNG charts: dwell per state (the bottleneck) and the monthly complaint trend.

    ``lang="zh"`` labels them in Chinese (titles, axes, the states' Chinese
    names), in a font with Chinese characters (:func:`cjk_font`; ``font``
    names a font file).
    """
    if lang not in CHART_TEXTS:
        from .errors import ValidationError

        raise ValidationError("lang", lang, "'en' or 'zh'", where="charts")
    matplotlib = _require("matplotlib")
    matplotlib.use("Agg")
    pyplot = _require("matplotlib.pyplot")
    style: dict[str, Any] = {}
    if lang == "zh":
        # The CJK font first; its lack of a minus sign must not warn.
        style = {"font.family": [cjk_font(font)], "axes.unicode_minus": False}
    texts = CHART_TEXTS[lang]
    directory.mkdir(parents=True, exist_ok=True)

    def save(fig: Any, name: str) -> Path:
        fig.tight_layout()
        path = directory / name
        fig.savefig(path, dpi=100)
        pyplot.close(fig)
        return path

    with pyplot.rc_context(style):
        dwell = sorted(report.dwell, key=lambda d: d.total_hours)
        fig, ax = pyplot.subplots(figsize=(8, max(2.5, 0.35 * len(dwell) + 1)))
        ax.barh(
            [_chart_label(d.kind, d.state, lang) for d in dwell], [d.total_hours for d in dwell]
        )
        ax.set_xlabel(texts["dwell_axis"])
        ax.set_title(texts["dwell_title"])
        written = [save(fig, "dwell.png")]
        months = sorted(report.returns.by_month)
        fig, ax = pyplot.subplots(figsize=(8, 3.5))
        ax.plot([m for m, _ in months], [n for _, n in months], marker="o")
        ax.set_ylabel(texts["complaints_axis"])
        ax.set_title(texts["complaints_title"])
        ax.set_ylim(bottom=0)
        written.append(save(fig, "complaints_by_month.png"))
    return written


#: The steps a report reports to its ``progress`` callback.
STEPS = ("counts", "finished records", "dwell times", "returns", "first responses")

Progress = Callable[[str], None]


def _nothing(step: str) -> None:
    pass


# --- shared arithmetic -------------------------------------------------------------------------


def _hours(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 3600


def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _round(value: float) -> float:
    return round(value, 4)


def _in(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or at >= since) and (until is None or at < until)


def _first(kind: str, durations: Sequence[float]) -> FirstResponse:
    return FirstResponse(
        kind, len(durations), _round(statistics.median(durations)), _round(_p90(durations))
    )


def _cycle(kind: str, durations: Sequence[float]) -> CycleTime:
    return CycleTime(
        kind,
        len(durations),
        _round(statistics.median(durations)),
        _round(_p90(durations)),
    )


def _pairs(counter: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _returns(by: Mapping[str, Counter[str]], valid: int, invalid: int, capa: int) -> ReturnFigures:
    return ReturnFigures(
        by_customer=_pairs(by["customer"]),
        by_product=_pairs(by["product"]),
        by_defect=_pairs(by["defect"]),
        by_month=_pairs(by["month"]),
        valid=valid,
        invalid=invalid,
        capa=capa,
    )


def _finals(desk: Desk) -> dict[str, frozenset[str]]:
    return {kind: engine.final for kind, engine in desk.engines.items()}


# --- in Python (any store) ---------------------------------------------------------------------


def _dimensions(record: Any) -> Iterable[tuple[str, str]]:
    yield "state", record.state
    channel = getattr(record, "channel", None)
    if channel is not None:
        yield "channel", channel
    customer = getattr(record, "customer", None)
    if customer is not None:
        yield "category", customer.category
    cls = getattr(record, "contract_class", None)
    if cls is not None:
        yield "class", cls


def python_report(
    desk: Desk, since: datetime | None, until: datetime | None, progress: Progress = _nothing
) -> Report:
    finals = _finals(desk)
    counts: Counter[tuple[str, str, str]] = Counter()
    outcomes: Counter[tuple[str, str]] = Counter()
    cycles: dict[str, list[float]] = defaultdict(list)
    dwell: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    timely: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    firsts: dict[str, list[float]] = defaultdict(list)
    by: dict[str, Counter[str]] = {n: Counter() for n in ("customer", "product", "defect", "month")}
    valid = invalid = capa = 0
    failed: list[tuple[str, str]] = []
    with desk.store.transaction() as tx:
        if isinstance(tx, Lenient):
            tx.unreadable = failed
        for record in tx.query():
            kind = record.RECORD_KIND
            try:
                # Everything that can fail on an odd record, before anything is counted.
                fig = _figures(record, tx.audit(record.ref), finals.get(kind, ()), since, until)
            except Exception as exc:  # one odd record must not stop the report
                failed.append((record.ref, f"{type(exc).__name__}: {exc}"))
                continue
            for counted in fig.counts:
                counts[counted] += 1
            if fig.returned is not None:
                customer, product, defect, month, judgement, has_capa = fig.returned
                by["customer"][customer] += 1
                by["product"][product] += 1
                if defect is not None:
                    by["defect"][defect] += 1
                by["month"][month] += 1
                valid += judgement == "valid"
                invalid += judgement == "invalid"
                capa += has_capa
            if fig.first_response is not None:
                firsts[kind].append(fig.first_response)
            for stay, hours, left in fig.dwell:
                slot = dwell[stay]
                slot[1] += hours
                slot[0] += left
            if fig.finished is not None:
                state, cycle, on_time = fig.finished
                outcomes[(kind, state)] += 1
                cycles[kind].append(cycle)
                if on_time is not None:
                    timely[kind][0 if on_time else 1] += 1
    _log_failed(failed)
    for step in STEPS:
        progress(step)
    return Report(
        since,
        until,
        tuple(Count(d, k, v, n) for (d, k, v), n in sorted(counts.items())),
        tuple(Count("state", k, v, n) for (k, v), n in sorted(outcomes.items())),
        tuple(_cycle(k, cycles[k]) for k in sorted(cycles)),
        tuple(
            Dwell(k, s, int(n), _round(total), _round(total / n) if n else 0.0)
            for (k, s), (n, total) in sorted(dwell.items())
        ),
        tuple(Timeliness(k, a + b, a, b) for k, (a, b) in sorted(timely.items())),
        _returns(by, valid, invalid, capa),
        tuple(failed),
        tuple(_first(k, firsts[k]) for k in sorted(firsts)),
    )


@frozen
class _Figures:
    """What one record adds to a report (computed whole before anything is added)."""

    counts: list[tuple[str, str, str]]
    #: customer, product, defect, month, judgement, CAPA opened
    returned: tuple[str, str, str | None, str, str | None, bool] | None
    dwell: list[tuple[tuple[str, str], float, int]]
    #: final state, cycle hours, on time (None: no deadline)
    finished: tuple[str, float, bool | None] | None
    #: hours from creation to the first state change, when it fell in the window
    first_response: float | None = None


def _figures(
    record: Any,
    events: Sequence[Any],
    finals: Iterable[str],
    since: datetime | None,
    until: datetime | None,
) -> _Figures:
    kind = record.RECORD_KIND
    counts: list[tuple[str, str, str]] = []
    returned = None
    if _in(record.created_at, since, until):
        counts = [(dimension, kind, value) for dimension, value in _dimensions(record)]
        if kind == "return":
            report = record.report
            returned = (
                record.customer.id,
                record.product,
                None if report is None else report.defect_category,
                record.created_at.astimezone(UTC).strftime("%Y-%m"),
                record.judgement,
                record.capa is not None,
            )
    dwell = [
        (
            (kind, this.to_state),
            _hours(this.at, following.at),
            int(following.to_state != this.to_state),
        )
        for this, following in itertools.pairwise(events)
        if _in(following.at, since, until)
    ]
    finished = None
    last = events[-1] if events else None
    if last is not None and last.to_state in finals and _in(last.at, since, until):
        on_time = None if record.due_at is None else last.at <= record.due_at
        finished = (last.to_state, _hours(events[0].at, last.at), on_time)
    first_response = None
    moved = next((e for e in events[1:] if e.to_state != e.from_state), None)
    if moved is not None and _in(moved.at, since, until):
        first_response = _hours(events[0].at, moved.at)
    return _Figures(counts, returned, dwell, finished, first_response)


def _log_failed(failed: Sequence[tuple[str, str]]) -> None:
    for ref, reason in failed:
        log.error("report: left out %s: %s", ref, reason)


# --- in SQL ------------------------------------------------------------------------------------


def _utc_text(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def report_sql(
    desk: Desk, since: datetime | None, until: datetime | None, exclude: Sequence[str] = ()
) -> tuple[dict[str, str], dict[str, str | None]]:
    """The SQL a report runs (one statement per step of :data:`STEPS`) and its parameters.

    Public so a benchmark or a DBA can run and EXPLAIN exactly what a report does.
    ``exclude``: refs of records to leave out (rows that cannot be read).
    """
    from .storage.sql import SqlStore

    store = desk.store
    assert isinstance(store, SqlStore)
    pg = store.backend == "postgresql"

    def js(path: str) -> str:  # a text field of the JSON document
        if pg:
            return f"(doc::jsonb #>> '{{{path.replace('.', ',')}}}')"
        return f"json_extract(doc, '$.{path}')"

    def hours(a: str, b: str) -> str:
        if pg:
            return f"(EXTRACT(EPOCH FROM ({b}::timestamp - {a}::timestamp)) / 3600.0)"
        return f"((julianday({b}) - julianday({a})) * 24.0)"

    params = {"since": _utc_text(since), "until": _utc_text(until)}
    names = [f"x{i}" for i in range(len(exclude))]
    params.update(zip(names, exclude, strict=True))
    skip = f" AND ref NOT IN ({', '.join(':' + n for n in names)})" if names else ""

    def window(column: str) -> str:
        parts = ["1 = 1"]
        if since is not None:
            parts.append(f"{column} >= :since")
        if until is not None:
            parts.append(f"{column} < :until")
        return " AND ".join(parts)

    finals = _finals(desk)
    final_pairs = (
        " OR ".join(
            f"(ends.kind = '{k}' AND ends.to_state IN ({', '.join(repr(s) for s in sorted(v))}))"
            for k, v in sorted(finals.items())
            if v
        )
        or "1 = 0"
    )
    created = window("created_at") + skip
    counts_sql = f"""
        SELECT 'state' AS d, kind, state AS v, COUNT(*) FROM records WHERE {created}
        GROUP BY kind, state
        UNION ALL
        SELECT 'channel', kind, {js("channel")}, COUNT(*) FROM records
        WHERE {created} AND {js("channel")} IS NOT NULL GROUP BY kind, {js("channel")}
        UNION ALL
        SELECT 'category', kind, {js("customer.category")}, COUNT(*) FROM records
        WHERE {created} AND {js("customer.category")} IS NOT NULL
        GROUP BY kind, {js("customer.category")}
        UNION ALL
        SELECT 'class', kind, {js("contract_class")}, COUNT(*) FROM records
        WHERE {created} AND {js("contract_class")} IS NOT NULL
        GROUP BY kind, {js("contract_class")}
    """
    # The last event of each record, with its first: finished records.
    finished_sql = f"""
        WITH ends AS (
            SELECT ref, kind, to_state, at,
                   MIN(at) OVER (PARTITION BY ref) AS started,
                   ROW_NUMBER() OVER (PARTITION BY ref ORDER BY version DESC) AS nth
            FROM audit WHERE 1 = 1{skip}
        )
        SELECT ends.kind, ends.to_state, {hours("ends.started", "ends.at")},
               ends.at, {js("due_at")}
        FROM ends JOIN records ON records.ref = ends.ref
        WHERE ends.nth = 1 AND ({final_pairs}) AND {window("ends.at")}
    """
    dwell_sql = f"""
        WITH steps AS (
            SELECT kind, to_state, at,
                   LEAD(at) OVER (PARTITION BY ref ORDER BY version) AS next_at,
                   LEAD(to_state) OVER (PARTITION BY ref ORDER BY version) AS next_state
            FROM audit WHERE 1 = 1{skip}
        )
        SELECT kind, to_state,
               SUM(CASE WHEN next_state <> to_state THEN 1 ELSE 0 END),
               SUM({hours("at", "next_at")})
        FROM steps WHERE next_at IS NOT NULL AND {window("next_at")}
        GROUP BY kind, to_state
    """
    returns_where = f"kind = 'return' AND {created}"
    returns_sql = f"""
        SELECT 'customer', customer, COUNT(*) FROM records WHERE {returns_where}
        GROUP BY customer
        UNION ALL
        SELECT 'product', {js("product")}, COUNT(*) FROM records WHERE {returns_where}
        GROUP BY {js("product")}
        UNION ALL
        SELECT 'defect', {js("report.defect_category")}, COUNT(*) FROM records
        WHERE {returns_where} AND {js("report.defect_category")} IS NOT NULL
        GROUP BY {js("report.defect_category")}
        UNION ALL
        SELECT 'month', SUBSTR(created_at, 1, 7), COUNT(*) FROM records WHERE {returns_where}
        GROUP BY SUBSTR(created_at, 1, 7)
        UNION ALL
        SELECT 'judgement', {js("judgement")}, COUNT(*) FROM records
        WHERE {returns_where} AND {js("judgement")} IS NOT NULL GROUP BY {js("judgement")}
        UNION ALL
        SELECT 'capa', 'opened', COUNT(*) FROM records
        WHERE {returns_where} AND {js("capa")} IS NOT NULL
    """
    # The first event of each record that changed its state (creation excluded).
    first_sql = f"""
        WITH moves AS (
            SELECT ref, kind, version, from_state, to_state, at,
                   MIN(at) OVER (PARTITION BY ref) AS started
            FROM audit WHERE 1 = 1{skip}
        ), firsts AS (
            SELECT kind, started, at,
                   ROW_NUMBER() OVER (PARTITION BY ref ORDER BY version) AS nth
            FROM moves WHERE version > 1 AND to_state <> from_state
        )
        SELECT kind, {hours("started", "at")} FROM firsts
        WHERE nth = 1 AND {window("at")}
    """
    statements = dict(
        zip(STEPS, (counts_sql, finished_sql, dwell_sql, returns_sql, first_sql), strict=True)
    )
    return statements, params


def sql_report(
    desk: Desk, since: datetime | None, until: datetime | None, progress: Progress = _nothing
) -> Report:
    """The report aggregated in the database.

    A stored row the database or the figures cannot take (a damaged
    document, an odd value planted outside reqmgmt) fails the aggregate as a
    whole; then the rows are checked one by one and the report is made
    again without the records that failed, which it lists in ``failed``.
    """
    try:
        return _sql_report(desk, since, until, progress, ())
    except Exception:
        failed = _unreadable(desk)
        if not failed:
            raise
    _log_failed(failed)
    report = _sql_report(desk, since, until, progress, sorted({ref for ref, _ in failed}))
    return attrs.evolve(report, failed=tuple(failed))


def _unreadable(desk: Desk) -> list[tuple[str, str]]:
    """The records (and their audit rows) a SQL report cannot take, as (ref, reason)."""
    import sqlalchemy as sa

    from .serialize import structure
    from .storage.sql import SqlStore, audit, records

    store = desk.store
    assert isinstance(store, SqlStore)
    classes = {cls.RECORD_KIND: cls for cls in _record_kinds()}
    found: dict[str, str] = {}
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(records.c.ref, records.c.kind, records.c.doc)).all()
        for ref, kind, doc in rows:
            try:
                if store.backend == "postgresql" and "\\u0000" in doc:
                    raise ValueError("a NUL character (\\u0000), which PostgreSQL's jsonb refuses")
                structure(json.loads(doc), classes[kind])
            except Exception as exc:
                found.setdefault(
                    ref, f"the stored record cannot be read: {type(exc).__name__}: {exc}"
                )
        events = conn.execute(sa.select(audit.c.ref, audit.c.version, audit.c.at)).all()
        for ref, version, at in events:
            try:
                datetime.fromisoformat(at)
            except Exception as exc:
                found.setdefault(ref, f"audit event version {version}: time {at!r}: {exc}")
    return sorted(found.items())


def _record_kinds() -> list[type[Any]]:
    from .model import Contract, Requirement, Return

    return [Requirement, Contract, Return]


def _sql_report(
    desk: Desk,
    since: datetime | None,
    until: datetime | None,
    progress: Progress,
    exclude: Sequence[str],
) -> Report:
    import sqlalchemy as sa

    from .storage.sql import SqlStore

    store = desk.store
    assert isinstance(store, SqlStore)
    statements, params = report_sql(desk, since, until, exclude)
    results = []
    with store.engine.connect() as conn:
        for step, statement in statements.items():
            results.append(conn.execute(sa.text(statement), params).all())
            progress(step)
    count_rows, finished_rows, dwell_rows, return_rows, first_rows = results
    firsts: dict[str, list[float]] = defaultdict(list)
    for kind, duration in first_rows:
        firsts[kind].append(float(duration))
    outcomes: Counter[tuple[str, str]] = Counter()
    cycles: dict[str, list[float]] = defaultdict(list)
    timely: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for kind, state, duration, at, due in finished_rows:
        outcomes[(kind, state)] += 1
        cycles[kind].append(float(duration))
        if due is not None:
            late = datetime.fromisoformat(at).replace(tzinfo=UTC) > datetime.fromisoformat(due)
            timely[kind][1 if late else 0] += 1
    by: dict[str, Counter[str]] = {n: Counter() for n in ("customer", "product", "defect", "month")}
    judged: Counter[str] = Counter()
    capa = 0
    for name, value, count in return_rows:
        if name == "judgement":
            judged[value] += int(count)
        elif name == "capa":
            capa = int(count)
        else:
            by[name][str(value)] += int(count)
    return Report(
        since,
        until,
        tuple(
            sorted(
                (Count(d, k, str(v), int(n)) for d, k, v, n in count_rows),
                key=lambda c: (c.dimension, c.kind, c.value),
            )
        ),
        tuple(Count("state", k, v, n) for (k, v), n in sorted(outcomes.items())),
        tuple(_cycle(k, cycles[k]) for k in sorted(cycles)),
        tuple(
            Dwell(k, s, int(n), _round(float(t)), _round(float(t) / int(n)) if n else 0.0)
            for k, s, n, t in sorted(dwell_rows)
        ),
        tuple(Timeliness(k, a + b, a, b) for k, (a, b) in sorted(timely.items())),
        _returns(by, judged["valid"], judged["invalid"], capa),
        (),
        tuple(_first(k, firsts[k]) for k in sorted(firsts)),
    )


def build_report(
    desk: Desk,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress = _nothing,
) -> Report:
    """The report of ``desk``'s store for the window (see the module docstring).

    ``progress`` is called with the name of each of :data:`STEPS` when done.
    """
    from .storage.sql import SqlStore

    # sqlhost: report_sql names tables without a prefix; a prefixed store reads record by record.
    if isinstance(desk.store, SqlStore) and not desk.store.prefix:
        return sql_report(desk, since, until, progress)
    return python_report(desk, since, until, progress)
