"""Peers that persist, side by side: reqmgmt against django-fsm-2 and python-statemachine.

The same lifecycle per requirement as ``bench_lifecycle.py`` and
``bench_sqlite.py`` (receive, start_evaluation, three sign-offs, accept,
start, complete, close: 9 audited commands), measured in one process,
rounds interleaved, the best round of each reported (the machine is shared
and noisy; the best round is the one least disturbed):

- reqmgmt on SQLite: the store of ``bench_sqlite.py`` (WAL, ``synchronous``
  FULL by default, every command its own ``BEGIN IMMEDIATE``, busy timeout);
- django-fsm-2 + audit row: a Django model with an ``FSMField`` and one
  ``@transition`` method per event (``ConcurrentTransitionMixin``, the
  sign-offs kept in a JSON field, accept conditioned on all three), and per
  command, in one ``transaction.atomic()``: load the row, run the
  transition, save it, and insert a SHA-256 hash-chained audit row (the
  chain's head kept on the row, so no extra read).  The same SQLite file
  settings: WAL, the same ``synchronous``, busy timeout,
  ``transaction_mode=IMMEDIATE``;
- django-fsm-2 + django-simple-history: the same model with
  ``HistoricalRecords()`` instead of the audit row (a history row per save,
  no hash chain);
- reqmgmt in memory (``memory://``) against python-statemachine with one
  machine per object doing the same 8 transitions in memory, persisting
  nothing: the version installed here, and any other version installed with
  ``pip install --target DIR 'python-statemachine<3'`` and named with
  ``--statemachine-path DIR`` (measured in a child process with DIR first on
  its path, so two versions never share one interpreter).

What each side does per command is not the same: reqmgmt also runs its
veto/observer hooks, sign-off eligibility, guards, deadlines on the working
calendar and outbox notifications; the Django peer checks the source state,
one condition and the optimistic state check.  The peers are the least a
hand-written Django module would do, so the ratios are a lower bound on
what reqmgmt saves.

Run: ``pip install -e '.[bench]'`` then
``python benchmarks/bench_peers.py [--n 500] [--rounds 5] [--synchronous NORMAL]``;
``--smoke`` for a quick check; ``--instructions`` for valgrind instruction
counts per command (a small run subtracted from a large one).  Figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.metadata
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_lifecycle import PATH, run_reqmgmt, run_statemachine, statemachine_class

from reqmgmt import Desk

DEPARTMENTS = ("engineering", "materials", "production")
ROLES = {"clerk": {"sales"}, "eng": set(), "mat": set(), "pro": {"production"}}


def version_of(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# --- Django ------------------------------------------------------------------

_DJANGO: dict[str, Any] = {}


def django_models(path: Path, synchronous: str) -> dict[str, Any]:
    """Configure Django once on ``path`` (the pragmas of reqmgmt's SQLite store); the models."""
    if _DJANGO:
        return _DJANGO
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "simple_history"],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(path),
                "OPTIONS": {
                    "init_command": (
                        "PRAGMA journal_mode=WAL; "
                        f"PRAGMA synchronous={synchronous}; PRAGMA busy_timeout=30000"
                    ),
                    "transaction_mode": "IMMEDIATE",
                    "timeout": 30,
                },
            }
        },
    )
    django.setup()
    from django.db import models
    from django_fsm import ConcurrentTransitionMixin, FSMField, transition
    from simple_history.models import HistoricalRecords

    # The models live in an app "peers" that is only a name: simple-history puts
    # its historical model into the declaring module, so that module must exist.
    for module in ("peers", "peers.models"):
        sys.modules.setdefault(module, types.ModuleType(module))

    def may(*roles: str) -> Callable[[Any, str], bool]:
        return lambda _instance, actor: bool(ROLES[actor] & set(roles))

    def all_signed(instance: Any) -> bool:
        return {s["department"] for s in instance.signoffs} >= set(DEPARTMENTS)

    class Lifecycle(ConcurrentTransitionMixin, models.Model):  # type: ignore[misc]
        ref = models.CharField(max_length=32, unique=True)
        customer = models.CharField(max_length=32)
        description = models.TextField()
        state = FSMField(default="received", protected=True)
        version = models.IntegerField(default=1)
        signoffs = models.JSONField(default=list)
        delivery_plan = models.TextField(default="")
        note = models.TextField(default="")
        updated_at = models.DateTimeField()

        class Meta:
            abstract = True

        @transition(field=state, source="received", target="evaluating", permission=may("sales"))
        def start_evaluation(self, actor: str) -> None:
            pass

        @transition(field=state, source="evaluating", target="evaluating")
        def sign(self, actor: str, department: str, opinion: str) -> None:
            if department in {s["department"] for s in self.signoffs}:
                raise ValueError(f"{department} has signed")
            self.signoffs = [
                *self.signoffs,
                {"department": department, "actor": actor, "opinion": opinion},
            ]

        @transition(
            field=state, source="evaluating", target="accepted", conditions=[all_signed],
            permission=may("sales"),
        )  # fmt: skip
        def accept(self, actor: str, delivery_plan: str) -> None:
            self.delivery_plan = delivery_plan

        @transition(
            field=state, source="accepted", target="in_progress", permission=may("production")
        )
        def start(self, actor: str) -> None:
            pass

        @transition(
            field=state, source="in_progress", target="completed", permission=may("production")
        )
        def complete(self, actor: str, note: str) -> None:
            self.note = note

        @transition(field=state, source="completed", target="closed", permission=may("sales"))
        def close(self, actor: str) -> None:
            pass

    class AuditedRequirement(Lifecycle):
        audit_head = models.CharField(max_length=64, default="")

        class Meta:
            app_label = "peers"

    class AuditRow(models.Model):
        ref = models.CharField(max_length=32)
        version = models.IntegerField()
        hash = models.CharField(max_length=64)
        doc = models.TextField()

        class Meta:
            app_label = "peers"
            constraints = (models.UniqueConstraint(fields=["ref", "version"], name="audit_key"),)

    class HistoryRequirement(Lifecycle):
        # As if declared in an app "peers" (simple-history names its model's module so).
        __module__ = "peers.models"
        history = HistoricalRecords(app="peers")

        class Meta:
            app_label = "peers"

    _DJANGO.update(
        audited=AuditedRequirement,
        audit=AuditRow,
        history=HistoryRequirement,
        historical=HistoryRequirement.history.model,
    )
    return _DJANGO


