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
from typing import Any

import attrs
from attrs import frozen

from . import summaries
from .storage.base import Lenient, add_summary_rows

log = logging.getLogger("reqmgmt")

__all__ = [
    "ComplaintRate",
    "Count",
    "CycleTime",
    "Dwell",
    "FirstResponse",
    "Report",
    "ReturnFigures",
    "SurveyAverage",
    "Timeliness",
    "build_report",
    "charts",
    "compact",
    "rebuild",
    "recompute",
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
class ComplaintRate:
    """Complaint rate (投诉率): complaints and returns against what shipped, for one ``by`` value.

    ``by`` is ``month`` (``YYYY-MM``, UTC), ``customer`` (its id) or
    ``product``.  ``complaints``: complaints and returns created in the
    window; ``contracts``: contracts whose first shipment (of the product)
    left in the window; ``quantity``: units shipped in the window.
    """

    by: str
    value: str
    complaints: int
    contracts: int
    quantity: int

    @property
    def per_contract(self) -> float | None:
        """Complaints and returns per contract shipped (``None``: none shipped)."""
        return None if not self.contracts else self.complaints / self.contracts

    @property
    def per_thousand(self) -> float | None:
        """Complaints and returns per 1,000 units shipped (``None``: none shipped)."""
        return None if not self.quantity else 1000 * self.complaints / self.quantity


@frozen
class SurveyAverage:
    """Satisfaction (满意度): the average score of ``question`` for one ``by`` value.

    ``by`` is ``month`` (``YYYY-MM``, UTC) or ``customer`` (its id);
    ``question`` is a ``survey_questions`` id, or ``*`` for every answer;
    ``answers`` how many scores were given, ``average`` their mean (1-5).
    """

    by: str
    value: str
    question: str
    answers: int
    average: float


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
    complaint_rates: tuple[ComplaintRate, ...] = ()
    surveys: tuple[SurveyAverage, ...] = ()

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
        for item, c in zip(data["complaint_rates"], self.complaint_rates, strict=True):
            item["per_contract"] = c.per_contract
            item["per_thousand"] = c.per_thousand
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
        for rate in self.complaint_rates:
            w.writerow(["complaint_rate", rate.by, rate.value, rate.complaints, rate.quantity,
                        f"contracts={rate.contracts}"])  # fmt: skip
        for sv in self.surveys:
            w.writerow(["survey", sv.by, sv.value, sv.average, sv.answers,
                        f"question={sv.question}"])  # fmt: skip
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
            ("投诉率 complaint rate", ["by", "value", "complaints", "contracts shipped",
                                       "qty shipped", "per contract", "per 1000"],
             [[c.by, c.value, str(c.complaints), str(c.contracts), str(c.quantity),
               "-" if c.per_contract is None else f"{c.per_contract:.2f}",
               "-" if c.per_thousand is None else f"{c.per_thousand:.2f}"]
              for c in self.complaint_rates]),
            ("满意度 satisfaction (1-5)", ["by", "value", "question", "answers", "average"],
             [[sv.by, sv.value, sv.question, str(sv.answers), f"{sv.average:.2f}"]
              for sv in self.surveys]),
            *left_out,
        ]  # fmt: skip

    def table(self) -> str:
        """Plain-text tables for a terminal (Chinese and Latin text aligned)."""
        from .rendering import render_table

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
    tx: Any,
    engines: Mapping[str, Any],
    since: datetime | None,
    until: datetime | None,
    progress: Progress = _nothing,
) -> Report:
    """The report from every record and audit event read through ``tx`` (the reference)."""
    # A survey is recorded, not finished: it has no cycle time or outcome.
    finals = {kind: engine.final for kind, engine in engines.items() if kind != "survey"}
    scores: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    counts: Counter[tuple[str, str, str]] = Counter()
    outcomes: Counter[tuple[str, str]] = Counter()
    cycles: dict[str, list[float]] = defaultdict(list)
    dwell: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    timely: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    firsts: dict[str, list[float]] = defaultdict(list)
    by: dict[str, Counter[str]] = {n: Counter() for n in ("customer", "product", "defect", "month")}
    valid = invalid = capa = 0
    shipped: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    failed: list[tuple[str, str]] = []
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
        if kind == "survey" and fig.counts:  # created in the window
            month = record.created_at.astimezone(UTC).strftime("%Y-%m")
            for answer in record.answers:
                for question in (answer.question, "*"):
                    for key3 in (("month", month, question),
                                 ("customer", record.customer.id, question)):  # fmt: skip
                        scores[key3][0] += 1
                        scores[key3][1] += answer.score
        for key, contracts, quantity in fig.shipped:
            shipped[key][0] += contracts
            shipped[key][1] += quantity
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
        _complaint_rates(by, shipped),
        _survey_averages(scores),
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
    #: shipments in the window: ((by, value), contracts first shipped, quantity)
    shipped: list[tuple[tuple[str, str], int, int]] = attrs.field(factory=list)


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
    shipped = _shipments(record, events, since, until) if kind == "contract" else []
    return _Figures(counts, returned, dwell, finished, first_response, shipped)


