"""Calling the hooks, and checking every answer against its documented type.

A hook answer is treated like any other input: hostile until checked.  Each
``ask_*``/``check_*`` function below calls one hook (or checks what it
returned) and gives back the answer in the form the engine uses, or raises
:class:`reqmgmt.HookError` naming the plugin, the hook and what it returned
(or raised), chained to the original exception.  docs/hooks.md lists, per
hook, what is accepted.

Implementations are called one by one in pluggy's order (the last
registered first), so the plugin behind an answer is known without calling
anything twice.  A hook nobody implements costs one ``get_hookimpls()``.
When a hook wrapper is registered on a hook, the call goes through pluggy
and an exception is traced back to the plugin whose code raised it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import pluggy

from .errors import HookError, ReqMgmtError, TransitionBlocked, ValidationError
from .people import normalize_actor_id

if TYPE_CHECKING:
    from .model import CreditRecord, Money
    from .reminders import Calendar
    from .storage.base import Store

__all__ = [
    "EXPECTED",
    "answers",
    "ask_approvers",
    "ask_authorize",
    "ask_before",
    "ask_calendar",
    "ask_convert",
    "ask_credit",
    "ask_design_project",
    "ask_escalation",
    "ask_next_number",
    "ask_notify",
    "ask_observers",
    "ask_open_store",
    "ask_rule_functions",
    "ask_subcontractors",
    "plugin_name",
]

log = logging.getLogger("reqmgmt")
T = TypeVar("T")

#: What each hook may answer, as the error messages say it.
EXPECTED: dict[str, str] = {
    "reqmgmt_open_store": "a Store (with transaction() and close()) or None",
    "reqmgmt_next_number": (
        "a reference string of 1 to 64 characters without surrounding spaces, control or "
        "zero-width characters, or None"
    ),
    "reqmgmt_approvers": (
        "a list or tuple with one collection (set, list, tuple) of actor-id strings per "
        "record, in the order of the records, or None"
    ),
    "reqmgmt_authorize": "exactly True, False or None",
    "reqmgmt_before_transition": "None; a veto raises reqmgmt.TransitionBlocked",
    "reqmgmt_after_transition": "None (an observer's answer is ignored)",
    "reqmgmt_notify": "None; a failed delivery raises",
    "reqmgmt_convert_money": "a reqmgmt.Money in the currency asked for, or None",
    "reqmgmt_rule_functions": "a mapping of non-empty name strings to callables, or None",
    "reqmgmt_calendar": (
        "an object with callable add(start, amount) and working_time(start, end), or None"
    ),
    "reqmgmt_escalation_contacts": (
        "a list or tuple of recipient strings ('role:...', 'user:...', 1 to 200 characters "
        "without control or zero-width characters), or None"
    ),
    "reqmgmt_customer_credit": (
        "a reqmgmt.CreditRecord whose customer_id is the customer's id, or None"
    ),
    "reqmgmt_design_project": (
        "a project reference string of 1 to 64 printable characters without surrounding "
        "spaces, or None"
    ),
    "reqmgmt_subcontractors": (
        "a list or tuple of subcontractor-id strings (1 to 64 printable characters without "
        "surrounding spaces), or None"
    ),
}

_NO_EXCEPTION = "an answer, not an exception"


def plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    """The name a plugin was registered under, else its module's or class's name.

    pluggy names a plugin registered without a name by its ``id()``, which
    tells a reader nothing.
    """
    name = pm.get_name(plugin)
    if name is None or name == str(id(plugin)):
        module = getattr(plugin, "__name__", None)
        return module if isinstance(module, str) else type(plugin).__name__
    return name


def _wrong(plugin: str, hook: str, value: object, why: str = "") -> HookError:
    answer = f"returned {HookError.short(value)}" + (f" ({why})" if why else "")
    return HookError(plugin, hook, answer, EXPECTED[hook])


def _raised(plugin: str, hook: str, exc: BaseException) -> HookError:
    try:
        text = HookError.short(str(exc))[1:-1]
    except Exception:  # an exception whose __str__ raises
        text = "(its message could not be read)"
    answer = f"raised {type(exc).__name__}: {text}"
    return HookError(plugin, hook, answer, f"{EXPECTED[hook]}; {_NO_EXCEPTION}")


def _checked(plugin: str, hook: str, value: Any, check: Callable[..., T], *args: Any) -> T:
    """``check(plugin, value, *args)``; any other exception than a HookError made one."""
    try:
        return check(plugin, value, *args)
    except HookError:
        raise
    except Exception as exc:
        raise _wrong(plugin, hook, value, f"reading it raised {type(exc).__name__}") from exc


def _owner(pm: pluggy.PluginManager, impls: Sequence[Any], exc: BaseException) -> str:
    """The plugin whose implementation raised ``exc``: the innermost in its traceback.

    (A hook wrapper the exception passed through is further out.)
    """
    codes = {getattr(i.function, "__code__", None): i.plugin for i in impls}
    found = None
    tb = exc.__traceback__
    while tb is not None:
        found = codes.get(tb.tb_frame.f_code, found)
        tb = tb.tb_next
    return "?" if found is None else plugin_name(pm, found)


def answers(
    pm: pluggy.PluginManager,
    hook: str,
    kwargs: Mapping[str, Any],
    *,
    first: bool = False,
    passes: tuple[type[BaseException], ...] = (),
) -> list[tuple[str, Any]]:
    """Call ``hook``'s implementations in pluggy's order; ``(plugin, answer)`` of each non-None.

    ``first``: stop at the first non-None answer (a firstresult hook).  An
    exception of a type in ``passes`` is re-raised as it is; any other
    becomes a :class:`HookError` chained to it.  The built-in defaults'
    own library errors pass unchanged (they already say what is wrong).
    """
    caller = getattr(pm.hook, hook)
    impls = caller.get_hookimpls()
    if not impls:
        return []
    if any(i.hookwrapper or i.wrapper for i in impls):
        return _through_pluggy(pm, hook, caller, impls, kwargs, first, passes)
    out: list[tuple[str, Any]] = []
    for impl in reversed(impls):
        try:
            value = impl.function(*[kwargs[a] for a in impl.argnames])
        except passes:
            raise
        except ReqMgmtError as exc:
            if _is_default(pm, impl.plugin):
                raise
            raise _raised(plugin_name(pm, impl.plugin), hook, exc) from exc
        except Exception as exc:
            raise _raised(plugin_name(pm, impl.plugin), hook, exc) from exc
        if value is not None:
            out.append((plugin_name(pm, impl.plugin), value))
            if first:
                break
    return out


def _is_default(pm: pluggy.PluginManager, plugin: object) -> bool:
    from .plugins import DEFAULTS_NAME  # plugins imports this module

    return pm.get_name(plugin) == DEFAULTS_NAME


def _through_pluggy(
    pm: pluggy.PluginManager,
    hook: str,
    caller: Any,
    impls: Sequence[Any],
    kwargs: Mapping[str, Any],
    first: bool,
    passes: tuple[type[BaseException], ...],
) -> list[tuple[str, Any]]:
    try:
        result = caller(**kwargs)
    except passes:
        raise
    except Exception as exc:
        raise _raised(_owner(pm, impls, exc), hook, exc) from exc
    who = "one of " + ", ".join(plugin_name(pm, i.plugin) for i in impls)
    if first:
        return [] if result is None else [(who, result)]
    if not isinstance(result, list):
        raise _wrong(who, hook, result, "a hook wrapper changed the list of answers")
    return [(who, value) for value in result if value is not None]


# --- storage and numbering ----------------------------------------------------------------


def ask_open_store(pm: pluggy.PluginManager, url: str, create: bool = True) -> Store | None:
    """``reqmgmt_open_store``: a Store or ``None``."""
    from .storage.base import Store

    kwargs = {"url": url, "create": create}
    for plugin, value in answers(pm, "reqmgmt_open_store", kwargs, first=True):
        return _checked(plugin, "reqmgmt_open_store", value, _store, Store)
    return None


def _store(plugin: str, value: Any, protocol: type[Store]) -> Store:
    if not isinstance(value, protocol):
        raise _wrong(plugin, "reqmgmt_open_store", value)
    return value


#: Longest reference a store keeps (the ``ref`` columns).
REF_MAX = 64


def ask_next_number(pm: pluggy.PluginManager, kind: str, year: int) -> str | None:
    """``reqmgmt_next_number``: a clean reference string or ``None``."""
    hook = "reqmgmt_next_number"
    for plugin, value in answers(pm, hook, {"kind": kind, "year": year}, first=True):
        return _checked(plugin, hook, value, _reference)
    return None


def _plain_id(value: str) -> str | None:
    """``value`` as a plain ``str`` id (1 to REF_MAX printable characters, no surrounding
    spaces, whatever a subclass overrides), or ``None`` when it is not one."""
    plain = value[:]
    if not plain or len(plain) > REF_MAX or plain != plain.strip() or not plain.isprintable():
        return None
    return plain


def _id_answer(plugin: str, hook: str, value: Any) -> str:
    """A hook's answer that must be one id (a number, a project reference)."""
    if not isinstance(value, str):
        raise _wrong(plugin, hook, value, f"a {type(value).__name__}")
    plain = _plain_id(value)
    if plain is None:
        raise _wrong(plugin, hook, value)
    return plain