def django_fresh_file(path: Path) -> None:
    """Point Django's connection at a new file and create the tables there."""
    from django.contrib.auth.models import User
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = str(path)
    with connection.schema_editor() as editor:
        editor.create_model(User)  # simple-history's history_user points at it
        for name in ("audited", "audit", "history", "historical"):
            editor.create_model(_DJANGO[name])


def _permitted(instance: Any, event: str, actor: str) -> Any:
    from django_fsm import has_transition_perm

    method = getattr(instance, event)
    if not has_transition_perm(method, actor):
        raise PermissionError(f"{actor} may not {event} {instance.ref}")
    return method


def run_django_audit(n: int, first: int) -> int:
    """django-fsm-2 with a hash-chained audit row per command; commands run."""
    from django.db import transaction
    from django.utils import timezone

    model, audit = _DJANGO["audited"], _DJANGO["audit"]

    def seal(obj: Any, event: str, actor: str, data: dict[str, str], before: str) -> None:
        doc = json.dumps(
            {"ref": obj.ref, "version": obj.version, "event": event, "actor": actor,
             "from": before, "to": obj.state, "at": obj.updated_at.isoformat(), "data": data,
             "prev": obj.audit_head},
            sort_keys=True, separators=(",", ":"), ensure_ascii=False,
        )  # fmt: skip
        digest = hashlib.sha256(doc.encode()).hexdigest()
        audit.objects.create(ref=obj.ref, version=obj.version, hash=digest, doc=doc)
        obj.audit_head = digest

    def command(ref: str, event: str, actor: str, **data: str) -> None:
        with transaction.atomic():
            obj = model.objects.get(ref=ref)
            before = obj.state
            _permitted(obj, event, actor)(actor, **data)
            obj.version += 1
            obj.updated_at = timezone.now()
            seal(obj, event, actor, data, before)
            obj.save()

    for i in range(first, first + n):
        ref = f"REQ-{i:06d}"
        with transaction.atomic():
            obj = model(ref=ref, customer="HK-001", description="10,000 brackets, zinc plated",
                        updated_at=timezone.now())  # fmt: skip
            seal(obj, "receive", "clerk", {}, "")
            obj.save()
        _path(command, ref)
    return n * 9