def _shipments(
    record: Any, events: Sequence[Any], since: datetime | None, until: datetime | None
) -> list[tuple[tuple[str, str], int, int]]:
    """What a contract's shipments in the window add to the complaint rate.

    Its lines are followed through the audit trail (the creating document,
    then each change of ``lines``): each event adds what it shipped; the
    event of the contract's first shipment (of a product's) counts the
    contract once for its month and customer (for the product).
    """
    lines: dict[int, tuple[str, int]] = {}
    shipped_before = False
    products_before: set[str] = set()
    out: list[tuple[tuple[str, str], int, int]] = []
    customer = record.customer.id
    for e in events:
        now = dict(lines)
        for change in e.changes:
            if change.op == "create":
                now = summaries._lines_of(change.new.get("lines"))
            elif change.field == "lines" and change.op == "append":
                now.update(summaries._lines_of(change.new))
            elif change.field == "lines":
                now = summaries._lines_of(change.new)
        inside = _in(e.at, since, until)
        month = e.at.astimezone(UTC).strftime("%Y-%m")
        per: Counter[str] = Counter()
        for no, (product, shipped) in now.items():
            per[product] += shipped - lines.get(no, (product, 0))[1]
        total = sum(per.values())
        first = not shipped_before and any(s for _, s in now.values())
        if inside and (total or first):
            out.append((("month", month), int(first), total))
            out.append((("customer", customer), int(first), total))
        for product, qty in sorted(per.items()):
            new_product = product not in products_before and qty > 0
            if inside and (qty or new_product):
                out.append((("product", product), int(new_product), qty))
            if qty > 0:
                products_before.add(product)
        shipped_before = shipped_before or first
        lines = now
    return out


def _log_failed(failed: Sequence[tuple[str, str]]) -> None:
    for ref, reason in failed:
        log.error("report: left out %s: %s", ref, reason)


# --- from the summaries (O(groups)) ----------------------------------------------------------


def _day_text(value: datetime | None) -> str | None:
    """A window end as a UTC day (``YYYY-MM-DD``), when it falls on a UTC midnight."""
    if value is None:
        return None
    utc = value.astimezone(UTC)
    if utc.hour or utc.minute or utc.second or utc.microsecond:
        raise _NotWholeDays
    return utc.date().isoformat()


class _NotWholeDays(Exception):
    pass


def _quantile(buckets: Mapping[str, int], kind: str, make: Callable[..., Any]) -> Any:
    """Median and p90 (nearest rank) of bucketed times, as the reference computes them."""
    ordered = sorted((int(b), n) for b, n in buckets.items() if n > 0)
    total = sum(n for _, n in ordered)

    def nth(i: int) -> float:  # the i-th value (0-based) in sorted order
        for bucket, n in ordered:
            if i < n:
                return bucket * summaries.BUCKET_HOURS
            i -= n
        raise IndexError(i)

    middle = total // 2
    median = nth(middle) if total % 2 else (nth(middle - 1) + nth(middle)) / 2
    p90 = nth(max(0, math.ceil(0.9 * total) - 1))
    return make(kind, total, _round(median), _round(p90))


def summary_report(
    rows: Iterable[tuple[str, str, str, str, str, int, int]],
    since: datetime | None,
    until: datetime | None,
) -> Report:
    """The report from summary rows (metric, month, kind, a, b, n, amount)."""
    sums: dict[tuple[str, str, str, str, str], list[int]] = {}
    add_summary_rows(sums, rows)
    counts: Counter[tuple[str, str, str]] = Counter()
    outcomes: Counter[tuple[str, str]] = Counter()
    cycles: dict[str, Counter[str]] = defaultdict(Counter)
    firsts: dict[str, Counter[str]] = defaultdict(Counter)
    dwell: dict[tuple[str, str], list[int]] = {}
    timely: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by: dict[str, Counter[str]] = {n: Counter() for n in ("customer", "product", "defect", "month")}
    judged: Counter[str] = Counter()
    capa = 0
    shipped: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    scores: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for (metric, month, kind, a, b), (n, amount) in sums.items():
        if metric == "count":
            counts[(a, kind, b)] += n
        elif metric == "returns":
            if a == "judgement":
                judged[b] += n
            elif a == "capa":
                capa += n
            else:
                by[a][b] += n
                if a == "customer":
                    by["month"][month] += n
        elif metric == "outcome":
            outcomes[(kind, a)] += n
        elif metric == "cycle":
            cycles[kind][a] += n
        elif metric == "ontime":
            if n:
                timely[kind][0 if a == "on" else 1] += n
        elif metric == "dwell":
            slot = dwell.setdefault((kind, a), [0, 0])
            slot[0] += n
            slot[1] += amount
        elif metric == "first":
            firsts[kind][a] += n
        elif metric == "survey":
            for by_key in (("month", month, a), ("month", month, "*"),
                           ("customer", b, a), ("customer", b, "*")):  # fmt: skip
                tally = scores[by_key]
                tally[0] += n
                tally[1] += amount
        elif metric == "shipped":
            for by_value in (("month", month), ("customer", a)) if not b else (("product", b),):
                tally = shipped[by_value]
                tally[0] += n
                tally[1] += amount
    return Report(
        since,
        until,
        tuple(Count(d, k, v, n) for (d, k, v), n in sorted(counts.items()) if n),
        tuple(Count("state", k, v, n) for (k, v), n in sorted(outcomes.items()) if n),
        tuple(
            _quantile(cycles[k], k, CycleTime) for k in sorted(cycles) if any(cycles[k].values())
        ),
        tuple(
            Dwell(k, s, n, _round(micros / 3.6e9), _round(micros / 3.6e9 / n) if n else 0.0)
            for (k, s), (n, micros) in sorted(dwell.items())
        ),
        tuple(Timeliness(k, a + b, a, b) for k, (a, b) in sorted(timely.items()) if a + b),
        _returns({k: +v for k, v in by.items()}, judged["valid"], judged["invalid"], capa),
        (),
        tuple(
            _quantile(firsts[k], k, FirstResponse)
            for k in sorted(firsts)
            if any(firsts[k].values())
        ),
        _complaint_rates(by, shipped),
        _survey_averages(scores),
    )