def _reference(plugin: str, value: Any) -> str:
    return _id_answer(plugin, "reqmgmt_next_number", value)


# --- people and permissions ---------------------------------------------------------------

_SEQUENCES = (list, tuple)
_COLLECTIONS = (set, frozenset, list, tuple)


def ask_approvers(
    pm: pluggy.PluginManager, records: Sequence[Any], department: str
) -> tuple[frozenset[str], ...] | None:
    """``reqmgmt_approvers``: per record, the normalised ids that may sign; ``None``: no answer.

    The answer must be a list or tuple of exactly ``len(records)`` items, each
    a set, frozenset, list or tuple of id strings (a bare string is refused:
    ``"li.na"`` is not the collection ``{"li.na"}``).  Ids are put in
    canonical form (:mod:`reqmgmt.people`); an id that cannot be one is
    refused with the rest of the answer.
    """
    hook = "reqmgmt_approvers"
    found = answers(pm, hook, {"records": records, "department": department}, first=True)
    if not found:
        return None
    plugin, value = found[0]
    return _checked(plugin, hook, value, _approvers, len(records))


def _approvers(plugin: str, value: Any, count: int) -> tuple[frozenset[str], ...]:
    hook = "reqmgmt_approvers"
    if not isinstance(value, _SEQUENCES):
        raise _wrong(plugin, hook, value, f"a {type(value).__name__}, not a list or tuple")
    items = tuple(value)
    if len(items) != count:
        raise _wrong(plugin, hook, value, f"{len(items)} items for {count} records")
    out = []
    for i, ids in enumerate(items):
        if not isinstance(ids, _COLLECTIONS):
            raise _wrong(
                plugin, hook, value, f"item {i} is a {type(ids).__name__}, not a collection of ids"
            )
        keys = set()
        for actor_id in tuple(ids):
            try:
                keys.add(normalize_actor_id(actor_id, field=f"[{i}]", where=hook))
            except ValidationError as exc:
                raise _wrong(
                    plugin, hook, value, f"item {i} holds {HookError.short(actor_id)}, no actor id"
                ) from exc
        out.append(frozenset(keys))
    return tuple(out)