def run_django_history(n: int, first: int) -> int:
    """django-fsm-2 with django-simple-history's row per save; commands run."""
    from django.db import transaction
    from django.utils import timezone

    model = _DJANGO["history"]

    def command(ref: str, event: str, actor: str, **data: str) -> None:
        with transaction.atomic():
            obj = model.objects.get(ref=ref)
            _permitted(obj, event, actor)(actor, **data)
            obj.version += 1
            obj.updated_at = timezone.now()
            obj.save()

    for i in range(first, first + n):
        ref = f"REQ-{i:06d}"
        with transaction.atomic():
            model.objects.create(ref=ref, customer="HK-001", updated_at=timezone.now(),
                                 description="10,000 brackets, zinc plated")  # fmt: skip
        _path(command, ref)
    return n * 9


def _path(command: Callable[..., None], ref: str) -> None:
    """The 8 commands after receive, as ``run_reqmgmt`` issues them."""
    command(ref, "start_evaluation", "clerk")
    command(ref, "sign", "eng", department="engineering", opinion="can do")
    command(ref, "sign", "mat", department="materials", opinion="in stock")
    command(ref, "sign", "pro", department="production", opinion="week 12")
    command(ref, "accept", "clerk", delivery_plan="2 lots, weeks 12 and 14")
    command(ref, "start", "pro")
    command(ref, "complete", "pro", note="shipped complete")
    command(ref, "close", "clerk")


# --- python-statemachine in a child process (another version) ----------------


