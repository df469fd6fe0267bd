"""Records to JSON-ready data and back, with cattrs (outside the record classes).

Stores, the audit trail and hash chain use this one converter, so the JSON
form of a value is the same wherever it is written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import attrs
import cattrs

from .errors import ValidationError
from .model import FieldChange, Record

__all__ = [
    "ByIdentity",
    "attrs_unstructurer",
    "converter",
    "document",
    "field_unstructurer",
    "hand_over",
    "iso",
    "remembered",
    "structure",
    "unstructure",
    "utc_isoformat",
]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class ByIdentity(Generic[K, V]):
    """A bounded map keyed by object identity, for immutable objects.

    Each entry holds the object itself, so its id cannot be reused while it
    is kept, and an immutable object's value cannot go stale.  With ``size``
    entries kept, the map starts over.  Used where the same objects are
    serialized again and again within a command (timestamps, a sealed event,
    a new record's document).
    """

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int) -> None:
        self._entries: dict[int, tuple[K, V]] = {}
        self._size = size

    def get(self, obj: K) -> V | None:
        """The value kept for ``obj`` itself (not an equal object), or ``None``."""
        hit = self._entries.get(id(obj))
        return hit[1] if hit is not None and hit[0] is obj else None

    def put(self, obj: K, value: V) -> None:
        """Keep ``value`` for ``obj``."""
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[id(obj)] = (obj, value)

    def pop(self, obj: K) -> V | None:
        """The value kept for ``obj``, no longer kept; ``None`` if there was none."""
        hit = self._entries.pop(id(obj), None)
        return hit[1] if hit is not None and hit[0] is obj else None

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()


def remembered(fn: Callable[[datetime], str], size: int = 4096) -> Callable[[datetime], str]:
    """``fn``, remembering its answer for the datetimes it saw most recently (by identity).

    A record's timestamps are the same objects from one version to the next
    (``derive`` copies references), and a command's ``now`` is written several
    times (``updated_at``, the audit event's ``at``, a signature), so most
    look-ups hit.
    """
    # ByIdentity's get and put, inlined: this runs several times per command.
    entries: dict[int, tuple[datetime, str]] = {}
    find = entries.get

    def cached(value: datetime) -> str:
        hit = find(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        text = fn(value)
        if len(entries) >= size:
            entries.clear()
        entries[id(value)] = (value, text)
        return text

    return cached


#: A UTC time's text up to its second, by the first seven bytes of its state
#: (year to second): the commands of one second share it.
_SECONDS: dict[bytes, str] = {}
#: ``datetime.__reduce__`` looked up once: (datetime, (state bytes, tzinfo)).
_REDUCE = datetime.__reduce__
#: Microseconds written by thousands (".123" and "456"): two tuple look-ups
#: cost less than padding the number through a format (~2k instructions).
_MILLI = tuple(f".{n:03d}" for n in range(1000))
_DIGITS3 = tuple(f"{n:03d}" for n in range(1000))


def _utc_text(value: datetime, state: bytes) -> str:
    """The text of a plain ``datetime`` in ``UTC`` whose state bytes are ``state``."""
    text = _SECONDS.get(state[:7])
    if text is None:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        text = _SECONDS[state[:7]] = (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
            f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
        )
    micro = value.microsecond
    if micro:
        milli, rest = divmod(micro, 1000)
        return f"{text}{_MILLI[milli]}{_DIGITS3[rest]}+00:00"
    return text + "+00:00"


def utc_isoformat(value: datetime) -> str:
    """``datetime.isoformat(value)``, written without its C code for a UTC time.

    The C code formats every field and the UTC offset through ``sprintf``:
    ~11k instructions a call, the most of any one call of a command.  For
    a plain ``datetime`` in ``UTC`` this writes the date and time to the
    second once per second (:data:`_SECONDS`), then the microseconds (left
    out when zero, as ``isoformat`` does) and ``+00:00``: ~5k.  Anything
    else (naive, another zone, a subclass, not a datetime) goes to
    ``datetime.isoformat``.  tests/unit/test_seal_iso.py and test_iso6.py
    compare both.
    """
    if type(value) is not datetime or value.tzinfo is not UTC:
        return datetime.isoformat(value)
    # typeshed says __reduce__ gives str | tuple: it is (datetime, (state, tzinfo)).
    return _utc_text(value, _REDUCE(value)[1][0])  # type: ignore[arg-type]


#: iso's memory: id -> (datetime, text), as :func:`remembered` keeps it.
_ISO_SEEN: dict[int, tuple[datetime, str]] = {}
_iso_find = _ISO_SEEN.get
#: iso's hit path for code that writes it inline, where a call of iso would cost
#: more than the look-up (~1k instructions a hit): ``h = iso_seen(id(v), ISO_NOT_SEEN)``,
#: then ``h[1] if h[0] is v else iso(v)``.  ISO_NOT_SEEN's first item is no caller's
#: value (a miss, ``None`` included, then calls iso, which answers or raises as ever).
iso_seen = _ISO_SEEN.get
ISO_NOT_SEEN: tuple[object, str] = (object(), "")


def iso(value: datetime) -> str:
    """``datetime.isoformat(value)``: ``remembered(utc_isoformat)`` written as one function.

    Every command's ``now`` is a new object, so its first look-up misses
    (~1.4 misses a command); the miss writes a UTC time here rather than
    through a second call (~1k instructions less a miss).
    """
    hit = _iso_find(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    if type(value) is datetime and value.tzinfo is UTC:
        # _utc_text inlined (a call costs ~700 instructions).
        key: bytes = _REDUCE(value)[1][0][:7]  # type: ignore[assignment]
        text = _SECONDS.get(key)
        if text is None:
            text = _utc_text(value, key)
        else:
            micro = value.microsecond
            if micro:  # two operators, not divmod's call and its tuple
                text = f"{text}{_MILLI[micro // 1000]}{_DIGITS3[micro % 1000]}+00:00"
            else:
                text += "+00:00"
    else:
        text = datetime.isoformat(value)
    if len(_ISO_SEEN) >= 4096:
        _ISO_SEEN.clear()
    _ISO_SEEN[id(value)] = (value, text)
    return text


converter = cattrs.Converter(omit_if_default=False)
converter.register_unstructure_hook(Decimal, str)
converter.register_structure_hook(Decimal, lambda v, _: Decimal(str(v)))
converter.register_unstructure_hook(date, date.isoformat)
converter.register_structure_hook(
    date, lambda v, _: v if isinstance(v, date) else date.fromisoformat(v)
)
converter.register_unstructure_hook(datetime, iso)
converter.register_structure_hook(
    datetime, lambda v, _: v if isinstance(v, datetime) else datetime.fromisoformat(v)
)
# Sets are written sorted, so equal records give equal JSON (and equal hashes).
converter.register_unstructure_hook_func(
    lambda t: t is frozenset or getattr(t, "__origin__", None) is frozenset,
    lambda v: sorted(v),
)

# A change's old and new values are in their JSON form already (the engine
# made them so); walking them again cost most of writing an audit event.
converter.register_unstructure_hook(
    FieldChange, lambda c: {"field": c.field, "old": c.old, "new": c.new, "op": c.op}
)


def unstructure(value: Any) -> Any:
    """The JSON-ready form of a record or value (``converter.unstructure(value)``).

    Records and the other attrs classes go through :func:`attrs_unstructurer`
    (the same dict as cattrs', without its dispatch per field).
    """
    fast = _FAST.get(value.__class__)
    if fast is None:
        if not attrs.has(value.__class__):
            return converter.unstructure(value)
        fast = attrs_unstructurer(value.__class__)
    return fast(value)


#: attrs class -> its generated unstructure function (attrs_unstructurer).
_FAST: dict[type, Callable[[Any], Any]] = {}
_identity = converter.get_unstructure_hook(str)
#: The library's hook for sets (sorted into a list), as registered above: a host
#: registering its own for a set type replaces it, and is called as its own.
_sorted_set = converter.get_unstructure_hook(frozenset[str])


def attrs_unstructurer(cls: type) -> Callable[[Any], Any]:
    """``converter.unstructure`` for instances of the attrs class ``cls``, generated once.

    cattrs generates one function per class that calls a hook per field; an
    optional field's hook is a wrapper calling the value's own hook, a
    field of nested records another generated function.  This generates
    the same dict with the wrappers written inline: ``None if v is None else
    iso(v)``, the value itself where cattrs' hook is the identity, a list
    comprehension for a tuple of records, nested records' functions of their
    own.  Any hook it does not know (a host's registered hook) is called
    as cattrs would call it; a class whose own hook is not one cattrs
    generated gets that hook.  tests/unit/test_serialize_fast.py checks it
    against cattrs for every record class.
    """
    found = _FAST.get(cls)
    if found is not None:
        return found
    hook = converter.get_unstructure_hook(cls)
    if not _generated_by_cattrs(hook):
        _FAST[cls] = hook
        return hook
    _FAST[cls] = hook  # while building (a class nesting itself gets cattrs' hook)
    attrs.resolve_types(cls)
    namespace: dict[str, Any] = {}
    lines = [f"def unstructure_{cls.__name__}(instance):"]
    items = []
    for i, a in enumerate(attrs.fields(cls)):
        var = f"v{i}"
        expr = _inline(a.type, converter.get_unstructure_hook(a.type), var, namespace, 0)
        if expr == var:
            items.append(f"    {a.name!r}: instance.{a.name},")
        else:
            lines.append(f"    {var} = instance.{a.name}")
            items.append(f"    {a.name!r}: {expr},")
    lines.append("    return {")
    lines.extend(items)
    lines.append("    }")
    exec("\n".join(lines), namespace)
    made: Callable[[Any], Any] = namespace[f"unstructure_{cls.__name__}"]
    _FAST[cls] = made
    return made


def _generated_by_cattrs(hook: Any) -> bool:
    code = getattr(hook, "__code__", None)
    return code is not None and code.co_filename.startswith("<cattrs generated unstructure")


def _inline(type_: Any, hook: Any, var: str, namespace: dict[str, Any], depth: int) -> str:
    """An expression of ``var`` equal to ``hook(var)`` (cattrs' hook for ``type_``)."""
    if hook is _identity:
        return var
    name = getattr(hook, "__name__", "")
    defaults: tuple[Any, ...] = getattr(hook, "__defaults__", None) or ()
    args: tuple[Any, ...] = getattr(type_, "__args__", None) or ()
    if name == "unstructure_optional" and len(defaults) == 1 and len(args) == 2:
        other = args[0] if args[1] is type(None) else args[1]
        inner = _inline(other, defaults[0], var, namespace, depth)
        return var if inner == var else f"(None if {var} is None else {inner})"
    if name == "unstructure_iterable" and len(defaults) == 2 and defaults[0] is list and args:
        item = f"x{depth}"
        inner = _inline(args[0], defaults[1], item, namespace, depth + 1)
        # No comprehension (a function call of its own) for the usual empty tuple.
        return f"([{inner} for {item} in {var}] if {var} else [])"
    if hook is _sorted_set:  # sorted() itself, without the lambda's frame
        return f"sorted({var})"
    if isinstance(type_, type) and attrs.has(type_) and _generated_by_cattrs(hook):
        hook = attrs_unstructurer(type_)
    key = f"_h{len(namespace)}"
    namespace[key] = hook
    return f"{key}({var})"


# A record's JSON-ready form, handed from the command that made it to the
# store that writes the record, once.
_HANDED: ByIdentity[Record, dict[str, Any]] = ByIdentity(4096)


def hand_over(record: Record, document: dict[str, Any]) -> None:
    """Offer ``document`` (``unstructure(record)``, made already) to the store writing ``record``.

    A creating command puts the record's whole first version in its audit
    event; the store about to write the record takes it with
    :func:`document` instead of unstructuring the record again.  Only
    offered to transactions that say ``takes_documents = True`` (the SQL
    stores), so nothing waits here for a store that never takes it; offers a
    failed insert left are dropped when the map starts over.
    """
    _HANDED.put(record, document)


def document(record: Record) -> dict[str, Any]:
    """``unstructure(record)``: the form handed over for it, if any (taken once), or made now."""
    offered = _HANDED.pop(record)
    if offered is not None:
        return offered
    data: dict[str, Any] = unstructure(record)
    return data


def structure(data: Any, cls: type[T]) -> T:
    """Build a ``cls`` from its JSON-ready form (validators run).

    Raises :class:`ValidationError` naming every field that did not fit.
    """
    try:
        return converter.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        problems = cattrs.transform_error(exc, path=cls.__name__, format_exception=_problem)
        raise ValidationError("data", data, "; ".join(problems), where=cls.__name__) from exc


def _problem(exc: BaseException, type_: Any) -> str:
    # A record's own validator says best what is wrong (the input policy).
    if isinstance(exc, ValidationError):
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


_PLAIN = {str, int, bool, str | None, int | None, bool | None}


_HOOKS: dict[type[Record], dict[str, Callable[[Any], Any] | None]] = {}


def field_unstructurer(cls: type[Record]) -> dict[str, Callable[[Any], Any] | None]:
    """Per-field unstructure functions of a record class (``None``: the value is its JSON form).

    The engine unstructures only the fields a command changed, which is much
    cheaper than the whole record.
    """
    found = _HOOKS.get(cls)
    if found is not None:
        return found
    hooks: dict[str, Callable[[Any], Any] | None] = {}
    attrs.resolve_types(cls)
    for a in attrs.fields(cls):
        hooks[a.name] = None if a.type in _PLAIN else converter.get_unstructure_hook(a.type)
    _HOOKS[cls] = hooks
    return hooks