def ask_authorize(pm: pluggy.PluginManager, kwargs: Mapping[str, Any]) -> list[str]:
    """``reqmgmt_authorize``: the plugins that answered ``False`` (each answer checked)."""
    hook = "reqmgmt_authorize"
    refused = []
    for plugin, value in answers(pm, hook, kwargs):
        if value is False:
            refused.append(plugin)
        elif value is not True:
            raise _wrong(plugin, hook, value)
    return refused


def ask_before(pm: pluggy.PluginManager, kwargs: Mapping[str, Any]) -> None:
    """``reqmgmt_before_transition``: ``None`` from each, or TransitionBlocked raised."""
    hook = "reqmgmt_before_transition"
    for plugin, value in answers(pm, hook, kwargs, passes=(TransitionBlocked,)):
        raise _wrong(plugin, hook, value, "a veto must raise TransitionBlocked")


# --- after the fact -------------------------------------------------------------------------


def ask_observers(pm: pluggy.PluginManager, kwargs: Mapping[str, Any], what: str) -> None:
    """``reqmgmt_after_transition``: each observer on its own; failures and answers logged.

    The command is committed: nothing here raises (``Exception`` subclasses
    are logged), and one failing observer does not keep the others from
    running.
    """
    hook = "reqmgmt_after_transition"
    caller = pm.hook.reqmgmt_after_transition
    for impl in reversed(caller.get_hookimpls()):
        name = plugin_name(pm, impl.plugin)
        try:
            if impl.hookwrapper or impl.wrapper:
                continue  # wrappers only wrap calls made through pluggy
            value = impl.function(*[kwargs[a] for a in impl.argnames])
        except Exception:
            log.exception(
                "%s failed (plugin %r) for %s; the command is committed", hook, name, what
            )
            continue
        if value is not None:
            log.warning(
                "%s of plugin %r returned %s for %s; expected %s",
                hook,
                name,
                HookError.short(value),
                what,
                EXPECTED[hook],
            )


