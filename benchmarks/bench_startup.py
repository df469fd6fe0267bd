"""Start-up: `import reqmgmt` and opening an existing SQLite database, in fresh processes.

Each figure is the median over ``--runs`` new interpreters (wall time inside
the process, so interpreter start-up is left out):

- ``import reqmgmt``;
- the first ``Desk.open(url)`` of a process on an existing database at the
  current schema (what a cron worker or a CLI command pays), after the import;
- both together;
- a ``Desk.open`` in a process that opened one before (warm: no imports).

Also says whether ``importlib.metadata`` is imported by ``import reqmgmt`` and
whether Alembic and Mako are by the open.  ``--src DIR`` measures another
checkout's ``src`` (e.g. a ``git archive`` of an older commit) with this
interpreter.  Run: ``python benchmarks/bench_startup.py [--runs 21]``;
``--smoke`` for a quick check.  Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

IMPORT = "import time; t = time.perf_counter(); import reqmgmt; print(time.perf_counter() - t)"
OPEN = (
    "import time\nimport reqmgmt\nfrom reqmgmt import Desk\n"
    "t = time.perf_counter(); Desk.open({url!r}).close(); print(time.perf_counter() - t)"
)
BOTH = (
    "import time\nt = time.perf_counter()\nfrom reqmgmt import Desk\n"
    "Desk.open({url!r}).close(); print(time.perf_counter() - t)"
)
WARM = (
    "import statistics, time\nfrom reqmgmt import Desk\nDesk.open({url!r}).close()\nts = []\n"
    "for _ in range(30):\n    t = time.perf_counter(); Desk.open({url!r}).close()\n"
    "    ts.append(time.perf_counter() - t)\nprint(statistics.median(ts))"
)
MODULES = (
    "import sys\nimport reqmgmt\nmeta = 'importlib.metadata' in sys.modules\n"
    "from reqmgmt import Desk\nDesk.open({url!r}).close()\n"
    "print(meta, 'alembic' in sys.modules, 'mako' in sys.modules)"
)


def _run(code: str, env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="fresh processes per figure")
    parser.add_argument("--src", help="measure this src directory instead of the installed one")
    parser.add_argument("--smoke", action="store_true", help="a quick run (3 processes)")
    args = parser.parse_args()
    runs = 3 if args.smoke else args.runs
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'startup.db'}"
        _run(f"from reqmgmt import Desk; Desk.open({url!r}).close()", env)  # create it
        figures: dict[str, list[float]] = {"import": [], "open": [], "both": []}
        for _ in range(runs):  # interleaved: load on the machine hits all three alike
            figures["import"].append(float(_run(IMPORT, env)))
            figures["open"].append(float(_run(OPEN.format(url=url), env)))
            figures["both"].append(float(_run(BOTH.format(url=url), env)))
        warm = float(_run(WARM.format(url=url), env))
        meta, alembic, mako = _run(MODULES.format(url=url), env).split()
    for name, label in (
        ("import", "import reqmgmt"),
        ("open", "first Desk.open, existing db"),
        ("both", "import + first open"),
    ):
        values = figures[name]
        print(
            f"{label:30} median {statistics.median(values) * 1000:7.1f} ms"
            f"   min {min(values) * 1000:7.1f} ms   ({runs} processes)"
        )
    print(f"{'warm Desk.open':30} median {warm * 1000:7.2f} ms")
    print(f"import reqmgmt imports importlib.metadata: {meta}")
    print(f"opening a current database imports alembic: {alembic}, mako: {mako}")


if __name__ == "__main__":
    main()
