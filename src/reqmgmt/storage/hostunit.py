"""Commands inside a transaction the host owns (:meth:`reqmgmt.Desk.unit_of_work`).

A :class:`HostUnit` ties a SQL store to the host's SQLAlchemy ``Connection``
while the ``with`` block runs: every store transaction of that store in this
thread (or asyncio task: a ``ContextVar``) becomes a SAVEPOINT on the host's
connection, and the after-commit steps of the commands (observers, delivery)
wait in the unit's queue.  The queue runs when the host's transaction commits
and is dropped when it rolls back:

* SQLAlchemy Core has no "after commit" event, only ``commit``, fired just
  before the driver's commit.  The listener here commits the driver
  connection itself, runs the queue, and SQLAlchemy's own driver commit that
  follows finds nothing left to commit (a no-op on sqlite3 and psycopg).  A
  driver commit that fails raises (wrapped as SQLAlchemy wraps it) and the
  queue is dropped: nothing is observed or delivered for a transaction that
  did not commit.
* ``rollback`` drops the queue; ``rollback_savepoint`` (the host rolling
  back to a savepoint it took) drops what was queued since that savepoint.

The listeners are put on each host ``Connection`` once and hold nothing
between units (the waiting units are kept in a weak mapping).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:  # SQLAlchemy is imported by the SQL store, not by ``import reqmgmt``
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection

__all__ = ["HostUnit", "current", "deferred", "open_units"]

log = logging.getLogger("reqmgmt")

#: The units open in this context, innermost last (usually none or one).
_OPEN: ContextVar[tuple[HostUnit, ...]] = ContextVar("reqmgmt_units", default=())

#: Per host connection: the units waiting for its transaction's end.
_WAITING: weakref.WeakKeyDictionary[Connection, list[HostUnit]] = weakref.WeakKeyDictionary()

#: Host connections that have the two listeners already.
_HOOKED: weakref.WeakSet[Connection] = weakref.WeakSet()


class HostUnit:
    """One ``with desk.unit_of_work(connection=conn):`` block and what waits for its commit.

    ``state``: ``open`` (commands run on the host's connection), then
    ``committed`` or ``rolled back`` when the host's transaction ends (commands
    are refused from then on, inside the block too), or ``closed`` when the
    block ends first (the queue still waits for the host's commit).
    """

    def __init__(self, store: object, connection: Connection) -> None:
        self.store = store
        self.connection = connection
        self.state = "open"
        self._pending: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        #: The thread that opened the unit: the host's connection is not shared
        #: with others (asyncio.to_thread copies the context, not the connection's safety).
        self.thread = threading.get_ident()
        #: Savepoints open on the connection (innermost last): how much was queued then.
        self._marks: list[int] = []

    @property
    def pending(self) -> int:
        """How many after-commit steps wait for the host's commit."""
        return len(self._pending)

    def defer(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        self._pending.append((fn, args))

    def _run(self) -> None:
        pending, self._pending = self._pending, []
        for fn, args in pending:
            try:
                fn(*args)
            except Exception:  # committed already: nothing here may undo it or raise into it
                log.exception("after the host's commit: %s failed", getattr(fn, "__name__", fn))


def current(store: object) -> HostUnit | None:
    """The unit open on ``store`` in this context, or ``None``."""
    for unit in _OPEN.get():
        if unit.store is store:
            if unit.thread != threading.get_ident() and unit.state == "open":
                raise ConfigError(
                    "unit_of_work",
                    "a command from another thread than the one that opened the unit "
                    "(asyncio.to_thread, an executor): the host's connection serves one "
                    "thread; run the commands in the unit's thread, or open a unit there",
                )
            return unit
    return None


def any_open() -> bool:
    """Whether a unit is open in this context, on any store."""
    return bool(_OPEN.get())


#: The units open in this context (``_OPEN.get``, bound once): what :func:`deferred`
#: asks first, for a caller to ask without the call (and its packed arguments).
open_units = _OPEN.get


def deferred(store: object, fn: Callable[..., None], *args: Any) -> bool:
    """Queue ``fn(*args)`` for after the host's commit when a unit is open on ``store``.

    ``False``: no unit is open here; the caller runs ``fn`` now.
    """
    units = _OPEN.get()
    if not units:
        return False
    unit = current(store)
    if unit is None or unit.state != "open":
        return False
    unit.defer(fn, args)
    return True


def check_connection(connection: object, engine: sa.Engine, backend: str) -> Connection:
    """The host's connection if a unit can run on it, else :class:`ConfigError` saying why."""
    from sqlalchemy.engine import Connection

    where = "unit_of_work(connection=...)"
    if not isinstance(connection, Connection):
        raise ConfigError(
            where, f"a SQLAlchemy Connection is needed, not {type(connection).__name__}"
        )
    if connection.closed or connection.invalidated:
        raise ConfigError(where, "the connection is closed or invalidated")
    if connection.dialect.name != backend or connection.engine.pool is not engine.pool:
        raise ConfigError(
            where,
            f"the connection is of another engine ({connection.dialect.name}, "
            f"{connection.engine.url.render_as_string(hide_password=True)}); pass one "
            "of the engine the Desk was opened with (Desk.open(engine=...))",
        )
    if not connection.in_transaction():
        raise ConfigError(
            where,
            "the connection has no transaction begun: the host owns the transaction "
            "(with engine.begin() as conn: ..., or conn.begin())",
        )
    raw = connection.connection.driver_connection
    if backend == "postgresql":
        if raw.autocommit:  # type: ignore[union-attr]
            raise ConfigError(where, "the connection is in autocommit mode")
    elif not raw.in_transaction:  # type: ignore[union-attr]
        if raw.isolation_level is None:  # type: ignore[union-attr]
            raise ConfigError(
                where,
                "the sqlite3 connection is in autocommit mode and no BEGIN was issued",
            )
        # pysqlite begins lazily, at the first write: begin now, so the first
        # SAVEPOINT is not taken for the outer transaction (and released as a commit).
        raw.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
    return connection


def enter(unit: HostUnit) -> Any:
    """Open ``unit`` in this context; returns the token for :func:`leave`."""
    if current(unit.store) is not None:
        raise ConfigError(
            "unit_of_work",
            "a unit of work is open on this Desk already in this thread; run the commands "
            "in it (units do not nest: the host's transaction is one)",
        )
    _hook(unit.connection)
    _WAITING.setdefault(unit.connection, []).append(unit)
    return _OPEN.set((*_OPEN.get(), unit))


def leave(unit: HostUnit, token: Any) -> None:
    """Close ``unit`` in this context; its queue keeps waiting for the host's commit."""
    _OPEN.reset(token)
    if unit.state == "open":
        unit.state = "closed"


def _hook(connection: Connection) -> None:
    if connection in _HOOKED:
        return
    import sqlalchemy as sa

    sa.event.listen(connection, "commit", _committing)
    sa.event.listen(connection, "rollback", _rolling_back)
    sa.event.listen(connection, "savepoint", _savepoint)
    sa.event.listen(connection, "release_savepoint", _releasing)
    sa.event.listen(connection, "rollback_savepoint", _rolling_back_to)
    _HOOKED.add(connection)


def _committing(connection: Connection) -> None:
    units = _WAITING.pop(connection, None)
    if not units:
        return
    try:
        # Commit now, so the queue runs after the commit (see the module's docstring).
        connection.connection.dbapi_connection.commit()  # type: ignore[union-attr]
    except Exception as exc:
        import sqlalchemy as sa

        for unit in units:
            unit.state = "rolled back"
            unit._pending.clear()
        dialect = connection.dialect
        raise sa.exc.DBAPIError.instance(
            None, None, exc, dialect.loaded_dbapi.Error, dialect=dialect
        ) from exc
    for unit in units:
        unit.state = "committed"
    # The queue runs outside the units (a command inside the block after the
    # host's commit is refused; the queue's own transactions are the store's).
    token = _OPEN.set(tuple(u for u in _OPEN.get() if u not in units))
    try:
        for unit in units:
            unit._run()
    finally:
        _OPEN.reset(token)


def _rolling_back(connection: Connection) -> None:
    for unit in _WAITING.pop(connection, None) or ():
        unit.state = "rolled back"
        unit._pending.clear()


def _savepoint(connection: Connection, _name: str | None) -> None:
    # SQLAlchemy names the savepoint after this event: the savepoints are a stack.
    for unit in _WAITING.get(connection, ()):
        unit._marks.append(len(unit._pending))


def _releasing(connection: Connection, _name: str, _context: object) -> None:
    for unit in _WAITING.get(connection, ()):
        if unit._marks:
            unit._marks.pop()


def _rolling_back_to(connection: Connection, _name: str, _context: object) -> None:
    # A savepoint of the host's rolled back over commands: their steps go too.
    for unit in _WAITING.get(connection, ()):
        if unit._marks:
            del unit._pending[unit._marks.pop() :]
        else:
            # A savepoint the host took before the unit opened: every command of
            # the unit ran inside it and is gone, and so is what waited for them.
            unit._pending.clear()
