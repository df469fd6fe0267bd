"""What a creating command accepts: the lifecycle's declared inputs, in their vocabularies.

A record is created from the inputs its lifecycle declares
(:class:`~reqmgmt.lifecycle.base.CreationInput`) and nothing else: its state,
version, review rounds, sign-offs, submitter, a contract's class, route and
amendment are the engine's, always.  :class:`CreationCheck` is built once per
lifecycle; :meth:`CreationCheck.fields` runs before a number is drawn, so a
refused creation writes nothing and uses up no sequence number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .errors import ValidationError
from .lifecycle.base import Lifecycle
from .model import Customer
from .rules.model import RuleSet

__all__ = ["CreationCheck"]


class CreationCheck:
    """The allow-list of one lifecycle's creation, precomputed."""

    __slots__ = (
        "_allowed",
        "_defaults",
        "_listing",
        "_record_fields",
        "_required",
        "_vocabularies",
        "kind",
        "where",
    )

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.kind = lifecycle.kind
        self.where = f"creating a {lifecycle.kind}"
        self._allowed = lifecycle.input_names
        self._required = tuple(i.name for i in lifecycle.inputs if i.required)
        self._vocabularies = tuple(
            (i.name, i.vocabulary) for i in lifecycle.inputs if i.vocabulary is not None
        )
        fields = {a.name: a for a in attrs.fields(lifecycle.record_type)}
        self._record_fields = frozenset(fields)
        # A default outside the vocabulary (a host removed it) is refused too.
        self._defaults = {
            name: fields[name].default
            for name, _ in self._vocabularies
            if name in fields and isinstance(fields[name].default, str)
        }
        listed = [f"{i.name} (required)" if i.required else i.name for i in lifecycle.inputs]
        self._listing = ", ".join(listed) if listed else "none (the lifecycle declares no inputs)"

    def fields(self, given: Mapping[str, Any], rules: RuleSet) -> None:
        """Refuse anything but the declared inputs, a missing required one, an unknown word.

        Raises :class:`ValidationError` naming the field, with the inputs (or
        the vocabulary's values and a "did you mean") it accepts instead.
        """
        if not isinstance(given, Mapping):
            raise ValidationError(
                "fields", given, "a mapping of input name to value", where=self.where
            )
        unknown = given.keys() - self._allowed
        if unknown:
            name = sorted(unknown)[0]
            self._refuse(name, given[name])
        for name in self._required:
            if given.get(name) is None:
                raise ValidationError(
                    name, None, f"a value: a {self.kind} needs {name}", where=self.where
                )
        for name, vocabulary in self._vocabularies:
            words = rules.vocabulary(vocabulary)
            if name in given:
                value = given[name]
                if isinstance(value, str):
                    words.check(value, name, self.where)
                else:
                    words.check_all(value, name, self.where)
            elif name in self._defaults:
                words.check(self._defaults[name], name, self.where)
        customer = given.get("customer")
        if isinstance(customer, Customer):
            rules.vocabulary("customer_categories").check(
                customer.category, "customer.category", self.where
            )
            rules.vocabulary("customer_flags").check_all(
                customer.flags, "customer.flags", self.where
            )

    def _refuse(self, name: str, value: object) -> None:
        what = (
            f"no value: the engine sets {name}"
            if name in self._record_fields
            else f"no {name!r} (not a field of a {self.kind})"
        )
        raise ValidationError(
            name,
            value,
            f"{what}; a {self.kind} is created from its inputs: {self._listing}",
            where=self.where,
        )
