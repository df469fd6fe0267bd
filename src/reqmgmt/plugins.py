"""Building the plugin manager, and the built-in defaults as a plugin."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

import pluggy

from . import hookspecs
from .errors import ConfigError, NoDatabase
from .hookcalls import ask_rule_functions
from .hookspecs import hookimpl
from .model import Money
from .reminders import Calendar, WorkCalendar
from .storage.base import Store
from .storage.memory import MemoryStore

__all__ = ["DEFAULTS_NAME", "DefaultPlugin", "make_plugin_manager", "rule_functions"]

DEFAULTS_NAME = "reqmgmt.defaults"


class DefaultPlugin:
    """What reqmgmt does when no host plugin answers.

    Registered first, so pluggy calls it last: any host implementation of a
    firstresult hook wins.
    """

    @hookimpl
    def reqmgmt_open_store(self, url: str, create: bool) -> Store | None:
        if url in ("memory://", "memory:"):
            if not create:
                raise NoDatabase(url, "a memory:// store is new and empty each time")
            return MemoryStore()
        if url.startswith(("sqlite:", "postgresql:", "postgresql+")):
            from .storage.sql import SqlStore  # SQLAlchemy is loaded only when used

            return SqlStore(url, create=create)
        return None

    @hookimpl
    def reqmgmt_calendar(self) -> Calendar:
        return WorkCalendar()

    @hookimpl
    def reqmgmt_convert_money(self, money: Money, currency: str, on: date) -> Money | None:
        if money.currency == currency:
            return money
        return None


def rule_functions(pm: pluggy.PluginManager) -> dict[str, Callable[..., Any]]:
    """The named predicates of every ``reqmgmt_rule_functions`` plugin, merged.

    A name given by two plugins raises :class:`ConfigError` naming both; an
    answer that is not a mapping of names to callables (or an exception)
    raises :class:`reqmgmt.HookError`.
    """
    merged: dict[str, Callable[..., Any]] = {}
    owner: dict[str, str] = {}
    for name, functions in ask_rule_functions(pm):
        for fname, fn in functions.items():
            if fname in merged:
                raise ConfigError(
                    f"rule function {fname!r}",
                    f"given by both plugin {owner[fname]!r} and plugin {name!r}",
                )
            merged[fname] = fn
            owner[fname] = name
    return merged


def make_plugin_manager(
    plugins: Iterable[object] = (), *, load_entrypoints: bool = False
) -> pluggy.PluginManager:
    """A new plugin manager with the defaults, ``plugins`` and (optionally) entry points.

    ``plugins`` are registered in order after the defaults, so the last one is
    called first.  With ``load_entrypoints``, plugins published under the
    ``reqmgmt`` entry-point group are loaded too.  A hook implementation with
    a misspelt name raises :class:`ConfigError`.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(DefaultPlugin(), name=DEFAULTS_NAME)
    for plugin in plugins:
        try:
            pm.register(plugin)
        except pluggy.PluginValidationError as exc:
            raise ConfigError(
                f"plugin {pm.get_name(exc.plugin) or exc.plugin!r}", str(exc)
            ) from exc
        except ValueError as exc:
            raise ConfigError(f"plugin {plugin!r}", str(exc)) from exc
    if load_entrypoints:
        pm.load_setuptools_entrypoints(hookspecs.PROJECT)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        known = ", ".join(sorted(n for n in dir(pm.hook) if n.startswith("reqmgmt_")))
        raise ConfigError(
            f"plugin {pm.get_name(exc.plugin)!r}", f"{exc}; known hooks: {known}"
        ) from exc
    return pm
