"""The records reqmgmt keeps: frozen attrs classes with validators.

Records never change in place.  Only the lifecycle engine makes a new version
of a record (``attrs.evolve``) when a command succeeds; everything else reads.
Serialization lives in :mod:`reqmgmt.serialize`, not in these classes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar

import attrs
from attrs import field, frozen

from .errors import ValidationError
from .people import normalize_actor_id

__all__ = [
    "CONTRACT_CHANNELS",
    "CONTRACT_DOCUMENTS",
    "CONTRACT_TERMS",
    "CURRENCIES",
    "DISPOSITIONS",
    "EARLIEST",
    "ID_FIELDS",
    "INVALID_OUTCOMES",
    "LATEST",
    "LINE_KINDS",
    "MAX_COUNT",
    "MAX_ID",
    "MAX_INT",
    "MAX_NAME",
    "MAX_TEXT",
    "MINOR_UNITS",
    "MULTILINE_FIELDS",
    "REQUIREMENT_CHANNELS",
    "REQUIREMENT_KINDS",
    "REQUIREMENT_PRIORITIES",
    "RETURN_KINDS",
    "RETURN_REASONS",
    "SIGNATURE_MEANINGS",
    "SURVEY_SCORES",
    "Actor",
    "Amendment",
    "AuditEvent",
    "Capa",
    "Contract",
    "ContractLine",
    "CreditRecord",
    "Customer",
    "CustomerConfirmation",
    "FieldChange",
    "GoodsReceipt",
    "IdentifiedRequirement",
    "Money",
    "Notification",
    "PlanReceipt",
    "QualityReport",
    "Record",
    "Requirement",
    "Return",
    "Signoff",
    "Survey",
    "SurveyAnswer",
    "check_note",
    "check_time",
    "derive",
    "goods_total",
    "lines_total",
    "record_classes",
    "text_problem",
]

# ISO 4217 active codes (2024 list).  Kept as data: there is no parsing to do,
# and a dependency only for this list would be heavier than the list.
CURRENCIES: frozenset[str] = frozenset(
    [
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "ANG",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BGN",
        "BHD",
        "BIF",
        "BMD",
        "BND",
        "BOB",
        "BOV",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHE",
        "CHF",
        "CHW",
        "CLF",
        "CLP",
        "CNY",
        "COP",
        "COU",
        "CRC",
        "CUC",
        "CUP",
        "CVE",
        "CZK",
        "DJF",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GNF",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "IQD",
        "IRR",
        "ISK",
        "JMD",
        "JOD",
        "JPY",
        "KES",
        "KGS",
        "KHR",
        "KMF",
        "KPW",
        "KRW",
        "KWD",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "LYD",
        "MAD",
        "MDL",
        "MGA",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MXV",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "OMR",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "PYG",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "RWF",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SLL",
        "SOS",
        "SRD",
        "SSP",
        "STN",
        "SVC",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TND",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "UGX",
        "USD",
        "USN",
        "UYI",
        "UYU",
        "UYW",
        "UZS",
        "VED",
        "VES",
        "VND",
        "VUV",
        "WST",
        "XAF",
        "XAG",
        "XAU",
        "XBA",
        "XBB",
        "XBC",
        "XBD",
        "XCD",
        "XCG",
        "XDR",
        "XOF",
        "XPD",
        "XPF",
        "XPT",
        "XSU",
        "XTS",
        "XUA",
        "XXX",
        "YER",
        "ZAR",
        "ZMW",
        "ZWG",
        "ZWL",
    ]
)

#: ISO 4217 minor units (digits after the decimal point) where they are not 2;
#: ``None``: the code has no minor unit (funds, precious metals, testing), any
#: number of decimals is kept.  Every other code of :data:`CURRENCIES` has 2.
_MINOR_UNITS_NOT_2: dict[str, int | None] = {
    **dict.fromkeys(
        ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
         "VND", "VUV", "XAF", "XOF", "XPF"],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
    **dict.fromkeys(
        ["XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA",
         "XXX"],
        None,
    ),
}  # fmt: skip
#: Minor unit of every accepted currency (CNY 2, JPY 0, KWD 3; ``None``: no limit).
MINOR_UNITS: dict[str, int | None] = {c: _MINOR_UNITS_NOT_2.get(c, 2) for c in CURRENCIES}

#: Forms a requirement arrives in (DOMAIN §1): formal order, memo or fax note
#: 便条, verbal order 口头订单, inquiry, special requirement, technical agreement, bid 标书.
REQUIREMENT_KINDS: dict[str, tuple[str, str]] = {
    "order": ("正式订单", "formal order"),
    "memo": ("便条", "memo / fax note"),
    "verbal": ("口头订单", "verbal order"),
    "inquiry": ("询价", "inquiry"),
    "special": ("客户特殊要求", "special requirement"),
    "technical_agreement": ("技术协议", "technical agreement"),
    "bid": ("标书", "bid"),
}
REQUIREMENT_CHANNELS: dict[str, tuple[str, str]] = {
    "fax": ("传真", "fax"),
    "email": ("电子邮件", "e-mail"),
    "phone": ("电话", "phone"),
    "visit": ("来访", "visit"),
    "mail": ("信函", "letter"),
    "portal": ("网上", "web portal"),
    "edi": ("EDI", "EDI"),
}
REQUIREMENT_PRIORITIES: dict[str, tuple[str, str]] = {
    "low": ("低", "low"),
    "normal": ("普通", "normal"),
    "high": ("高", "high"),
    "urgent": ("紧急", "urgent"),
}
#: What a signature means (DOMAIN: 审核 review / 批准 approval / 负责 responsibility).
SIGNATURE_MEANINGS: dict[str, tuple[str, str]] = {
    "review": ("审核", "review"),
    "approval": ("批准", "approval"),
    "responsibility": ("负责", "responsibility"),
    # A verbal order's signatory reviewing it himself (合同评审: 非正式订单由签约人自行评审),
    # the customer's read-back (复述) being the control: never an approval by another.
    "self_review": ("自行评审", "self-review"),
    # A department signing for a document it received (签收: the delivery plan 交货计划表).
    "receipt": ("签收", "receipt"),
}


# --- the input policy ---------------------------------------------------------------
#
# One policy for every backend, enforced by the records' own validators (so
# an import, a hook's number or a plugin's record meets it too): what the
# memory store accepts, SQLite and PostgreSQL store and read back unchanged,
# and what one of them would refuse, every one refuses.

#: Longest reference or identifier (refs, customer ids): the SQL schema's
#: indexed columns (``records.ref``, ``records.customer``) hold 64 characters.
MAX_ID = 64
#: Longest one-line text (names, products, codes, states, ...).
MAX_NAME = 200
#: Longest free text (descriptions, opinions, notes, terms, ...).
MAX_TEXT = 20_000
#: Largest version or review round: the SQL ``INTEGER`` column ``records.version``.
MAX_COUNT = 2**31 - 1
#: Largest other whole number (quantities, line numbers, seconds): exact in
#: JSON for every reader (2**53 - 1).
MAX_INT = 2**53 - 1
#: Times a record may hold: ``EARLIEST <= t < LATEST`` (UTC).  Deadline
#: arithmetic (working calendars, reminders, pauses) stays far from
#: ``datetime.min``/``max``; an ERP's "no date" (0001-01-01, 9999-12-31) is refused.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_EARLIEST_DAY = EARLIEST.date()
_LATEST_DAY = LATEST.date()

#: Fields holding free text over several lines: tab, newline and carriage
#: return are allowed there; in every other text field no control character is.
MULTILINE_FIELDS = frozenset(
    {
        "description", "remarks", "clarifications", "delivery_plan", "outsourcing",
        "reason", "reason_text", "opinion", "note", "specification", "payment_terms",
        "delivery_method", "packaging", "quality_requirements", "acceptance_criteria",
        "terms", "findings", "cause", "actions", "verification", "window_override",
        "confirmation", "text", "cutting_confirmation", "design_result",
    }
)  # fmt: skip
#: Fields holding a reference or identifier (at most :data:`MAX_ID` characters).
ID_FIELDS = frozenset({"ref", "contract_ref", "quotation_ref", "requirement_refs"})

_CONTROLS = frozenset(chr(c) for c in range(32)) | {"\x7f"}
_LINE_CONTROLS = _CONTROLS - {"\t", "\n", "\r"}


def _limit(instance: object, name: str) -> int:
    if name in ID_FIELDS or (name == "id" and isinstance(instance, Customer)):
        return MAX_ID
    return MAX_TEXT if name in MULTILINE_FIELDS else MAX_NAME


def text_problem(value: str, limit: int, multiline: bool) -> str | None:
    """What is wrong with ``value`` under the input policy, or ``None``.

    Refused: more than ``limit`` characters, NUL and the other C0 control
    characters and DEL (tab, newline and carriage return allowed when
    ``multiline``), and lone surrogates (``"\\ud800"``: not encodable as
    UTF-8, so no database can store them).
    """
    if len(value) > limit:
        return f"at most {limit} characters (got {len(value)})"
    if value.isprintable():  # the common case, at C speed
        return None
    controls = _LINE_CONTROLS if multiline else _CONTROLS
    if not controls.isdisjoint(value):
        bad = next(c for c in value if c in controls)
        if multiline:
            return (
                f"text without control characters (found {bad!r}); tab, newline and "
                "carriage return are allowed"
            )
        return f"one line of text without control characters (found {bad!r})"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "valid Unicode text: no lone surrogates (\\ud800-\\udfff), which UTF-8 and "
            "the databases cannot hold"
        )
    return None


def check_note(value: object, where: str) -> None:
    """Raise :class:`ValidationError` unless ``value`` is a note the input policy allows.

    ``None`` or free text (:data:`MAX_TEXT`, several lines).  The engine
    checks a command's note with it before the audit event is hashed.
    """
    if value is None:
        return
    if not isinstance(value, str):
        raise ValidationError("note", value, "a string or None", where=where)
    problem = text_problem(value, MAX_TEXT, True)
    if problem is not None:
        raise ValidationError("note", value, problem, where=where)


def _check_text(instance: object, name: str, value: str) -> None:
    if len(value) <= MAX_ID and value.isprintable():  # within every limit: nothing to find
        return
    problem = text_problem(value, _limit(instance, name), name in MULTILINE_FIELDS)
    if problem is not None:
        raise ValidationError(name, value, problem, where=type(instance).__name__)


def _instance_of(cls: type) -> Any:
    """attrs' ``instance_of``, raising :class:`ValidationError` (a library error) instead."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, cls):
            raise ValidationError(
                attribute.name,
                value,
                f"a {cls.__name__} (got a {type(value).__name__})",
                where=type(instance).__name__,
            )

    return check


