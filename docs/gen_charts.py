"""Draw the report charts that docs/reports.md shows, from the demo's data.

    python docs/gen_charts.py            # writes docs/img/*.png and docs/img/charts.json
    python docs/gen_charts.py --check    # exit 1, saying why, when they are stale or missing

The demo (``reqmgmt demo``) runs on a throwaway SQLite database with its clock
started at a fixed time (the command itself starts 30 days before now), so the
same code gives the same figures on any day.  ``reqmgmt.reports.charts`` draws
them.  docs/img/charts.json records a hash of the figures the charts are drawn
from, of the drawing code and of each picture: ``--check`` (and
tests/unit/test_docs_site.py) recomputes the first two and compares all three,
which does not depend on the matplotlib version drawing the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from reqmgmt import Desk, demo, reports

IMG = Path(__file__).resolve().parent / "img"
MANIFEST = "charts.json"
#: The demo's clock starts here, not 30 days before today: its two returns come
#: either side of a month end, so the monthly chart has a line.
START = datetime(2026, 3, 19, 1, 0, tzinfo=UTC)


class _FixedStartClock(demo._StepClock):
    def __init__(self, start: datetime | None = None) -> None:
        self.now = START


@functools.cache
def demo_report() -> reports.Report:
    """The report over everything ``reqmgmt demo`` writes, with the clock started at START."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        with mock.patch.object(demo, "_StepClock", _FixedStartClock):
            status = demo.run_demo(url, io.StringIO())
        if status != 0:
            raise SystemExit(f"the demo failed (exit {status}); no charts drawn")
        with Desk.open(url, create=False) as desk:
            return desk.report()


def chart_data(report: reports.Report) -> dict[str, Any]:
    """The figures the charts are drawn from, as JSON-ready data."""
    return {
        "dwell": [[d.kind, d.state, d.total_hours] for d in report.dwell],
        "complaints_by_month": [list(pair) for pair in report.returns.by_month],
    }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_hashes(report: reports.Report) -> dict[str, str]:
    """The hash of the chart data and of the code that draws it."""
    data = json.dumps(chart_data(report), sort_keys=True, ensure_ascii=False)
    return {
        "data_sha256": _sha256(data.encode("utf-8")),
        "code_sha256": _sha256(inspect.getsource(reports.charts).encode("utf-8")),
    }


def _shrink(path: Path) -> None:
    """Rewrite a chart as a 32-colour palette PNG: a quarter of the size, the same to the eye."""
    from PIL import Image  # matplotlib's own dependency

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(
            colors=32, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    small.save(path, optimize=True)


def generate(directory: Path = IMG) -> list[Path]:
    """Draw the charts into ``directory`` and write the manifest beside them."""
    report = demo_report()
    written = reports.charts(report, directory)
    for path in written:
        _shrink(path)
    manifest = {
        "generated_by": "python docs/gen_charts.py",
        **expected_hashes(report),
        "files": {p.name: _sha256(p.read_bytes()) for p in sorted(written)},
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return written


def problems(directory: Path = IMG) -> list[str]:
    """Why the committed charts in ``directory`` are stale or missing (empty when fresh)."""
    path = directory / MANIFEST
    if not path.is_file():
        return [f"{path} is missing"]
    manifest = json.loads(path.read_text(encoding="utf-8"))
    found = []
    for key, value in expected_hashes(demo_report()).items():
        if manifest.get(key) != value:
            what = "demo's figures" if key == "data_sha256" else "drawing code (reports.charts)"
            found.append(f"the {what} changed since the charts were drawn")
    files = manifest.get("files") or {}
    if not files:
        found.append(f"{path} lists no chart")
    for name, digest in sorted(files.items()):
        picture = directory / name
        if not picture.is_file():
            found.append(f"{picture} is missing")
        elif _sha256(picture.read_bytes()) != digest:
            found.append(f"{picture} is not the picture the generator drew")
    return found


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        found = problems()
        for problem in found:
            print(f"docs/img: {problem}; run: python docs/gen_charts.py", file=sys.stderr)
        return 1 if found else 0
    if argv:
        print("usage: python docs/gen_charts.py [--check]", file=sys.stderr)
        return 2
    for path in generate():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