def ask_notify(pm: pluggy.PluginManager, notification: Any) -> None:
    """``reqmgmt_notify``: raises (a :class:`HookError`) unless every plugin returned ``None``.

    The dispatcher counts any exception as a failed delivery and retries it.
    """
    hook = "reqmgmt_notify"
    for plugin, value in answers(pm, hook, {"notification": notification}):
        raise _wrong(plugin, hook, value, "the delivery is counted as failed and retried")


# --- rules ----------------------------------------------------------------------------------


def ask_convert(pm: pluggy.PluginManager, money: Money, currency: str, on: date) -> Money | None:
    """``reqmgmt_convert_money``: a Money in ``currency``, or ``None``."""
    from .model import Money

    hook = "reqmgmt_convert_money"
    kwargs = {"money": money, "currency": currency, "on": on}
    for plugin, value in answers(pm, hook, kwargs, first=True):
        if type(value) is not Money:
            raise _wrong(plugin, hook, value, f"a {type(value).__name__}")
        if value.currency != currency:
            raise _wrong(plugin, hook, value, f"in {value.currency}, asked for {currency}")
        converted: Money = value
        return converted
    return None


def ask_rule_functions(pm: pluggy.PluginManager) -> list[tuple[str, dict[str, Callable[..., Any]]]]:
    """``reqmgmt_rule_functions``: each plugin's checked mapping, first registered first."""
    hook = "reqmgmt_rule_functions"
    return [
        (plugin, _checked(plugin, hook, value, _functions))
        for plugin, value in reversed(answers(pm, hook, {}))
    ]


def _functions(plugin: str, value: Any) -> dict[str, Callable[..., Any]]:
    hook = "reqmgmt_rule_functions"
    if not isinstance(value, Mapping):
        raise _wrong(plugin, hook, value, f"a {type(value).__name__}, not a mapping")
    checked: dict[str, Callable[..., Any]] = {}
    for name, fn in list(value.items()):
        if not isinstance(name, str) or not name.isidentifier():
            raise _wrong(plugin, hook, value, f"the name {HookError.short(name)}")
        if not callable(fn):
            raise _wrong(plugin, hook, value, f"{name[:]!r} is not callable")
        checked[name[:]] = fn
    return checked


# --- deadlines and escalation ---------------------------------------------------------------


def ask_calendar(pm: pluggy.PluginManager) -> Calendar | None:
    """``reqmgmt_calendar``: an object with callable ``add`` and ``working_time``."""
    hook = "reqmgmt_calendar"
    for plugin, value in answers(pm, hook, {}, first=True):
        for method in ("add", "working_time"):
            try:
                ok = callable(getattr(value, method, None))
            except Exception as exc:  # a hostile __getattr__
                raise _wrong(plugin, hook, value, f"reading .{method} raised") from exc
            if not ok:
                raise _wrong(plugin, hook, value, f"no callable {method}()")
        calendar: Calendar = value
        return calendar
    return None