def _non_empty(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            attribute.name, value, "a non-empty string", where=type(instance).__name__
        )
    _check_text(instance, attribute.name, value)


def _text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ValidationError(attribute.name, value, "a string", where=type(instance).__name__)
    _check_text(instance, attribute.name, value)


def _optional_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ValidationError(
            attribute.name, value, "a string or None", where=type(instance).__name__
        )
    _check_text(instance, attribute.name, value)


def _each_text(instance: object, attribute: attrs.Attribute[Any], value: Iterable[Any]) -> None:
    # The items of a set or tuple of strings (flags, remarks, refs, terms).
    name = attribute.name
    for item in value:
        for text in item if isinstance(item, tuple) else (item,):
            if not isinstance(text, str):
                raise ValidationError(name, value, "strings only", where=type(instance).__name__)
            _check_text(instance, name, text)


def check_time(name: str, value: object, where: str) -> None:
    """Raise :class:`ValidationError` unless ``value`` is a time the input policy allows.

    Timezone-aware, from :data:`EARLIEST` to before :data:`LATEST`.  For the
    commands that compute with a time (a deadline) before the record is made.
    """
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValidationError(
            name,
            value,
            "a timezone-aware datetime (e.g. datetime.now(timezone.utc)); naive times are "
            "ambiguous across the servers of an ERP",
            where=where,
        )
    if not (EARLIEST <= value < LATEST):
        raise ValidationError(
            name,
            value,
            "a time from 1900-01-01 to before 2200-01-01 UTC (a missing date is None, "
            "not a placeholder such as 0001-01-01 or 9999-12-31)",
            where=where,
        )


def _aware(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        if attribute.default is None:
            return
    elif value.__class__ is datetime and value.tzinfo is UTC and EARLIEST <= value < LATEST:
        return  # the common case: what check_time allows, without its calls
    check_time(attribute.name, value, type(instance).__name__)


def fast_pass(validator: Any, attribute: attrs.Attribute[Any]) -> str | None:
    """A test of a value ``v`` that, when true, means ``validator`` passes ``v`` as
    ``attribute`` (the validator's own cheapest case), or ``None``.

    For generated code (:func:`reqmgmt.building.first_version`) that calls a
    validator only when the test is false: a value it passes costs no call,
    any other gets the validator itself and its error.  The names the test
    uses are :data:`FAST_NAMES`.  tests/unit/test_create_fast.py checks that
    a value passing the test passes the validator.
    """
    text = "(v.__class__ is str and len(v) <= _MAX_ID_ and v.isprintable())"
    if validator is _non_empty:
        return f"({text} and v.strip())"
    if validator is _text:
        return text
    if validator is _optional_text:
        return f"(v is None or {text})"
    if validator is _aware:
        aware = "(v.__class__ is _datetime_ and v.tzinfo is _UTC_ and _EARLIEST_ <= v < _LATEST_)"
        return f"(v is None or {aware})" if attribute.default is None else aware
    if validator is _count:
        return "(v.__class__ is int and 0 <= v <= _MAX_COUNT_)"
    return None


#: The names :func:`fast_pass`'s tests use.
FAST_NAMES: dict[str, Any] = {
    "_MAX_ID_": MAX_ID,
    "_MAX_COUNT_": MAX_COUNT,
    "_datetime_": datetime,
    "_UTC_": UTC,
    "_EARLIEST_": EARLIEST,
    "_LATEST_": LATEST,
}


def _date(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.default is None:
        return
    if not isinstance(value, date) or isinstance(value, datetime):
        expected = "a date or None" if attribute.default is None else "a date"
        raise ValidationError(
            attribute.name, value, expected + " (not a datetime)", where=type(instance).__name__
        )
    if not (_EARLIEST_DAY <= value < _LATEST_DAY):
        raise ValidationError(
            attribute.name,
            value,
            "a date from 1900-01-01 to 2199-12-31 (a missing date is None, not a "
            "placeholder such as 0001-01-01 or 9999-12-31)",
            where=type(instance).__name__,
        )


def _one_of(choices: Iterable[str]) -> Any:
    allowed = tuple(choices)

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in allowed:
            raise ValidationError(
                attribute.name,
                value,
                "one of " + ", ".join(repr(c) for c in allowed),
                where=type(instance).__name__,
            )

    return check


def _non_negative_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT:
        raise ValidationError(
            attribute.name,
            value,
            f"a whole number from 0 to {MAX_INT}",
            where=type(instance).__name__,
        )


def _count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise ValidationError(
            attribute.name,
            value,
            f"a whole number from 0 to {MAX_COUNT}",
            where=type(instance).__name__,
        )


def _strings(value: Iterable[str] | str) -> frozenset[str]:
    # A bare string would become a set of its letters: a classic mistake.
    if isinstance(value, str):
        return frozenset((value,))
    return frozenset(value)


def _texts(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _signoffs(value: Iterable[Signoff]) -> tuple[Signoff, ...]:
    return tuple(value)


# --- value objects ----------------------------------------------------------------


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, (bool, float)):
        raise ValidationError(
            "amount",
            value,
            "a Decimal, int or numeric string (floats cannot hold amounts like 0.10 exactly; "
            "write Decimal('0.10') or '0.10')",
            where="Money",
        )
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationError(
            "amount", value, "a Decimal, int or numeric string such as '1999.50'", where="Money"
        ) from None
    if not amount.is_finite():
        raise ValidationError(
            "amount", value, "a finite amount (not NaN or infinity)", where="Money"
        )
    return amount


def _currency(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in CURRENCIES:
        hint = ""
        if isinstance(value, str) and value.upper() in CURRENCIES:
            hint = f" (did you mean {value.upper()!r}?)"
        raise ValidationError(
            "currency",
            value,
            f"an ISO 4217 currency code such as 'CNY' or 'USD'{hint}",
            where="Money",
        )


@frozen(order=False)
class Money:
    """An amount of one currency: ``Money("199999.99", "CNY")``.

    Floats, NaN, infinity and unknown currency codes are refused with a
    :class:`ValidationError` that says why.  Arithmetic and comparison work
    within one currency only; converting is the host's job
    (``reqmgmt_convert_money``).
    """

    amount: Decimal = field(converter=_to_decimal)
    currency: str = field(validator=_currency)

    @property
    def in_minor_unit(self) -> bool:
        """No more decimals than the currency's ISO 4217 minor unit (10.10 CNY, not 10.123)."""
        places = MINOR_UNITS[self.currency]
        _, digits, exponent = self.amount.as_tuple()
        if places is None or not isinstance(exponent, int) or exponent >= -places:
            return True
        # More digits than the minor unit: only zeros may stand there (10.100 CNY).
        return not any(digits[places + exponent :])

    @classmethod
    def rounded(cls, amount: object, currency: str) -> Money:
        """``amount`` rounded half-up to ``currency``'s minor unit (for converted amounts)."""
        value = _to_decimal(amount)
        places = MINOR_UNITS.get(currency) if isinstance(currency, str) else None
        if places is not None:
            try:
                value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
            except InvalidOperation:
                raise ValidationError(
                    "amount", amount, "an amount of at most 28 digits", where="Money"
                ) from None
        return cls(value, currency)

    def _same(self, other: Money, op: str) -> None:
        if not isinstance(other, Money):
            raise ValidationError("other", other, f"Money to {op} with {self}", where="Money")
        if other.currency != self.currency:
            raise ValidationError(
                "currency",
                other.currency,
                f"{self.currency} to {op} with {self}; convert first (reqmgmt_convert_money)",
                where="Money",
            )

    def __add__(self, other: Money) -> Money:
        self._same(other, "add")
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other, "subtract")
        return Money(self.amount - other.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other, "compare")
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other, "compare")
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other, "compare")
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other, "compare")
        return self.amount >= other.amount

    def __str__(self) -> str:
        return f"{self.amount:,} {self.currency}"


