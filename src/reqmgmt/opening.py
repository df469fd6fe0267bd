"""Opening a Desk: the options of :meth:`reqmgmt.Desk.open` turned into a rule set and a store.

Also the Desk's working calendar, and which stores can join the host's
transaction (:meth:`reqmgmt.Desk.unit_of_work`).  docs/api/desk.md,
"Opening a Desk", describes the options; docs/storage.md the stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import pluggy

from .errors import ConfigError
from .hookcalls import ask_calendar, ask_open_store
from .plugins import rule_functions
from .reminders import Calendar, with_company_days
from .rules import RuleSet, load_rules
from .rules.loader import Source
from .storage.base import Store

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import sqlalchemy

__all__ = ["calendar", "join_host_transaction", "open_store", "ruleset"]


def ruleset(
    rules: RuleSet | Source | Sequence[Source] | None, pm: pluggy.PluginManager
) -> RuleSet | None:
    """``rules`` as a RuleSet: files or dicts are merged over the defaults; ``None`` stays."""
    if rules is None or isinstance(rules, RuleSet):
        return rules
    return load_rules(rules, functions=rule_functions(pm), with_defaults=True)


def open_store(
    pm: pluggy.PluginManager,
    url: str,
    engine: sqlalchemy.Engine | None,
    table_prefix: str,
    create: bool,
) -> Store:
    """The store at ``url`` or on the host's ``engine``; :class:`ConfigError` if none opens it."""
    store = _host_store(url, engine, table_prefix, create)
    if store is None:
        store = ask_open_store(pm, url, create)
    if store is None:
        raise ConfigError(
            f"store URL {url!r}",
            "no plugin opens this URL; built in: 'memory://', 'sqlite:///path.db', "
            "'postgresql+psycopg://...'; a host plugin may "
            "implement reqmgmt_open_store for others",
        )
    return store


def calendar(pm: pluggy.PluginManager, rules: RuleSet) -> Calendar:
    """The working calendar of ``reqmgmt_calendar``, with ``rules``' ``[calendar]`` days."""
    found = ask_calendar(pm)
    if found is None:
        raise ConfigError("reqmgmt_calendar", "no plugin gave a working calendar")
    return with_company_days(found, rules)


def join_host_transaction(
    store: Store, connection: sqlalchemy.Connection
) -> AbstractContextManager[Any]:
    """The store's unit of work on the host's ``connection``; :class:`ConfigError` if none."""
    opener = getattr(store, "unit_of_work", None)
    if opener is None:
        raise ConfigError(
            "unit_of_work",
            f"the store {type(store).__name__} cannot join the host's transaction; "
            "open the Desk on a SQL store: Desk.open(engine=...) or a sqlite/postgresql URL",
        )
    return cast("AbstractContextManager[Any]", opener(connection))


def _host_store(
    url: str, engine: sqlalchemy.Engine | None, table_prefix: str, create: bool
) -> Store | None:
    """The SQL store on the host's ``engine``, or on ``url`` with a table prefix; else ``None``."""
    if engine is None and table_prefix == "":
        return None  # the reqmgmt_open_store hook opens the URL
    if engine is not None and url != "memory://":
        raise ConfigError("Desk.open", "give a store URL or engine=..., not both")
    if engine is None and not url.startswith(("sqlite:", "postgresql:", "postgresql+")):
        raise ConfigError(
            f"table_prefix {table_prefix!r}",
            "a table prefix needs a SQL store (sqlite, postgresql)",
        )
    from .storage.sql import SqlStore  # SQLAlchemy is loaded only when used

    if engine is not None:
        return SqlStore(engine=engine, table_prefix=table_prefix, create=create)
    return SqlStore(url, table_prefix=table_prefix, create=create)
