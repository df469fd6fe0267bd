"""Closed vocabularies declared as data: the ``[vocabularies]`` of a rule set.

Flags, customer categories, channels, requirement kinds, document types,
departments and return reason codes are words the rules and the lifecycles
look at; a typo there (``frist_order``) would silently change a decision.
Each vocabulary is a closed list of values with zh-CN and English labels,
declared in ``default_rules.toml`` and extended by a host in its own TOML::

    [vocabularies.customer_flags]
    on_hold = { zh = "暂停供货", en = "on hold" }
    foreign = false        # removes a value

The Desk refuses a value outside its vocabulary where it enters (creation,
``sign(department=...)``) with the allowed values and a "did you mean".
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from attrs import frozen

from ..errors import ValidationError

__all__ = ["VOCABULARY_NAMES", "Vocabulary", "default_vocabularies", "merge_vocabularies"]

#: The vocabularies the library itself looks up; a rule set may declare more.
VOCABULARY_NAMES = (
    "contract_channels",
    "contract_documents",
    "contract_flags",
    "customer_categories",
    "customer_flags",
    "deadline_steps",
    "departments",
    "identified_kinds",
    "requirement_channels",
    "requirement_kinds",
    "return_reasons",
)


@frozen
class Vocabulary:
    """One closed list of values, each with its zh-CN and English label."""

    name: str
    labels: Mapping[str, tuple[str, str]]

    def __contains__(self, value: object) -> bool:
        return value in self.labels

    def __iter__(self) -> Any:
        return iter(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def check(self, value: object, field: str, where: str) -> None:
        """Raise :class:`ValidationError` unless ``value`` is one of the values.

        The message lists the allowed values and, for a near miss, says which
        one was probably meant.
        """
        if isinstance(value, str) and value in self.labels:
            return
        raise ValidationError(field, value, self.expected(value), where=where)

    def check_all(self, values: object, field: str, where: str) -> None:
        """Like :meth:`check` for each item of a collection of values (flags)."""
        if isinstance(values, str):
            self.check(values, field, where)
            return
        if not isinstance(values, Iterable):
            raise ValidationError(field, values, self.expected(None), where=where)
        for value in values:
            self.check(value, field, where)

    def expected(self, value: object) -> str:
        """What is allowed instead of ``value``, with a suggestion for a near miss."""
        allowed = sorted(self.labels)
        text = f"one of the {self.name} vocabulary: " + ", ".join(allowed)
        if isinstance(value, str):
            near = difflib.get_close_matches(value.strip().lower(), allowed, n=1, cutoff=0.6)
            if near:
                text = f"{text} (did you mean {near[0]!r}?)"
        text += "; a host adds values in its rule file under [vocabularies." + self.name + "]"
        return text


def _labels(where: str, value: object, problems: list[str]) -> tuple[str, str] | None:
    if isinstance(value, Mapping):
        zh, en = value.get("zh", ""), value.get("en", "")
        extra = sorted(set(value) - {"zh", "en"})
        if extra:
            problems.append(f"{where}: unknown key {extra[0]!r}; allowed: zh, en")
            return None
        if isinstance(zh, str) and isinstance(en, str):
            return zh, en
    elif isinstance(value, str):
        return value, value
    problems.append(
        f'{where}: expected {{ zh = "...", en = "..." }} (or false to remove the value); '
        f"got {value!r}"
    )
    return None


def merge_vocabularies(
    base: Mapping[str, Vocabulary],
    sources: Iterable[tuple[str, Any]],
    problems: list[str],
) -> dict[str, Vocabulary]:
    """``base`` with each source's ``[vocabularies]`` merged over it, in order.

    ``sources`` are ``(origin, vocabularies table)`` pairs; a value mapped to
    ``false`` is removed.  Problems are appended as ``"<origin>, vocabulary
    'x', value 'y': ..."``.
    """
    merged: dict[str, dict[str, tuple[str, str]]] = {k: dict(v.labels) for k, v in base.items()}
    for origin, table in sources:
        if not isinstance(table, Mapping):
            problems.append(f"{origin}: 'vocabularies' must be a table of vocabularies")
            continue
        for name, values in table.items():
            where = f"{origin}, vocabulary {name!r}"
            if not isinstance(name, str) or not name.isidentifier():
                problems.append(f"{where}: the name must be an identifier")
                continue
            if not isinstance(values, Mapping):
                problems.append(f"{where}: must be a table of value = {{ zh, en }}")
                continue
            target = merged.setdefault(name, {})
            for value, spec in values.items():
                here = f"{where}, value {value!r}"
                if not isinstance(value, str) or not value.strip() or value != value.strip():
                    problems.append(f"{here}: a value is a non-empty word without spaces around")
                    continue
                if spec is False:
                    if target.pop(value, None) is None:
                        problems.append(f"{here}: not in the vocabulary, nothing to remove")
                    continue
                labels = _labels(here, spec, problems)
                if labels is not None:
                    target[value] = labels
    return {
        name: Vocabulary(name, MappingProxyType(dict(sorted(labels.items()))))
        for name, labels in sorted(merged.items())
    }


@cache
def default_vocabularies() -> Mapping[str, Vocabulary]:
    """The vocabularies of the packaged ``default_rules.toml`` (read once per process)."""
    text = resources.files("reqmgmt.rules").joinpath("default_rules.toml").read_text("utf-8")
    problems: list[str] = []
    found = merge_vocabularies(
        {}, [("default_rules.toml", tomllib.loads(text).get("vocabularies", {}))], problems
    )
    assert not problems, problems  # the packaged file is checked by the tests
    return MappingProxyType(found)