def _kept_amount(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An amount a record keeps: Money within its currency's minor unit."""
    if value is None and attribute.default is None:
        return
    if not isinstance(value, Money):
        raise ValidationError(attribute.name, value, "a Money", where=type(instance).__name__)
    if not value.in_minor_unit:
        places = MINOR_UNITS[value.currency]
        raise ValidationError(
            attribute.name,
            value,
            f"at most {places} decimal{'' if places == 1 else 's'} for {value.currency} (its "
            f"ISO 4217 minor unit); round first, e.g. Money.rounded(amount, {value.currency!r})",
            where=type(instance).__name__,
        )


@frozen
class Actor:
    """A person acting on records.

    ``id`` is kept in its canonical form (NFKC, stripped, case-folded:
    ``Actor("Wang ").id == "wang"``), so one person is one id everywhere,
    the audit trail included; ids with control or zero-width characters are
    refused (see :mod:`reqmgmt.people`).  ``name`` is for display.
    ``roles`` decide which events they may fire (``sales``, ``vp``, ...);
    ``departments`` which sign-offs they may give, unless a
    ``reqmgmt_approvers`` plugin names the signers itself.
    """

    id: str = field(converter=normalize_actor_id)
    name: str = field(default="", validator=_text)
    departments: frozenset[str] = field(factory=frozenset, converter=_strings)
    roles: frozenset[str] = field(factory=frozenset, converter=_strings)

    def __str__(self) -> str:
        return f"{self.name} ({self.id})" if self.name else self.id


@frozen
class Customer:
    """A customer as known when a record was taken in (a snapshot, not a master record).

    ``category`` is one of the host's classes (strategic, important,
    potential, general, ...); ``flags`` are facts such as ``new``,
    ``foreign``, ``oem`` that rules look at.
    """

    id: str = field(validator=_non_empty)
    name: str = field(validator=_non_empty)
    category: str = field(default="general", validator=_non_empty)
    flags: frozenset[str] = field(factory=frozenset, converter=_strings, validator=_each_text)


@frozen
class Signoff:
    """One department's signed opinion in one review round (会签)."""

    department: str = field(validator=_non_empty)
    actor_id: str = field(validator=_non_empty)
    approve: bool = field(validator=_instance_of(bool))
    opinion: str = field(validator=_text)
    meaning: str = field(validator=_one_of(SIGNATURE_MEANINGS))
    round: int = field(validator=_count)
    at: datetime = field(validator=_aware)


@frozen(kw_only=True)
class Record:
    """What every record kind has: identity, state, version and review bookkeeping.

    Subclasses set ``RECORD_KIND`` and add their own fields.  ``version``
    starts at 1 and grows by one with every command; ``review_round`` counts
    the reviews opened so far, and ``signoffs`` keeps the signatures of every
    round, so a restarted review never erases the earlier ones.
    ``rules_version`` pins the rule set whose decisions the record carries:
    later rule edits do not change them.
    """

    RECORD_KIND: ClassVar[str] = ""

    ref: str = field(validator=_non_empty)
    state: str = field(validator=_non_empty)
    version: int = field(default=1, validator=_count)
    created_at: datetime = field(validator=_aware)
    updated_at: datetime = field(validator=_aware)
    created_by: str = field(validator=_non_empty)
    submitted_by: str | None = field(default=None, validator=_optional_text)
    #: Who asked for the pending approval (a transition with ``requests_approval``).
    requested_by: str | None = field(default=None, validator=_optional_text)
    review_round: int = field(default=0, validator=_count)
    signoffs: tuple[Signoff, ...] = field(default=(), converter=_signoffs)
    reason: str | None = field(default=None, validator=_optional_text)
    rules_version: str | None = field(default=None, validator=_optional_text)
    # Deadlines (reqmgmt.reminders): kept by the engine, working-calendar times.
    #: When the whole record is due (resolution).
    due_at: datetime | None = field(default=None, validator=_aware)
    #: The current step with its own deadline (a review's sign-offs, a first response).
    step: str | None = field(default=None, validator=_optional_text)
    step_due_at: datetime | None = field(default=None, validator=_aware)
    #: Since when the record waits on the customer (the clock is stopped).
    paused_since: datetime | None = field(default=None, validator=_aware)
    #: Working time spent waiting on the customer so far, in seconds.
    paused_seconds: int = field(default=0, validator=_non_negative_int)
    #: The earliest running deadline; ``None`` while paused or finished.
    next_deadline: datetime | None = field(default=None, validator=_aware)

    def round_signoffs(self, round: int | None = None) -> tuple[Signoff, ...]:
        """The signatures of one review round (the current one by default)."""
        current = self.review_round if round is None else round
        # A list display, then tuple: a generator costs a frame per record (guards ask this).
        return tuple([s for s in self.signoffs if s.round == current])


@frozen(kw_only=True)
class IdentifiedRequirement:
    """One requirement identified on a customer requirement (要求的识别, DOMAIN.md §1).

    ``kind`` is a value of the rule set's ``identified_kinds`` vocabulary:
    ``explicit`` (明示: product, quality, price, delivery, after-sales),
    ``implied`` (隐含: needed for the intended use although unstated),
    ``statutory`` (法律法规: standards, the destination country's law, recycling)
    or ``company`` (公司附加: the company's own additional requirements).
    ``identified_by`` is the actor who recorded it, ``at`` when.
    """

    kind: str = field(validator=_non_empty)
    text: str = field(validator=_non_empty)
    identified_by: str = field(validator=_non_empty)
    at: datetime = field(validator=_aware)


def _items(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


def _each_instance_of(cls: type) -> Any:
    """Every item of a tuple field is a ``cls`` (records nested in a record)."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: Iterable[Any]) -> None:
        for item in value:
            if not isinstance(item, cls):
                raise ValidationError(
                    attribute.name,
                    item,
                    f"{cls.__name__} items only (got a {type(item).__name__})",
                    where=type(instance).__name__,
                )

    return check


@frozen(kw_only=True)
class CreditRecord:
    """The customer's past integrity and credit record (信用记录), consulted at intake.

    The host's ERP gives it (``reqmgmt_customer_credit``) when a requirement
    is received; it is kept on the requirement as it was then.  ``rating`` is
    the host's own grade (``A``, ``good``, ``on hold``...), ``note`` what the
    ERP says about it (overdue invoices, disputes), ``customer_id`` the
    customer it is about (it must be the requirement's).
    """

    customer_id: str = field(validator=_non_empty)
    rating: str = field(validator=_non_empty)
    note: str = field(default="", validator=_text)


@frozen(kw_only=True)
class CustomerConfirmation:
    """The customer's word on one evaluation round, recorded by ``recorded_by`` (需求导入).

    ``text`` is what the customer said or signed (a fax, a mail, the customer
    section of the import approval form 需求导入核准单), ``round`` the
    evaluation round it answers.
    """

    text: str = field(validator=_non_empty)
    round: int = field(validator=_count)
    recorded_by: str = field(validator=_non_empty)
    at: datetime = field(validator=_aware)


@frozen(kw_only=True)
class PlanReceipt:
    """A department's signature for the delivery plan it received (交货计划表签收)."""

    department: str = field(validator=_non_empty)
    actor_id: str = field(validator=_non_empty)
    at: datetime = field(validator=_aware)


@frozen(kw_only=True)
class Requirement(Record):
    """A customer requirement (客户需求): an order, memo, inquiry, special requirement...

    ``ref`` is its case number (案件号), ``REQ-2026-000001`` unless the host's
    ``reqmgmt_next_number`` says otherwise.
    """

    RECORD_KIND: ClassVar[str] = "requirement"

    customer: Customer = field(validator=_instance_of(Customer))
    # Vocabularies of the rule set (checked where a record is created).
    kind: str = field(default="order", validator=_non_empty)
    channel: str = field(default="fax", validator=_non_empty)
    description: str = field(validator=_non_empty)
    received_at: datetime = field(validator=_aware)
    priority: str = field(default="normal", validator=_one_of(REQUIREMENT_PRIORITIES))
    remarks: tuple[str, ...] = field(default=(), converter=_texts, validator=_each_text)
    clarifications: tuple[str, ...] = field(default=(), converter=_texts, validator=_each_text)
    delivery_plan: str | None = field(default=None, validator=_optional_text)
    outsourcing: str | None = field(default=None, validator=_optional_text)
    #: The requirements identified so far (明示, 隐含, 法律法规, 公司附加), in order.
    identified: tuple[IdentifiedRequirement, ...] = field(
        default=(), converter=_items, validator=_each_instance_of(IdentifiedRequirement)
    )
    #: The customer's credit record as the host gave it at intake (``None``: no host answer).
    credit: CreditRecord | None = field(
        default=None, validator=attrs.validators.optional(_instance_of(CreditRecord))
    )

    #: ``new_product`` or ``new_process`` when held for design and development (新产品/新工艺).
    novelty: str | None = field(default=None, validator=_optional_text)
    #: The host's design project the requirement was handed to (reqmgmt_design_project).
    design_project: str | None = field(default=None, validator=_optional_text)
    #: The design result it came back with (design_done).
    design_result: str | None = field(default=None, validator=_optional_text)
    #: The approved subcontractor (外包加工商) chosen when outsourcing was requested.
    subcontractor: str | None = field(default=None, validator=_optional_text)
    #: The customer's confirmation of the cutting order (裁剪单), before the subcontractor is told.
    cutting_confirmation: str | None = field(default=None, validator=_optional_text)
    #: The customer's confirmation of the evaluation (需求导入: 评估结果客户确认).
    evaluation_confirmation: CustomerConfirmation | None = field(
        default=None, validator=attrs.validators.optional(_instance_of(CustomerConfirmation))
    )
    #: The customer's section of the import approval form (需求导入核准单 客户确认栏).
    import_confirmation: CustomerConfirmation | None = field(
        default=None, validator=attrs.validators.optional(_instance_of(CustomerConfirmation))
    )
    #: The departments the delivery plan went to, fixed when it was issued (``accept``).
    plan_departments: tuple[str, ...] = field(default=(), converter=_texts, validator=_each_text)
    #: Each department's signature for the plan (签收), in order.
    plan_receipts: tuple[PlanReceipt, ...] = field(
        default=(), converter=_items, validator=_each_instance_of(PlanReceipt)
    )

    @property
    def plan_signed(self) -> dict[str, PlanReceipt]:
        """Department → its signature for the delivery plan, for those that signed."""
        return {r.department: r for r in self.plan_receipts}

    @property
    def plan_unsigned(self) -> tuple[str, ...]:
        """The departments the delivery plan went to that have not signed for it yet."""
        signed = {r.department for r in self.plan_receipts}
        return tuple(d for d in self.plan_departments if d not in signed)

    def identified_of(self, kind: str) -> tuple[IdentifiedRequirement, ...]:
        """The identified requirements of one kind (``explicit``, ``implied``...)."""
        return tuple(x for x in self.identified if x.kind == kind)

    @property
    def case_number(self) -> str:
        """The case number (案件号) users see; the same as ``ref``."""
        return self.ref


@frozen(weakref_slot=False)
class FieldChange:
    """One field of a record, old value → new value, both in their JSON form.

    ``op`` is ``"set"`` (``new`` replaces ``old``) or ``"append"``: items were
    added to a tuple field (sign-offs, remarks...); then ``old`` is the length
    before and ``new`` lists only the added items, so an audit event stays
    small however long the record's lists grow.  A creating event has one
    change, ``op="create"`` with ``field="*"``, whose ``new`` is the whole
    first version (every field, in JSON form).
    """

    field: str
    old: Any
    new: Any
    op: str = "set"


@frozen(kw_only=True, weakref_slot=False)
class AuditEvent:
    """One command's entry in a record's audit trail.

    ``version`` is the record version the command produced; ``changes`` holds
    every field that changed, so replaying the events rebuilds the record.
    ``hash`` is the SHA-256 of the event's content including ``prev_hash``, the
    hash of the record's previous event: editing any stored event breaks the
    chain (:meth:`reqmgmt.Desk.verify_history`).
    """

    ref: str
    record_kind: str
    version: int
    event: str
    from_state: str | None
    to_state: str
    actor_id: str
    actor_name: str
    # No validators here: only the engine makes audit events and
    # notifications, from values it has checked, once per command.
    at: datetime
    note: str | None = None
    meaning: str | None = None
    changes: tuple[FieldChange, ...] = ()
    decisions: tuple[dict[str, Any], ...] = ()
    prev_hash: str = ""
    hash: str = ""


@frozen(kw_only=True, weakref_slot=False)
class Notification:
    """A message to deliver after a command commits.

    ``text_zh`` / ``text_en`` say what happened in one sentence each (the
    record, the states, the event, the note); ``note`` and ``details`` give
    the same content as fields for a host's own template.

    ``key`` is the idempotency key ``ref:version:recipient``: a delivery that
    is repeated after a failure or restart carries the same key, so the
    receiver can drop duplicates.
    """

    key: str
    ref: str
    record_kind: str
    version: int
    event: str
    recipient: str
    topic: str
    text_zh: str
    text_en: str
    created_at: datetime
    #: The command's note: the question put to the customer, a decline's reason...
    note: str | None = None
    #: The event's key data as ``(key, text)`` pairs: the delivery plan, an
    #: amendment's changes, a disposition, a shipment (see :mod:`reqmgmt.notices`).
    details: tuple[tuple[str, str], ...] = ()


# --- new versions ----------------------------------------------------------------------------

_R = TypeVar("_R", bound=Record)
_T = TypeVar("_T")


_FIELDS: dict[type[Record], dict[str, attrs.Attribute[Any]]] = {}
_COPIERS: dict[type[Record], Any] = {}


def _fields_of(cls: type[Record]) -> dict[str, attrs.Attribute[Any]]:
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = {a.name: a for a in attrs.fields(cls)}
    return found


def _copier(cls: type[Record]) -> Any:
    found = _COPIERS.get(cls)
    if found is None:
        found = _COPIERS[cls] = _make_copier(cls)
    return found


def _make_copier(cls: type[Record]) -> Any:
    # One generated function per class: a plain copy of every slot (this runs
    # once per command).  Where the class allows it, the copy is filled in as
    # its stand-in (:func:`_stand_in`), whose slots take plain stores, then
    # becomes a ``cls``: several times cheaper than ``object.__setattr__``
    # per field, which costs about a microsecond each.
    names = [a.name for a in attrs.fields(cls)]
    return _generated(cls, "copy(r)", [(n, f"r.{n}") for n in names])


def _generated(
    cls: type,
    signature: str,
    values: list[tuple[str, str]],
    tail: Sequence[str] = (),
    *,
    head: Sequence[str] = (),
    after: Sequence[str] = (),
    names: Mapping[str, Any] | None = None,
    stand_in: type | None = None,
) -> Any:
    """Generate ``def <signature>`` returning a new ``cls`` whose fields are set to the
    given source expressions (field name, expression), then ``tail``'s lines run.

    Where the class allows it (:func:`_stand_in`, or the ``stand_in`` given), the
    object is filled in as its stand-in with plain stores and then becomes a
    ``cls``; otherwise each field is set through ``object.__setattr__`` (``_put_``).
    ``head``: lines run before the object is made; ``after``: lines run once it
    is a ``cls`` (validators, whose errors name its class); ``names``: the
    globals those lines use besides ``n`` and the function's arguments.
    """
    stand_in = stand_in or _stand_in(cls)
    lines = [f"def {signature}:", *head]
    if stand_in is None:
        lines.append("    n = _new_(_cls_)")
        lines += [f"    _put_(n, {name!r}, {value})" for name, value in values]
        lines += tail
    else:
        lines.append(f"    n = {made_by(stand_in, '_stand_in_')}")
        lines += [f"    n.{name} = {value}" for name, value in values]
        lines += tail
        lines.append("    n.__class__ = _cls_")
    lines += after
    lines.append("    return n")
    namespace: dict[str, Any] = {
        **(names or {}),
        "_new_": object.__new__,
        "_cls_": cls,
        "_put_": object.__setattr__,
        "_stand_in_": stand_in,
    }
    exec("\n".join(lines), namespace)
    return namespace[signature.partition("(")[0]]


def fill_line(cls: type, var: str) -> tuple[str, dict[str, Any]] | None:
    """One line of generated code making ``var`` a new ``cls`` as :func:`_generated`
    does (a stand-in filled with plain stores, then its class), every field's
    expression a ``str.format`` field in ``attrs.fields`` order; and the globals
    it uses.  ``None`` where ``cls`` has no stand-in (call its :func:`maker`)."""
    stand_in = _stand_in(cls)
    if stand_in is None:
        return None
    names = [a.name for a in attrs.fields(cls)]
    stores = "".join(f"; {var}.{name} = {{{i}}}" for i, name in enumerate(names))
    made, became = f"_{var}_stand_in_", f"_{var}_cls_"
    line = f"{var} = {made_by(stand_in, made)}{stores}; {var}.__class__ = {became}"
    return line, {"_new_": object.__new__, made: stand_in, became: cls}


_EVOLVERS: dict[type[Record], Any] = {}


def _evolver(cls: type[Record]) -> Any:
    """A generated ``evolve(record, values)``: a copy of ``record`` with ``values``
    (field name -> value, nothing checked) set, made as :func:`_copier` makes one."""
    found = _EVOLVERS.get(cls)
    if found is None:
        names = [a.name for a in attrs.fields(cls)]
        found = _EVOLVERS[cls] = _generated(
            cls,
            "evolve(r, values)",
            [(n, f"r.{n}") for n in names],
            ["    for name, value in values.items():", "        _put_(n, name, value)"],
        )
    return found


_CONSTRUCTORS: dict[type, Any] = {}


def constructor(cls: type[_T]) -> Callable[[Mapping[str, Any]], _T]:
    """``cls(**values)`` as a function of the mapping ``values``, built like :func:`maker`.

    The same converters, defaults, validators (unless attrs' validators are
    disabled) and ``__attrs_post_init__`` as attrs' ``__init__``, in the same
    order; a missing or unknown name is left to ``cls(**values)`` itself, so
    its ``TypeError`` is attrs' own.  Classes it does not fit (a stand-in
    cannot be made, a private name, a factory taking self...) get
    ``cls(**values)``.
    """
    found = _CONSTRUCTORS.get(cls)
    if found is None:
        found = _CONSTRUCTORS[cls] = _make_constructor(cls)
    return found  # type: ignore[no-any-return]


def _fillable(cls: type) -> type | None:
    """The stand-in of ``cls`` where a generated fill can stand for ``cls(**values)``
    (every field in ``__init__`` under its own name, no pre-init, no factory taking
    self, no converter taking self), else ``None``."""
    stand_in = _stand_in(cls)
    if stand_in is None or hasattr(cls, "__attrs_pre_init__"):
        return None
    for a in attrs.fields(cls):
        if (
            not a.init
            or a.alias != a.name
            or (isinstance(a.default, attrs.Factory) and a.default.takes_self)  # type: ignore[arg-type]
            or isinstance(a.converter, attrs.Converter)
        ):
            return None
    return stand_in


def _make_constructor(cls: type) -> Any:
    fields = attrs.fields(cls)
    stand_in = _fillable(cls)
    if stand_in is None:
        return lambda values: cls(**values)
    namespace: dict[str, Any] = {
        "_new_": object.__new__,
        "_cls_": cls,
        "_stand_in_": stand_in,
        "_names_": frozenset(a.name for a in fields),
        "_required_": frozenset(a.name for a in fields if a.default is attrs.NOTHING),
        "_disabled_": attrs.validators.get_disabled,
        "_post_": getattr(cls, "__attrs_post_init__", None),
    }
    lines = [
        "def construct(values):",
        "    keys = values.keys()",
        "    if not (keys <= _names_ and _required_ <= keys):",
        "        return _cls_(**values)  # attrs' own TypeError",
        f"    n = {made_by(stand_in, '_stand_in_')}",
    ]
    for i, a in enumerate(fields):
        if a.default is attrs.NOTHING:
            value = f"values[{a.name!r}]"
        elif isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
            namespace[f"_f{i}"] = a.default.factory
            value = f"(values[{a.name!r}] if {a.name!r} in keys else _f{i}())"
        else:
            namespace[f"_d{i}"] = a.default
            value = f"values.get({a.name!r}, _d{i})"
        if a.converter is not None:
            namespace[f"_c{i}"] = a.converter
            value = f"_c{i}({value})"
        lines.append(f"    n.{a.name} = {value}")
    lines.append("    n.__class__ = _cls_")
    checks = [(i, a) for i, a in enumerate(fields) if a.validator is not None]
    if checks:
        lines.append("    if not _disabled_():")
        for i, a in checks:
            namespace[f"_v{i}"] = a.validator
            namespace[f"_a{i}"] = a
            lines.append(f"        _v{i}(n, _a{i}, n.{a.name})")
    if namespace["_post_"] is not None:
        lines.append("    _post_(n)")
    lines.append("    return n")
    exec("\n".join(lines), namespace)
    return namespace["construct"]


_STAND_INS: dict[type, type | None] = {}


def _stand_in(cls: type) -> type | None:
    """A class with the slot layout of the frozen attrs class ``cls`` and plain attribute
    stores, or ``None`` where CPython would not let an instance change between them.

    Generated constructors (:func:`_copier`, :func:`maker`) fill a new instance
    of the stand-in, then assign ``__class__ = cls``: CPython allows it between
    classes with the same base and the same slots.  The stand-in is never seen
    outside them; its ``RECORD_KIND`` is empty, so :func:`record_classes`
    passes it by.
    """
    if cls in _STAND_INS:
        return _STAND_INS[cls]
    found: type | None = None
    slots = cls.__dict__.get("__slots__")
    base = cls.__base__
    if isinstance(slots, tuple) and "__dict__" not in slots and base is not None:
        namespace: dict[str, Any] = {
            "__slots__": slots,
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
            "__module__": cls.__module__,
            # object's own __init__ (not the attrs class's it would inherit through
            # the base): the stand-in is then made by calling it, ~0.3k instructions
            # less than object.__new__(stand_in) (made_by).
            "__init__": object.__init__,
        }
        if issubclass(cls, Record):
            namespace["RECORD_KIND"] = ""
        found = type(f"_StandIn{cls.__name__}", (base,), namespace)
        try:
            probe: Any = object.__new__(found)
            probe.__class__ = cls
        except TypeError:  # another layout (a __weakref__ slot of its own...)
            found = None
    _STAND_INS[cls] = found
    return found


_OBJECT_NEW: Any = object.__new__
_OBJECT_INIT: Any = object.__init__


def made_by(stand_in: type, name: str) -> str:
    """The expression making a new, empty ``stand_in`` (held in the global ``name``):
    a call of it where its ``__new__`` and ``__init__`` are object's and its class is
    ``type`` itself (a class call costs less than ``object.__new__``'s wrapper), else
    ``_new_(name)``."""
    if (
        type(stand_in) is type  # no host metaclass whose __call__ would run
        and getattr(stand_in, "__new__", None) is _OBJECT_NEW
        and getattr(stand_in, "__init__", None) is _OBJECT_INIT
    ):
        return f"{name}()"
    return f"_new_({name})"


_MAKERS: dict[type, Any] = {}


def maker(cls: type[_T]) -> Callable[..., _T]:
    """A function making a ``cls`` from every field's value, positionally, in
    ``attrs.fields`` order, without converters or validators.

    For values the engine made from checked input (audit events, field
    changes, notifications), once or several times per command: attrs' own
    ``__init__`` of a frozen class sets each field through
    ``object.__setattr__``.
    """
    found = _MAKERS.get(cls)
    if found is None:
        names = [a.name for a in attrs.fields(cls)]  # type: ignore[arg-type]
        found = _MAKERS[cls] = _generated(cls, f"make({', '.join(names)})", [(n, n) for n in names])
    return found  # type: ignore[no-any-return]


def record_classes() -> dict[str, type[Record]]:
    """Every record class by its ``RECORD_KIND`` (a host's own subclasses included)."""
    found: dict[str, type[Record]] = {}
    todo: list[type[Record]] = [Record]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.RECORD_KIND:
                found[sub.RECORD_KIND] = sub
            todo.append(sub)
    return found


def derive(record: _R, changes: Mapping[str, Any], *, checked: str | frozenset[str] = "") -> _R:
    """A new version of ``record`` with ``changes`` applied (the engine's ``evolve``).

    Runs the converters and validators of the changed fields only (the
    others were checked when the record was made), then the class's
    cross-field checks (``__attrs_post_init__``).  Unknown field names raise
    :class:`ValidationError`.  ``checked`` names the field (or the set of
    fields) whose new value was checked already: the command path's
    ``state`` (a state the lifecycle declares, whose names were checked when
    it was built) and ``version`` (the stored version plus one, within
    :data:`MAX_COUNT`).
    """
    cls = type(record)
    # The changes' names, in order, select a plan made once (see _Keyed):
    # the command path derives with a handful of shapes per transition.
    keyed = _KEYED.get((cls, tuple(changes), checked))
    if keyed is not None:
        if type(changes) is dict:  # the command path: the plan's generated derive
            return keyed.derive(record, changes)  # type: ignore[no-any-return]
        values = changes
        if keyed.converters:
            values = dict(changes)
            for name, convert in keyed.converters:
                values[name] = convert(values[name])
        new: _R = keyed.evolve(record, values)
        for name, a, validator in keyed.validators:
            validator(new, a, values[name])
        if keyed.post_init is not None:
            keyed.post_init(new)
        return new
    return _derive_planning(record, changes, checked)


def _derive_planning(record: _R, changes: Mapping[str, Any], checked: str | frozenset[str]) -> _R:
    """:func:`derive` without a plan for the shape of ``changes``: checks every name,
    derives, and keeps a plan for the next changes of that shape."""
    cls = type(record)
    plan = _PLANS.get(cls) or _plan(cls)
    fields = plan.fields
    done = _NONE_CHECKED if not checked else (
        frozenset((checked,)) if isinstance(checked, str) else checked
    )  # fmt: skip
    values: dict[str, Any] = {}
    for name, value in changes.items():
        found = fields.get(name)
        if found is None:
            raise ValidationError(name, value, "a field of " + cls.__name__, where=cls.__name__)
        if found[1] is not None and name not in done:
            value = found[1](value)
        values[name] = value
    new: _R = plan.evolve(record, values)
    # Each changed field's validator sees the whole new version.
    for name, value in values.items():
        a, _, validator = fields[name]
        if validator is not None and name not in done:
            validator(new, a, value)
    # Cross-field invariants (a contract's amount is the sum of its lines).
    if plan.post_init is not None:
        plan.post_init(new)
    # Every name is a field (an unknown one raised above): the shape gets its plan.
    if len(_KEYED) >= _KEYED_MAX:
        _KEYED.clear()
    _KEYED[cls, tuple(changes), checked] = _Keyed(cls, plan, tuple(changes), done)
    return new


class _Keyed:
    """What :func:`derive` does for one record class, one sequence of changed field
    names and one ``checked``: the converters and validators of those fields (in
    the order of the names, the checked ones left out) and an evolver that sets
    exactly those fields (generated once, see :func:`_generated`)."""

    __slots__ = ("converters", "derive", "evolve", "post_init", "validators")

    def __init__(
        self, cls: type[Record], plan: _Plan, names: tuple[str, ...], done: frozenset[str]
    ) -> None:
        fields = plan.fields
        self.converters = tuple(
            (n, fields[n][1]) for n in names if fields[n][1] is not None and n not in done
        )
        self.validators = tuple(
            (n, fields[n][0], fields[n][2])
            for n in names
            if fields[n][2] is not None and n not in done
        )
        self.post_init = plan.post_init
        changed = set(names)
        self.evolve = _generated(
            cls,
            "evolve(r, values)",
            [
                (a.name, f"values[{a.name!r}]" if a.name in changed else f"r.{a.name}")
                for a in attrs.fields(cls)
            ],
        )
        #: All of the above as one generated function of a dict of changes.
        self.derive = _keyed_derive(cls, plan, names, done)


def _same_when(converter: Any) -> type | None:
    """The class whose exact instances ``converter`` returns as they are (``tuple(t)``
    is ``t`` for a tuple, ``frozenset(f)`` is ``f``), or ``None``: where the value is
    one, :func:`_keyed_derive` does not call it."""
    if converter in (_signoffs, _texts, _items, _lines):
        return tuple
    if converter is _strings:
        return frozenset
    return None


def derive_pass(validator: Any, attribute: attrs.Attribute[Any]) -> str | None:
    """:func:`fast_pass` for :func:`derive`, which also meets collections: a test of
    ``v`` that, when true, means ``validator`` passes ``v``, or ``None``.

    Besides :func:`fast_pass`'s cases: a tuple or frozenset of plain strings
    within :data:`MAX_ID` with no control character (``_each_text``'s cheapest
    case, all at C speed: ``"".join`` is printable exactly when every item
    is), and the empty tuple for an "every item is a ``cls``" check.
    tests/unit/test_steps2_derive.py checks both against the validators.
    """
    fast = fast_pass(validator, attribute)
    if fast is not None:
        return fast
    if validator is _each_text:
        return (
            "((v.__class__ is tuple or v.__class__ is frozenset)"
            " and _STR_.issuperset(map(type, v))"
            " and max(map(len, v), default=0) <= _MAX_ID_ and ''.join(v).isprintable())"
        )
    if getattr(validator, "__code__", None) is _each_instance_of(object).__code__:
        return "(v.__class__ is tuple and not v)"
    return None


#: Tuples and frozensets of plain strings that passed :func:`derive_pass`'s test for
#: ``_each_text`` (the set is its keys): a value of equal content passes it too, as the
#: test reads the items' text only.  A command path's collections come back alike
#: (every department of the vocabulary, at each plan): one look-up instead of
#: reading every item's length and text again (~15k instructions for eleven).
_TEXTS_PASSED: dict[tuple[str, ...] | frozenset[str], None] = {}
#: At most this many kept, none of more items than _TEXTS_ITEMS.
_TEXTS_MAX = 1024
_TEXTS_ITEMS = 64
_STR_ONLY: frozenset[type] = frozenset((str,))


def texts_pass(v: Any) -> bool:
    """:func:`derive_pass`'s test for ``_each_text`` (true: the validator passes ``v``),
    remembering the values it passed (:data:`_TEXTS_PASSED`).

    Only a true ``tuple`` or ``frozenset`` of true ``str`` is looked up or kept:
    hashing and comparing them runs no code of the caller's (a ``str`` subclass's
    ``__eq__``, an object claiming to be a tuple).  Anything else gets the test as
    :func:`derive_pass` writes it.  tests/unit/test_derive7.py compares the two.
    """
    cls = type(v)
    if (cls is tuple or cls is frozenset) and _STR_ONLY.issuperset(map(type, v)):
        if v in _TEXTS_PASSED:
            return True
        if (not v or max(map(len, v)) <= MAX_ID) and "".join(v).isprintable():
            if len(v) <= _TEXTS_ITEMS:
                if len(_TEXTS_PASSED) >= _TEXTS_MAX:
                    _TEXTS_PASSED.clear()
                _TEXTS_PASSED[v] = None
            return True
        return False
    return _texts_test(v)


def _texts_test(v: Any) -> bool:
    """:func:`derive_pass`'s ``_each_text`` test as it writes it (for :func:`texts_pass`)."""
    return bool(
        (v.__class__ is tuple or v.__class__ is frozenset)
        and _STR_ONLY.issuperset(map(type, v))
        and max(map(len, v), default=0) <= MAX_ID
        and "".join(v).isprintable()
    )


def _keyed_derive(
    cls: type[Record], plan: _Plan, names: tuple[str, ...], done: frozenset[str]
) -> Any:
    """``derive(record, changes)`` for a dict ``changes`` with exactly ``names``, in
    order: what :func:`derive` does with a plan, written out once.

    The changed values are unpacked in order; each converter runs in order
    (not called where it would return the value as it is, :func:`_same_when`);
    the new version is filled as :func:`_generated` fills one; then each
    validator, in order, is called only where its :func:`derive_pass` test
    misses, so a value it would refuse still gets the validator's own error.
    attrs' validators are run even when attrs' are disabled, as :func:`derive` does.
    """
    fields = plan.fields
    index = {name: i for i, name in enumerate(names)}
    namespace: dict[str, Any] = {
        **FAST_NAMES,
        "_STR_": frozenset((str,)),
        "_post_": plan.post_init,
        "_texts_pass_": texts_pass,
    }
    lines = []
    if names:
        lines.append(f"    {''.join(f'v{i}, ' for i in range(len(names)))}= changes.values()")
    for i, name in enumerate(names):
        convert = fields[name][1]
        if convert is None or name in done:
            continue
        namespace[f"_c{i}_"] = convert
        same = _same_when(convert)
        if same is None:
            lines.append(f"    v{i} = _c{i}_(v{i})")
        else:
            namespace[f"_s{i}_"] = same
            lines.append(f"    if v{i}.__class__ is not _s{i}_:")
            lines.append(f"        v{i} = _c{i}_(v{i})")
    values = [
        (a.name, f"v{index[a.name]}" if a.name in index else f"r.{a.name}")
        for a in attrs.fields(cls)
    ]
    after: list[str] = []
    for i, name in enumerate(names):
        a, _, validator = fields[name]
        if validator is None or name in done:
            continue
        namespace[f"_v{i}_"], namespace[f"_a{i}_"] = validator, a
        call = f"_v{i}_(n, _a{i}_, v{i})"
        # A collection of texts: the remembering form of the same test (texts_pass).
        fast = "_texts_pass_(v)" if validator is _each_text else derive_pass(validator, a)
        if fast is None:
            after.append(f"    {call}")
        else:
            after += [f"    v = v{i}", f"    if not {fast}:", f"        {call}"]
    if plan.post_init is not None:
        after.append("    _post_(n)")
    return _generated(cls, "derive(r, changes)", values, head=lines, after=after, names=namespace)


def planned_derive(
    cls: type[Record], names: tuple[str, ...], checked: str | frozenset[str]
) -> Callable[[Record, dict[str, Any]], Record] | None:
    """The generated function :func:`derive` runs for a ``dict`` of changes of exactly
    ``names`` (in order) of a ``cls`` record with ``checked``, once it has planned that
    shape (:func:`_keyed_derive`); ``None`` before (or a name is no field)."""
    keyed = _KEYED.get((cls, names, checked))
    return None if keyed is None else keyed.derive


#: Plans by (record class, changed names in order, ``checked``), at most _KEYED_MAX.
_KEYED: dict[tuple[type[Record], tuple[str, ...], str | frozenset[str]], _Keyed] = {}
_KEYED_MAX = 4096


_NONE_CHECKED: frozenset[str] = frozenset()


class _Plan:
    """What :func:`derive` needs of a record class, looked up once."""

    __slots__ = ("evolve", "fields", "post_init")

    def __init__(self, cls: type[Record]) -> None:
        self.fields: dict[str, tuple[attrs.Attribute[Any], Any, Any]] = {
            a.name: (a, a.converter, a.validator) for a in attrs.fields(cls)
        }
        self.evolve = _evolver(cls)
        self.post_init = getattr(cls, "__attrs_post_init__", None)


_PLANS: dict[type[Record], _Plan] = {}


def _plan(cls: type[Record]) -> _Plan:
    found = _PLANS[cls] = _Plan(cls)
    return found


# --- contracts and orders ------------------------------------------------------------------

#: Documents reviewed as contracts (合同评审): contract, order, bid 标书, technical
#: agreement 技术协议, verbal order 口头订单, quotation 报价单.
CONTRACT_DOCUMENTS: dict[str, tuple[str, str]] = {
    "contract": ("合同", "contract"),
    "order": ("订单", "order"),
    "bid": ("标书", "bid"),
    "technical_agreement": ("技术协议", "technical agreement"),
    "verbal": ("口头订单", "verbal order"),
    "quotation": ("报价单", "quotation"),
}
CONTRACT_CHANNELS: dict[str, tuple[str, str]] = {
    "domestic": ("内销", "domestic"),
    "foreign_trade": ("外贸", "foreign trade"),
}


def _positive_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_INT:
        raise ValidationError(
            attribute.name,
            value,
            f"a positive whole number up to {MAX_INT}",
            where=type(instance).__name__,
        )


#: Kinds of contract line: goods are delivered and priced; a discount (折让)
#: is a positive amount subtracted from the goods, never shipped.
LINE_KINDS: dict[str, tuple[str, str]] = {
    "goods": ("货物", "goods"),
    "discount": ("折让", "discount / credit"),
}


def _unit_price(instance: ContractLine, attribute: attrs.Attribute[Any], value: object) -> None:
    _kept_amount(instance, attribute, value)
    assert isinstance(value, Money)
    if value.amount < 0:
        raise ValidationError(
            "unit_price",
            value,
            "a price of 0 or more; a reduction is a line of kind 'discount' with a positive "
            "price, subtracted from the goods",
            where="ContractLine",
        )


@frozen(kw_only=True)
class ContractLine:
    """One line of a contract or order: what, how many, at what price, by when.

    ``shipped`` counts what has left on shipping orders so far (partial
    shipments), never more than ``quantity``.  ``kind`` is ``"goods"`` or
    ``"discount"``: a discount line has a positive price that is subtracted
    from the contract's amount; it is never shipped, and the contract class
    compares the goods' gross amount (docs/rules.md).
    """

    line_no: int = field(validator=_positive_int)
    product: str = field(validator=_non_empty)
    specification: str = field(default="", validator=_text)
    model: str = field(default="", validator=_text)
    quantity: int = field(validator=_positive_int)
    unit: str = field(default="pcs", validator=_non_empty)
    unit_price: Money = field(validator=_unit_price)
    delivery_date: date | None = field(default=None, validator=_date)
    shipped: int = field(default=0, validator=_non_negative_int)
    kind: str = field(default="goods", validator=_one_of(LINE_KINDS))

    def __attrs_post_init__(self) -> None:
        if self.kind == "discount" and (self.unit_price.amount <= 0 or self.shipped):
            raise ValidationError(
                "unit_price" if self.unit_price.amount <= 0 else "shipped",
                self.unit_price if self.unit_price.amount <= 0 else self.shipped,
                "a positive discount, never shipped",
                where=f"ContractLine {self.line_no}",
            )
        if self.shipped > self.quantity:
            raise ValidationError(
                "shipped",
                self.shipped,
                f"at most the line's quantity {self.quantity}",
                where=f"ContractLine {self.line_no}",
            )

    @property
    def amount(self) -> Money:
        """Quantity × unit price."""
        return Money(self.unit_price.amount * self.quantity, self.unit_price.currency)

    @property
    def signed_amount(self) -> Money:
        """What the line adds to the contract: the amount, negative for a discount."""
        amount = self.unit_price.amount * self.quantity
        return Money(-amount if self.kind == "discount" else amount, self.unit_price.currency)

    @property
    def open_quantity(self) -> int:
        """What is still to ship (nothing, for a discount)."""
        return 0 if self.kind == "discount" else self.quantity - self.shipped


def _lines(value: Iterable[ContractLine]) -> tuple[ContractLine, ...]:
    return tuple(value)


def lines_total(lines: Iterable[ContractLine], currency: str) -> Money:
    """The contract's amount: goods minus discounts, in ``currency`` (every line must be in it)."""
    total = Money(0, currency)
    for line in lines:
        total = total + line.signed_amount
    return total


def goods_total(lines: Iterable[ContractLine], currency: str) -> Money:
    """The gross amount of the goods lines (discounts not subtracted): what classifies."""
    total = Money(0, currency)
    for line in lines:
        if line.kind == "goods":
            total = total + line.amount
    return total


def _check_lines(instance: Contract, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        not isinstance(value, tuple)
        or not value
        or not all(isinstance(x, ContractLine) for x in value)
    ):
        raise ValidationError("lines", value, "one or more ContractLine", where="Contract")
    numbers = [x.line_no for x in value]
    if len(set(numbers)) != len(numbers):
        raise ValidationError("lines", numbers, "distinct line numbers", where="Contract")


#: Contract fields an amendment (合同变更) may change besides the lines.
CONTRACT_TERMS = (
    "payment_terms",
    "delivery_method",
    "packaging",
    "quality_requirements",
    "acceptance_criteria",
)


def _terms(value: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in value)


@frozen(kw_only=True)
class Amendment:
    """A contract change waiting for its amendment review (合同变更评审).

    ``fields`` names what changed (terms, and line attributes such as
    ``delivery_date`` or ``unit_price``); ``departments`` must re-sign;
    the class and route are the ones the change leads to (the contract's own
    unless the class changed).  Applied only after every signature and the
    approval.
    """

    reason: str = field(validator=_non_empty)
    fields: tuple[str, ...] = field(converter=_texts, validator=_each_text)
    lines: tuple[ContractLine, ...] | None = None
    terms: tuple[tuple[str, str], ...] = field(default=(), converter=_terms, validator=_each_text)
    departments: tuple[str, ...] = field(default=(), converter=_texts, validator=_each_text)
    contract_class: str = field(validator=_non_empty)
    route: str = field(validator=_non_empty)
    route_departments: tuple[str, ...] = field(default=(), converter=_texts, validator=_each_text)
    route_approver: str = field(validator=_non_empty)
    confirmation_required: str = field(validator=_non_empty)
    rules_version: str = field(validator=_non_empty)
    reclassified: bool = False
    #: The route the change leads to is reviewed by its signatory (see ``Contract.self_review``).
    self_review: bool = field(default=False, validator=_instance_of(bool))
    #: The change makes the contract a sample order (样品), or no longer one.
    sample: bool = field(default=False, validator=_instance_of(bool))


@frozen(kw_only=True)
class Contract(Record):
    """A sales contract or order under review (合同评审), ``CON-2026-000001``.

    ``amount`` is always the sum of the lines (the engine sets both
    together).  ``contract_class`` and the route fields are pinned when the
    contract is submitted, with the rule-set version in ``rules_version``:
    editing the rules later does not change a review in flight.
    """

    RECORD_KIND: ClassVar[str] = "contract"

    customer: Customer = field(validator=_instance_of(Customer))
    # Vocabularies of the rule set (checked where a contract is drafted).
    document: str = field(default="contract", validator=_non_empty)
    channel: str = field(default="domestic", validator=_non_empty)
    currency: str = field(validator=_currency)
    lines: tuple[ContractLine, ...] = field(converter=_lines, validator=_check_lines)
    amount: Money = field(validator=_instance_of(Money))
    payment_terms: str = field(default="", validator=_text)
    delivery_method: str = field(default="", validator=_text)
    packaging: str = field(default="", validator=_text)
    quality_requirements: str = field(default="", validator=_text)
    acceptance_criteria: str = field(default="", validator=_text)
    flags: frozenset[str] = field(factory=frozenset, converter=_strings, validator=_each_text)
    requirement_refs: tuple[str, ...] = field(default=(), converter=_texts, validator=_each_text)
    contract_class: str | None = field(default=None, validator=_optional_text)
    route: str | None = field(default=None, validator=_optional_text)
    route_departments: tuple[str, ...] = field(default=(), converter=_texts, validator=_each_text)
    route_approver: str | None = field(default=None, validator=_optional_text)
    confirmation_required: str | None = field(default=None, validator=_optional_text)
    #: The route is reviewed by the contract's signatory himself (自行评审: verbal
    #: orders), approved with ``self_review`` instead of ``approve``.
    self_review: bool = field(default=False, validator=_instance_of(bool))
    #: A sample order (样品: 200 pieces or fewer, or flagged ``sample``), decided
    #: by the ``sample_order`` table at the first submission and pinned.
    sample: bool = field(default=False, validator=_instance_of(bool))
    confirmation: str | None = field(default=None, validator=_optional_text)
    amendment: Amendment | None = None
    #: The quotation (报价单) an order was made from.
    quotation_ref: str | None = field(default=None, validator=_optional_text)

    def __attrs_post_init__(self) -> None:
        total = lines_total(self.lines, self.currency)
        if self.amount != total:
            raise ValidationError(
                "amount", self.amount, f"the sum of the lines, {total}", where="Contract"
            )
        if total.amount <= 0:
            raise ValidationError(
                "amount",
                total,
                "a total above zero: the discounts may not reach the goods' amount",
                where="Contract",
            )

    @property
    def number(self) -> str:
        """The contract number users see; the same as ``ref``."""
        return self.ref

    @property
    def fully_shipped(self) -> bool:
        """Every line shipped in full."""
        return all(x.open_quantity == 0 for x in self.lines)


# --- complaints and returns ---------------------------------------------------------------

RETURN_KINDS: dict[str, tuple[str, str]] = {
    "complaint": ("客户投诉", "complaint without goods"),
    "return": ("客户退货", "return with goods"),
}
#: Reasons a host may extend (``Desk.return_reasons``); free text goes with them.
RETURN_REASONS: dict[str, tuple[str, str]] = {
    "quality": ("质量问题", "quality problem"),
    "wrong_item": ("错发", "wrong item"),
    "quantity": ("数量不符", "wrong quantity"),
    "damaged": ("运输损坏", "damaged in transit"),
    "late": ("交期延误", "late delivery"),
    "other": ("其他", "other"),
}
DISPOSITIONS: dict[str, tuple[str, str]] = {
    "rework": ("返工", "rework"),
    "replace": ("换货", "replace"),
    "refund": ("退款", "refund"),
    "scrap": ("报废", "scrap"),
}
INVALID_OUTCOMES: dict[str, tuple[str, str]] = {
    "customer_accepts": ("客户接受", "customer accepts"),
    "goods_sent_back": ("退回客户", "goods sent back to the customer"),
    "goodwill_credit": ("商誉补偿", "goodwill credit"),
}


@frozen(kw_only=True)
class GoodsReceipt:
    """The materials receipt (物料入库单) of returned goods."""

    number: str = field(validator=_non_empty)
    quantity: int = field(validator=_positive_int)
    received_by: str = field(validator=_non_empty)
    received_on: date = field(validator=_date)


@frozen(kw_only=True)
class QualityReport:
    """The quality anomaly report (品质异常处理报告)."""

    findings: str = field(validator=_non_empty)
    defect_category: str = field(validator=_non_empty)
    cause: str = field(validator=_non_empty)
    inspector: str = field(validator=_non_empty)
    safety_related: bool = False


@frozen(kw_only=True)
class Capa:
    """A corrective and preventive action (纠正预防措施)."""

    owner: str = field(validator=_non_empty)
    due_on: date = field(validator=_date)
    actions: str = field(validator=_non_empty)
    verification: str | None = field(default=None, validator=_optional_text)
    verified_by: str | None = field(default=None, validator=_optional_text)


@frozen(kw_only=True)
class Return(Record):
    """A customer complaint or return (客户投诉/退货), ``RMA-2026-000001``."""

    RECORD_KIND: ClassVar[str] = "return"

    customer: Customer = field(validator=_instance_of(Customer))
    kind: str = field(default="return", validator=_one_of(RETURN_KINDS))
    contract_ref: str | None = field(default=None, validator=_optional_text)
    product: str = field(validator=_non_empty)
    line_no: int | None = field(default=None, validator=attrs.validators.optional(_positive_int))
    quantity: int = field(default=1, validator=_positive_int)
    reason_code: str = field(validator=_non_empty)
    reason_text: str = field(validator=_non_empty)
    shipped_on: date | None = field(default=None, validator=_date)
    receipt: GoodsReceipt | None = None
    report: QualityReport | None = None
    judgement: str | None = field(default=None, validator=_optional_text)
    judged_on: date | None = field(default=None, validator=_date)
    window_override: str | None = field(default=None, validator=_optional_text)
    disposition: str | None = field(default=None, validator=_optional_text)
    outcome: str | None = field(default=None, validator=_optional_text)
    goodwill: Money | None = field(default=None, validator=_kept_amount)
    capa_required: bool = False
    capa: Capa | None = None


#: The scores a satisfaction survey answer may give (1 = very dissatisfied, 5 = very satisfied).
SURVEY_SCORES = range(1, 6)
#: At most this many answers in one survey (one per question of the vocabulary).
MAX_SURVEY_ANSWERS = 50


@frozen(kw_only=True)
class SurveyAnswer:
    """One question of a satisfaction survey and its score (1-5)."""

    question: str = field(validator=_non_empty)
    score: int = field()

    @score.validator
    def _score(self, attribute: attrs.Attribute[Any], value: object) -> None:
        # type() is int: a subclass (or bool) could compare equal to a score and store another.
        if type(value) is not int or value not in SURVEY_SCORES:
            raise ValidationError(
                f"answers[{self.question!r}]",
                value,
                f"a whole number from {SURVEY_SCORES.start} to {SURVEY_SCORES.stop - 1}",
                where="Survey",
            )


def _answers(value: Any) -> tuple[SurveyAnswer, ...]:
    """A mapping of question id to score (or SurveyAnswers), in question order."""
    if isinstance(value, Mapping):
        items = []
        for question, score in value.items():
            if not isinstance(question, str):
                raise ValidationError(
                    "answers", question, "question ids that are strings", where="Survey"
                )
            items.append(SurveyAnswer(question=question, score=score))
    elif isinstance(value, list | tuple) and all(isinstance(a, SurveyAnswer) for a in value):
        items = list(value)
    else:
        raise ValidationError(
            "answers", value, "a mapping of question id to score (1-5)", where="Survey"
        )
    if not items or len(items) > MAX_SURVEY_ANSWERS:
        raise ValidationError(
            "answers", value, f"1 to {MAX_SURVEY_ANSWERS} answers", where="Survey"
        )
    questions = [a.question for a in items]
    if len(set(questions)) != len(questions):
        raise ValidationError("answers", value, "each question once", where="Survey")
    return tuple(sorted(items, key=lambda a: a.question))


@frozen(kw_only=True)
class Survey(Record):
    """A satisfaction survey answer (满意度调查), ``SVY-2026-000001``.

    Given by ``customer``, about the company in general or about one of its
    closed records (``about``: the record's ref).  ``answers`` score the rule
    set's ``survey_questions`` from 1 to 5; ``comment`` is free text.
    """

    RECORD_KIND: ClassVar[str] = "survey"

    customer: Customer = field(validator=_instance_of(Customer))
    about: str | None = field(default=None, validator=_optional_text)
    answers: tuple[SurveyAnswer, ...] = field(converter=_answers)
    comment: str = field(default="", validator=_text)