#: Longest escalation recipient (the outbox key holds it with the ref and stage).
RECIPIENT_MAX = 200


def ask_escalation(
    pm: pluggy.PluginManager, record: Any, deadline: Any, level: int
) -> list[str] | None:
    """``reqmgmt_escalation_contacts``: a list of recipient strings, or ``None``."""
    hook = "reqmgmt_escalation_contacts"
    kwargs = {"record": record, "deadline": deadline, "level": level}
    for plugin, value in answers(pm, hook, kwargs, first=True):
        return _checked(plugin, hook, value, _recipients)
    return None


def _recipients(plugin: str, value: Any) -> list[str]:
    hook = "reqmgmt_escalation_contacts"
    if not isinstance(value, _SEQUENCES):
        raise _wrong(plugin, hook, value, f"a {type(value).__name__}, not a list or tuple")
    out = []
    for r in tuple(value):
        plain = r[:] if isinstance(r, str) else None
        if (
            plain is None
            or not plain.strip()
            or len(plain) > RECIPIENT_MAX
            or not plain.isprintable()
        ):
            raise _wrong(plugin, hook, value, f"the recipient {HookError.short(r)}")
        out.append(plain)
    return out


# --- intake ------------------------------------------------------------------------------------


def ask_credit(pm: pluggy.PluginManager, customer: Any) -> CreditRecord | None:
    """``reqmgmt_customer_credit``: a sound CreditRecord about ``customer``, or ``None``.

    The answer must be exactly a :class:`reqmgmt.CreditRecord` (no subclass),
    its fields valid again when re-checked (a plugin may have bypassed the
    validators) and plain strings, and about ``customer`` (its id).
    """
    hook = "reqmgmt_customer_credit"
    for plugin, value in answers(pm, hook, {"customer": customer}, first=True):
        return _checked(plugin, hook, value, _credit, customer.id)
    return None


def _credit(plugin: str, value: Any, customer_id: str) -> CreditRecord:
    from .model import CreditRecord

    hook = "reqmgmt_customer_credit"
    if type(value) is not CreditRecord:
        raise _wrong(plugin, hook, value, f"a {type(value).__name__}")
    fields = (value.customer_id, value.rating, value.note)
    if any(type(f) is not str for f in fields):
        raise _wrong(plugin, hook, value, "its fields must be plain strings")
    try:
        attrs.validate(value)
    except ValidationError as exc:
        raise _wrong(plugin, hook, value, str(exc)) from exc
    if value.customer_id != customer_id:
        raise _wrong(
            plugin, hook, value, f"about customer {value.customer_id!r}, asked for {customer_id!r}"
        )
    record: CreditRecord = value
    return record


def ask_subcontractors(pm: pluggy.PluginManager, record: Any) -> tuple[str, ...] | None:
    """``reqmgmt_subcontractors``: the approved subcontractor ids, or ``None``: no list."""
    hook = "reqmgmt_subcontractors"
    for plugin, value in answers(pm, hook, {"record": record}, first=True):
        return _checked(plugin, hook, value, _subcontractors)
    return None


def _subcontractors(plugin: str, value: Any) -> tuple[str, ...]:
    hook = "reqmgmt_subcontractors"
    if not isinstance(value, _SEQUENCES):
        raise _wrong(plugin, hook, value, f"a {type(value).__name__}, not a list or tuple")
    out = []
    for item in tuple(value):
        plain = _plain_id(item) if isinstance(item, str) else None
        if plain is None:
            raise _wrong(plugin, hook, value, f"the subcontractor {HookError.short(item)}")
        out.append(plain)
    return tuple(out)


def ask_design_project(
    pm: pluggy.PluginManager, record: Any, novelty: str, note: str
) -> str | None:
    """``reqmgmt_design_project``: the host's design project reference, or ``None``."""
    hook = "reqmgmt_design_project"
    kwargs = {"record": record, "novelty": novelty, "note": note}
    for plugin, value in answers(pm, hook, kwargs, first=True):
        return _checked(plugin, hook, value, _project)
    return None


def _project(plugin: str, value: Any) -> str:
    return _id_answer(plugin, "reqmgmt_design_project", value)