def _survey_averages(
    scores: Mapping[tuple[str, str, str], Sequence[int]],
) -> tuple[SurveyAverage, ...]:
    return tuple(
        SurveyAverage(by, value, question, n, _round(total / n))
        for (by, value, question), (n, total) in sorted(
            scores.items(), key=lambda kv: (kv[0][0] != "month", kv[0][1], kv[0][2])
        )
        if n
    )


def _complaint_rates(
    complaints: Mapping[str, Counter[str]], shipped: Mapping[tuple[str, str], Sequence[int]]
) -> tuple[ComplaintRate, ...]:
    out = []
    for by in ("month", "customer", "product"):
        values = {v for v, n in complaints[by].items() if n}
        values |= {v for (b, v), (n, q) in shipped.items() if b == by and (n or q)}
        for value in sorted(values):
            contracts, quantity = shipped.get((by, value), (0, 0))
            out.append(ComplaintRate(by, value, complaints[by][value], contracts, quantity))
    return tuple(out)


def _has_summaries(tx: Any) -> bool:
    return all(
        hasattr(tx, name)
        for name in ("stage_summary", "summary", "replace_summary", "compact_summary")
    )


def build_report(
    store: Any,
    engines: Mapping[str, Any],
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress = _nothing,
) -> Report:
    """The report of ``store`` for the window (see the module docstring).

    From the summary rows when the store keeps them and the window's ends
    are UTC midnights (or open): O(groups).  Otherwise computed from the
    records and audit trails (:func:`recompute`).  ``engines``: the Desk's
    engines by kind (their final and initial states).  ``progress`` is
    called with the name of each of :data:`STEPS` when done.
    """
    try:
        first, last = _day_text(since), _day_text(until)
    except _NotWholeDays:
        return recompute(store, engines, since, until, progress)
    with store.transaction() as tx:
        if not _has_summaries(tx):
            return python_report(tx, engines, since, until, progress)
        rows = tx.summary(since=first, until=last)
    report = summary_report(rows, since, until)
    for step in STEPS:
        progress(step)
    return report


def recompute(
    store: Any,
    engines: Mapping[str, Any],
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress = _nothing,
) -> Report:
    """The report computed from every record and audit event: O(events).

    The reference the summaries are checked against (the same figures;
    cycle and first-response percentiles to the summaries' bucket of
    :data:`reqmgmt.summaries.BUCKET_HOURS`, rounded to the nearest); lists
    the records it could not read in ``failed``.
    """
    with store.transaction() as tx:
        return python_report(tx, engines, since, until, progress)


def rebuild(store: Any, engines: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Recompute the summary rows from the records and audit trails (``report --rebuild``).

    Returns the records left out, as (ref, reason); one transaction.
    """
    failed: list[tuple[str, str]] = []
    with store.transaction() as tx:
        if not _has_summaries(tx):
            from .errors import ConfigError

            raise ConfigError("rebuild", f"the store {type(store).__name__} keeps no summaries")
        if isinstance(tx, Lenient):
            tx.unreadable = failed
        tx.replace_summary(summaries.rebuild_rows(tx, engines, failed))
    _log_failed(failed)
    return failed


def compact(store: Any) -> int:
    """Sum the summary delta rows into one per key and day (``reqmgmt compact``).

    Returns how many rows there were before (0 on a store that keeps them summed).
    """
    with store.transaction() as tx:
        if not _has_summaries(tx):
            return 0
        return int(tx.compact_summary())
