"""List every kind of hole the stateful test finds, without stopping at the first.

The test stops at the first broken promise and shrinks it; to see them all at
once (for a note, or after a change), run the same machine here: each broken
promise is counted by kind, with the first call that showed it, and the run
goes on.  Generation only, no shrinking::

    python -m tests.adversarial.hunt memory 200 50
    python -m tests.adversarial.hunt sqlite 200 50
    python -m tests.adversarial.hunt postgresql 200 50 postgresql+psycopg://...

The PostgreSQL URL names an empty database; each example takes a schema in it.
"""

from __future__ import annotations

import collections
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import invariant, run_state_machine_as_test

from . import test_stateful as t
from .conftest import Stores

found: dict[str, str] = {}
counts: collections.Counter[str] = collections.Counter()


def kind_of(exc: AssertionError, label: str) -> str:
    """A short name for a broken promise: the call and where it broke, without refs."""
    if isinstance(exc, t.Escape) and exc.__cause__ is not None:
        frames = traceback.extract_tb(exc.__cause__.__traceback__)
        ours = [f for f in frames if "/reqmgmt/" in f.filename]
        where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
        return f"(c) {label.partition('(')[0]} raised {type(exc.__cause__).__name__} at {where}"
    text = re.sub(r"(REQ|CON|RMA)-\d+-\d+", "REF", str(exc))
    if " but wrote: " in text:
        tables = re.findall(r"(?:^|; )(\w+):", text.split(" but wrote: ")[1])
        return f"(b) refused {label.partition('(')[0]} wrote {', '.join(tables)}"
    return re.sub(r"'[^']*'", "'..'", text)[:110]


def keep(exc: AssertionError, label: str) -> None:
    kind = kind_of(exc, label)
    counts[kind] += 1
    found.setdefault(kind, str(exc)[:1200])


class Hunter(t.Adversary):
    """The adversary, noting each broken promise and carrying on."""

    def call(self, label: str, fn: Any, *, reads: bool = False) -> Any:
        try:
            return super().call(label, fn, reads=reads)
        except AssertionError as exc:
            keep(exc, label)
            return None

    def look(self, label: str, fn: Any) -> Any:
        try:
            return super().look(label, fn)
        except AssertionError as exc:
            keep(exc, label)
            return None

    @invariant()
    def promises_hold(self) -> None:
        try:
            super().promises_hold()
        except AssertionError as exc:
            keep(exc, "invariant")
            for record in self.desk.query():  # reported once, not after every step
                self.checked[record.ref] = record.version


def main(backend: str, examples: int, steps: int, pg_url: str | None = None) -> None:
    Hunter.stores = Stores(backend, Path(tempfile.mkdtemp()), pg_url)
    started, cpu = time.perf_counter(), time.process_time()
    run_state_machine_as_test(
        Hunter,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    tally = t.TALLY[backend]
    print(
        f"{backend}: {examples} x {steps} in {time.perf_counter() - started:.0f} s "
        f"({time.process_time() - cpu:.0f} s CPU); {tally.calls} calls, {tally.successes} "
        f"succeeded, refused {dict(tally.refusals.most_common())}, {tally.escapes} escapes"
    )
    print("reached:", dict(sorted(tally.reached.items())))
    for kind, n in counts.most_common():
        print(f"\n{n} x {kind}\n    {found[kind]}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5])
