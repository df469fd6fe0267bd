"""Building a record's first version (a creating command), cheaper than attrs' ``__init__``.

:func:`first_version` is :func:`reqmgmt.model.constructor` (``cls(**values)``
with the same converters, validators, errors and ``__attrs_post_init__``)
with four savings that change no result:

- it is generated per set of given names (a creating command gives the
  same dozen each time), so no field is tested for whether it was given;
- a given value is tested inline with its validator's cheapest case
  (:func:`reqmgmt.model.fast_pass`), the validator called only when that
  misses: every refusal is still the validator's own;
- a field left at its default is not validated again when its validator is
  one of :mod:`reqmgmt.model`'s own (they look at the value alone) or attrs'
  ``optional`` over a ``None`` default, and the default passed it when the
  function was generated; a creating command sets a third of a record's
  fields, the rest are defaults;
- a default the model converts (``()`` through ``_texts``...) is converted
  once, when the function is generated, not per record.

Given fields are converted and validated as attrs does, in field order, so
the first bad input raises the same :class:`~reqmgmt.errors.ValidationError`.

:func:`set_fields` puts values computed from the new record (its deadlines)
into it before anyone else sees it, checked as :func:`reqmgmt.model.derive`
checks them: instead of a second copy of the record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import attr._config
import attrs

from .model import FAST_NAMES, _fillable, constructor, derive, fast_pass, made_by
from .serialize import _generated_by_cattrs, _inline, converter, iso, unstructure

__all__ = ["first_document", "first_version", "set_fields"]

_T = TypeVar("_T")

_BUILDERS: dict[type, Callable[[Mapping[str, Any]], Any]] = {}

#: Where validators that look at the value alone come from.
_MODEL = "reqmgmt.model"


def first_version(cls: type[_T]) -> Callable[[Mapping[str, Any]], _T]:
    """``cls(**values)`` as a function of ``values``, skipping checks of untouched defaults."""
    found = _BUILDERS.get(cls)
    if found is None:
        found = _BUILDERS[cls] = _make_builder(cls)
    return found


def _value_only(validator: Any, default: Any) -> bool:
    """Does ``validator`` look at its value alone (so a default that passed it passes again)?"""
    if isinstance(validator, type(attrs.validators.optional(attrs.validators.instance_of(int)))):
        return default is None  # attrs' optional: None passes before the inner check
    return getattr(validator, "__module__", None) == _MODEL


#: Fills kept per record class, one per set of given names (a creating command
#: gives the same few each time); the map starts over past this many.
_FILLS = 64


def _make_builder(cls: type) -> Any:
    stand_in = _fillable(cls)
    if stand_in is None:
        return constructor(cls)
    make = _filler(cls, stand_in)
    fills: dict[tuple[Any, ...], Callable[[Mapping[str, Any]], Any]] = {}
    find = fills.get

    def build(values: Mapping[str, Any]) -> Any:
        # The names given, in their order, pick a fill written for just them:
        # no test per field of whether it was given, at every record.
        keys = tuple(values)
        fill = find(keys)
        if fill is None:
            if len(fills) >= _FILLS:
                fills.clear()
            fill = fills[keys] = make(frozenset(keys))
        return fill(values)

    return build


def _filler(cls: type, stand_in: type) -> Callable[[frozenset[Any]], Any]:
    """A maker of fills of ``cls``: given a set of names, ``cls(**values)`` for values
    with those names (attrs' ``TypeError`` for a name unknown or missing)."""
    fields = attrs.fields(cls)
    probe: Any = object.__new__(stand_in)
    probe.__class__ = cls
    namespace: dict[str, Any] = {
        "_new_": object.__new__,
        "_cls_": cls,
        "_stand_in_": stand_in,
        # attrs' own __init__ reads this flag (attrs.validators.set_disabled sets
        # it): read here as it does, not through get_disabled's two calls.
        "_attrs_config_": attr._config,
        "_post_": getattr(cls, "__attrs_post_init__", None),
        **FAST_NAMES,
    }
    names = frozenset(a.name for a in fields)
    required = frozenset(a.name for a in fields if a.default is attrs.NOTHING)
    # Per field: (assigned when given, assigned when not, check, check a default too).
    plan: list[tuple[str, str, str | None, bool]] = []
    for i, a in enumerate(fields):
        given = f"values[{a.name!r}]"
        if a.converter is not None:
            namespace[f"_c{i}"] = a.converter
            given = f"_c{i}({given})"
        default = ""
        check_default = True
        if a.default is attrs.NOTHING:
            pass  # always given (or the fill is attrs' TypeError)
        elif isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
            namespace[f"_f{i}"] = a.default.factory
            default = f"_f{i}()" if a.converter is None else f"_c{i}(_f{i}())"
        elif a.converter is None or getattr(a.converter, "__module__", None) == _MODEL:
            # The model's converters are functions of the value: converted once.
            namespace[f"_d{i}"] = a.default if a.converter is None else a.converter(a.default)
            default = f"_d{i}"
            if a.validator is not None and _value_only(a.validator, a.default):
                try:
                    a.validator(probe, a, namespace[f"_d{i}"])
                except Exception:
                    pass
                else:
                    check_default = False
        else:
            namespace[f"_d{i}"] = a.default
            default = f"_c{i}(_d{i})"
        check = None
        if a.validator is not None:
            namespace[f"_v{i}"] = a.validator
            namespace[f"_a{i}"] = a
            check = f"_v{i}(n, _a{i}, n.{a.name})"
            fast = fast_pass(a.validator, a)
            if fast is not None:  # the validator called only for a value its test misses
                check = f"v = n.{a.name}\n        if not {fast}:\n            _v{i}(n, _a{i}, v)"
        plan.append(
            (f"    n.{a.name} = {given}", f"    n.{a.name} = {default}", check, check_default)
        )

    def make(keys: frozenset[Any]) -> Callable[[Mapping[str, Any]], Any]:
        if not (keys <= names and required <= keys):
            return lambda values: cls(**values)  # attrs' own TypeError
        lines = ["def fill(values):", f"    n = {made_by(stand_in, '_stand_in_')}"]
        checks = []
        for a, (given, default, check, check_default) in zip(fields, plan, strict=True):
            lines.append(given if a.name in keys else default)
            if check is not None and (check_default or a.name in keys):
                checks.append(f"        {check}")
        lines.append("    n.__class__ = _cls_")
        if checks:
            lines.append("    if _attrs_config_._run_validators is True:")
            lines.extend(checks)
        if namespace["_post_"] is not None:
            lines.append("    _post_(n)")
        lines.append("    return n")
        scope = dict(namespace)
        exec("\n".join(lines), scope)
        return scope["fill"]  # type: ignore[no-any-return]

    return make


#: The setters made, by record class and the names given in order (bounded).
_SETTERS: dict[tuple[Any, ...], Callable[[Any, Mapping[str, Any]], None]] = {}


def set_fields(record: Any, values: Mapping[str, Any]) -> None:
    """Put ``values`` into ``record``, new and not yet seen by anyone, as ``derive`` would.

    Each value goes through its field's converter, then each field's
    validator sees the whole record, then ``__attrs_post_init__`` runs: the
    checks :func:`reqmgmt.model.derive` runs on a copy.  Unknown names:
    ``derive``'s :class:`~reqmgmt.errors.ValidationError`, nothing set.
    Generated per class and names given (a creating command gives the same
    deadline fields each time).
    """
    key = (type(record), *values)  # one flat tuple: no inner one made and hashed
    put = _SETTERS.get(key)
    if put is None:
        if len(_SETTERS) >= _FILLS:
            _SETTERS.clear()
        put = _SETTERS[key] = _setter(type(record), key[1:])
    put(record, values)


def _setter(cls: type, names: tuple[Any, ...]) -> Callable[[Any, Mapping[str, Any]], None]:
    fields = attrs.fields_dict(cls)
    namespace: dict[str, Any] = {
        "_set_": object.__setattr__,
        "_derive_": derive,
        "_post_": getattr(cls, "__attrs_post_init__", None),
        **FAST_NAMES,
    }
    lines = ["def put(record, values):"]
    known: list[tuple[int, attrs.Attribute[Any]]] = []
    for i, name in enumerate(names):
        a = fields.get(name)
        if a is None:  # the names before it converted (as derive would), then its error
            lines += ["    _derive_(record, values)  # raises, naming the field", "    return"]
            break
        given = f"values[{a.name!r}]"
        if a.converter is not None:  # a plain function here (first_version's fits)
            namespace[f"_c{i}"] = a.converter
            given = f"_c{i}({given})"
        lines.append(f"    x{i} = {given}")
        known.append((i, a))
    else:
        lines += [f"    _set_(record, {a.name!r}, x{i})" for i, a in known]
        for i, a in known:
            if a.validator is None:
                continue
            namespace[f"_v{i}"] = a.validator
            namespace[f"_a{i}"] = a
            fast = fast_pass(a.validator, a)
            if fast is not None:  # the validator called only for a value its test misses
                lines += [
                    f"    v = x{i}",
                    f"    if not {fast}:",
                    f"        _v{i}(record, _a{i}, v)",
                ]
            else:
                lines.append(f"    _v{i}(record, _a{i}, x{i})")
        if namespace["_post_"] is not None:
            lines.append("    _post_(record)")
    lines.append("    return None")
    exec("\n".join(lines), namespace)
    return namespace["put"]  # type: ignore[no-any-return]


#: The document makers made, by record class.
_DOCUMENTS: dict[type, Callable[[Any], Any]] = {}


def first_document(record: Any) -> Any:
    """``unstructure(record)`` for a new record, most of whose fields hold their defaults.

    A dict of 40 keys written out costs more than a copy of one made before
    (a memcpy) with the fields that differ stored into it: the maker copies
    the JSON form of a record all at its defaults and stores only the fields
    whose value is not the very default object (a new ``[]`` for each list:
    documents share no mutable value).  A datetime that is the same object
    as the one before it of its type (``created_at`` and ``updated_at``,
    ``step_due_at`` and ``next_deadline``) is written once.  A class with an
    unstructure hook of its own gets that hook.  tests/unit/test_create8.py
    compares it with ``unstructure`` over records of every kind and value.
    """
    make = _DOCUMENTS.get(type(record))
    if make is None:
        make = _DOCUMENTS[type(record)] = _document_maker(type(record))
    return make(record)


def _document_maker(cls: type) -> Callable[[Any], Any]:
    if not _generated_by_cattrs(converter.get_unstructure_hook(cls)):
        return unstructure  # a hook of its own: called by unstructure
    attrs.resolve_types(cls)
    namespace: dict[str, Any] = {}
    template: dict[str, Any] = {}
    lines = ["def document(instance):", "    d = _copy_()"]
    # Per (type, hook) of datetime fields: the numbers of those written before.
    earlier: dict[tuple[Any, Any], list[int]] = {}
    dated = converter.get_unstructure_hook(datetime) is iso
    for i, a in enumerate(attrs.fields(cls)):
        var = f"v{i}"
        hook = converter.get_unstructure_hook(a.type)
        expr = _inline(a.type, hook, var, namespace, 0)
        lines.append(f"    {var} = instance.{a.name}")
        kept, default, folded = _folded(a, hook)
        template[a.name] = folded if kept and type(folded) is not list else None
        if kept:
            namespace[f"_d{i}"] = default
        if dated and a.type in _DATETIMES:
            # iso's text is a str, the same for the same object: written once.
            same = earlier.setdefault((a.type, hook), [])
            for j in same:
                expr = f"t{j} if {var} is v{j} else {expr}"
            same.append(i)
            if kept:  # folded: a str or None, as iso would write it
                lines += [
                    f"    if {var} is _d{i}:",
                    f"        t{i} = {folded!r}",
                    "    else:",
                    f"        d[{a.name!r}] = t{i} = {expr}",
                ]
            else:
                lines.append(f"    d[{a.name!r}] = t{i} = {expr}")
        elif not kept:
            lines.append(f"    d[{a.name!r}] = {expr}")
        elif type(folded) is list:  # a new [] per document
            lines.append(f"    d[{a.name!r}] = [] if {var} is _d{i} else {expr}")
        else:
            lines.append(f"    if {var} is not _d{i}:")
            lines.append(f"        d[{a.name!r}] = {expr}")
    lines.append("    return d")
    namespace["_copy_"] = template.copy
    exec("\n".join(lines), namespace)
    return namespace["document"]  # type: ignore[no-any-return]


_DATETIMES = (datetime, datetime | None)
#: _folded's answer for a field whose JSON form is not kept in the template.
_NOT_FOLDED: tuple[bool, Any, Any] = (False, None, None)


def _folded(a: attrs.Attribute[Any], hook: Any) -> tuple[bool, Any, Any]:
    """``(True, value, form)``: the value field ``a`` holds when left at its default and
    its JSON form, ``None``, a plain int, bool or str, or an empty list;
    :data:`_NOT_FOLDED` for any other form, or a default made per record (a
    factory, a host's converter)."""
    if a.default is attrs.NOTHING or isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
        return _NOT_FOLDED
    if a.converter is None:
        value = a.default
    elif getattr(a.converter, "__module__", None) == _MODEL:
        value = a.converter(a.default)  # type: ignore[operator]  # as _filler converts it
    else:
        return _NOT_FOLDED  # a host's converter, called per record
    try:
        out = hook(value)
    except Exception:
        return _NOT_FOLDED  # the record's own unstructure raises as ever
    if out is None or type(out) in (bool, int, str) or (type(out) is list and not out):
        return (True, value, out)
    return _NOT_FOLDED