def statemachine_elsewhere(path: str, n: int, rounds: int) -> dict[str, Any]:
    """Best µs per transition of the python-statemachine installed under ``path``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([path, str(Path(__file__).parent)])}
    done = subprocess.run(
        [sys.executable, __file__, "--only", "statemachine", "--n", str(n),
         "--rounds", str(rounds), "--json"],
        capture_output=True, text=True, env=env, check=True, cwd=path,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def statemachine_version() -> str:
    import statemachine

    return str(getattr(statemachine, "__version__", "")) or version_of("python-statemachine")


# --- timing ------------------------------------------------------------------


class Contenders:
    """Each contender as a callable running ``n`` requirements (commands returned)."""

    def __init__(self, tmp: Path, synchronous: str) -> None:
        self.tmp = tmp
        self.sync = synchronous
        self.serial = itertools.count()
        self.numbers = itertools.count()
        self.sm_cls = statemachine_class()
        self.memory_desk = Desk.open("memory://", autodispatch=False)

    def file(self, name: str) -> Path:
        return self.tmp / f"{name}-{next(self.serial)}.db"

    def reqmgmt_sqlite(self, n: int) -> int:
        url = f"sqlite:///{self.file('reqmgmt')}?synchronous={self.sync}"
        with Desk.open(url, autodispatch=False) as desk:
            run_reqmgmt(desk, 2)  # opening and the first command's caches stay out
            gc.collect()
            start = time.perf_counter()
            done = run_reqmgmt(desk, n)
            self.last = (time.perf_counter() - start) / done
        return done

    def django_audit(self, n: int) -> int:
        django_models(self.file("django"), self.sync)
        django_fresh_file(self.file("django"))
        run_django_audit(2, next(self.numbers) * 1_000_000)
        gc.collect()
        start = time.perf_counter()
        done = run_django_audit(n, next(self.numbers) * 1_000_000)
        self.last = (time.perf_counter() - start) / done
        # The work was done: every requirement closed, one chained audit row per command.
        audit, model = _DJANGO["audit"], _DJANGO["audited"]
        assert audit.objects.count() == 9 * (n + 2)
        assert model.objects.filter(state="closed").count() == n + 2
        return done

    def django_history(self, n: int) -> int:
        django_models(self.file("django"), self.sync)
        django_fresh_file(self.file("django"))
        run_django_history(2, next(self.numbers) * 1_000_000)
        gc.collect()
        start = time.perf_counter()
        done = run_django_history(n, next(self.numbers) * 1_000_000)
        self.last = (time.perf_counter() - start) / done
        assert _DJANGO["historical"].objects.count() == 9 * (n + 2)
        assert _DJANGO["history"].objects.filter(state="closed").count() == n + 2
        return done

    def reqmgmt_memory(self, n: int) -> int:
        gc.collect()
        start = time.perf_counter()
        done = run_reqmgmt(self.memory_desk, n)
        self.last = (time.perf_counter() - start) / done
        return done

    def statemachine(self, n: int) -> int:
        gc.collect()
        start = time.perf_counter()
        done = run_statemachine(self.sm_cls, n)
        self.last = (time.perf_counter() - start) / done
        return done


PERSISTING = ("reqmgmt_sqlite", "django_audit", "django_history")
IN_MEMORY = ("reqmgmt_memory", "statemachine")


def best_of(
    contenders: Contenders, names: tuple[str, ...], n: int, rounds: int
) -> dict[str, float]:
    """Best µs per command of each contender over interleaved rounds."""
    best = {name: float("inf") for name in names}
    for _ in range(rounds):
        for name in names:
            getattr(contenders, name)(n)
            best[name] = min(best[name], contenders.last * 1e6)
    return best


# --- instruction counts ------------------------------------------------------


def instructions(name: str, n: int, extra_path: str | None = None) -> int:
    """Instructions (valgrind cachegrind, ``I refs``) of one run of ``name`` on ``n`` objects."""
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join([extra_path, str(Path(__file__).parent)])
    done = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, __file__, "--only", name, "--n", str(n), "--rounds", "1", "--json"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def per_command_instructions(name: str, small: int, large: int, extra: str | None = None) -> float:
    """Instructions per command: a small run subtracted from a large one."""
    per_object = 9 if name != "statemachine" else len(PATH)
    diff = instructions(name, large, extra) - instructions(name, small, extra)
    return diff / ((large - small) * per_object)


# --- main --------------------------------------------------------------------


def only(name: str, n: int, rounds: int, synchronous: str) -> None:
    """One contender, for a child process or valgrind: its best µs per command as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        contenders = Contenders(Path(tmp), synchronous)
        best = best_of(contenders, (name,), n, rounds)
    version = statemachine_version() if name == "statemachine" else version_of("reqmgmt")
    print(json.dumps({"name": name, "us": best[name], "version": version}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="requirements per round (default 500)")
    parser.add_argument("--memory-n", type=int, default=5000,
                        help="requirements per round in memory (default 5,000)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (best reported)")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--statemachine-path", action="append", default=[], metavar="DIR",
                        help="`pip install --target DIR` of another statemachine")  # fmt: skip
    parser.add_argument("--instructions", action="store_true",
                        help="valgrind instruction counts per command, not wall time")  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="a quick run (n=10, one round)")
    parser.add_argument("--only", choices=[*PERSISTING, *IN_MEMORY], help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        only(args.only, args.n, args.rounds, args.synchronous)
        return
    n, memory_n, rounds = (10, 50, 1) if args.smoke else (args.n, args.memory_n, args.rounds)
    versions = {
        dist: version_of(dist)
        for dist in ("reqmgmt", "Django", "django-fsm-2", "django-simple-history",
                     "python-statemachine", "transitions")
    }  # fmt: skip
    sm_here = statemachine_version()
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"Python {sys.version.split()[0]}; SQLite {__import__('sqlite3').sqlite_version}")
    if args.instructions:
        report_instructions(args, sm_here)
        return

    with tempfile.TemporaryDirectory() as tmp:
        contenders = Contenders(Path(tmp), args.synchronous)
        # Warm-up: imports, Django's set-up and first-call caches stay out.
        best_of(contenders, PERSISTING + IN_MEMORY, 2, 1)
        persisting = best_of(contenders, PERSISTING, n, rounds)
        in_memory = best_of(contenders, IN_MEMORY, memory_n, rounds)
    others = [statemachine_elsewhere(p, memory_n, rounds) for p in args.statemachine_path]

    ours, audit, history = (persisting[k] for k in PERSISTING)
    print(f"\nSQLite, synchronous={args.synchronous}: {n:,} requirements x 9 commands per round, "
          f"best of {rounds} interleaved round(s), µs per command")  # fmt: skip
    print(f"  reqmgmt (audit chain, outbox)          {ours:9.1f}")
    print(f"  django-fsm-2 + hash-chained audit row  {audit:9.1f}")
    print(f"  django-fsm-2 + django-simple-history   {history:9.1f}")
    print(f"  django-fsm-2 + audit row / reqmgmt:       {audit / ours:5.2f}x  (target >= 3)")
    print(f"  django-fsm-2 + simple-history / reqmgmt:  {history / ours:5.2f}x")
    mem = in_memory["reqmgmt_memory"]
    print(
        f"\nIn memory: {memory_n:,} requirements per round, best of {rounds}, "
        "µs per command (reqmgmt) or per transition (python-statemachine)"
    )
    print(f"  reqmgmt, memory store (audited)        {mem:9.1f}")
    rows = [(sm_here, in_memory["statemachine"])] + [(o["version"], o["us"]) for o in others]
    for version, us in rows:
        print(f"  python-statemachine {version:<8} per object {us:9.1f}  "
              f"reqmgmt / it: {mem / us:5.2f}x"
              + ("  (target <= 1.5)" if version.startswith("2.") else ""))  # fmt: skip


def report_instructions(args: argparse.Namespace, sm_here: str) -> None:
    """Instructions per command of each contender (large run minus small run)."""
    small, large = (2, 6) if args.smoke else (20, 120)
    print(f"instructions per command (valgrind cachegrind; {large} minus {small} objects)")
    counts: dict[str, float] = {}
    for name in (*PERSISTING, *IN_MEMORY):
        counts[name] = per_command_instructions(name, small, large)
        print(f"  {name:<32} {counts[name] / 1e3:9.1f}k")
    for path in args.statemachine_path:
        version = statemachine_elsewhere(path, 1, 1)["version"]
        per = per_command_instructions("statemachine", small, large, path)
        print(
            f"  statemachine {version:<19} {per / 1e3:9.1f}k  "
            f"reqmgmt memory / it: {counts['reqmgmt_memory'] / per:5.2f}x"
        )
    print(
        f"  django-fsm-2 + audit row / reqmgmt SQLite: "
        f"{counts['django_audit'] / counts['reqmgmt_sqlite']:5.2f}x"
    )
    print(
        f"  reqmgmt memory / python-statemachine {sm_here}: "
        f"{counts['reqmgmt_memory'] / counts['statemachine']:5.2f}x"
    )


if __name__ == "__main__":
    main()
