"""Creation takes only declared inputs, in the rule set's closed vocabularies (issue 13)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from reqmgmt import (
    Actor,
    ConfigError,
    ContractLine,
    Customer,
    Desk,
    ImportFailed,
    Lifecycle,
    Money,
    Signoff,
    ValidationError,
)
from reqmgmt.diagram import markdown
from reqmgmt.lifecycle import BUILTIN_LIFECYCLES, REQUIREMENT
from reqmgmt.lifecycle.base import CreationInput
from reqmgmt.model import CONTRACT_DOCUMENTS, REQUIREMENT_CHANNELS, REQUIREMENT_KINDS
from reqmgmt.rules import default_rules, load_rules

from ..conftest import CLERK, CUSTOMER, ENG, MAT, PRO

WHEN = datetime(2026, 3, 2, 9, tzinfo=UTC)
SALES_MANAGER = Actor("sm", "营业经理", roles={"sales_manager"})


def requirement_fields(**extra: Any) -> dict[str, Any]:
    return {"customer": CUSTOMER, "description": "支架", "received_at": WHEN, **extra}


def contract_fields(**extra: Any) -> dict[str, Any]:
    line = ContractLine(line_no=1, product="支架", quantity=1, unit_price=Money("500000", "CNY"))
    return {"customer": CUSTOMER, "lines": (line,), "currency": "CNY", **extra}


def forged_signoffs() -> tuple[Signoff, ...]:
    return tuple(
        Signoff(
            department=d,
            actor_id=CLERK.id,
            approve=True,
            opinion="ok",
            meaning="review",
            round=1,
            at=WHEN,
        )
        for d in ("engineering", "materials", "production")
    )


def assert_nothing_written(desk: Desk) -> None:
    assert desk.query() == []
    assert list(desk.outbox()) == []
    # No sequence number was used up: the next record gets the first one.
    ref = desk.requirements.receive(customer=CUSTOMER, description="next", actor=CLERK).ref
    assert ref.endswith("-000001")


# --- 1. creation takes only declared inputs --------------------------------------------------

FORGED_REQUIREMENT = {
    "signoffs": forged_signoffs(),
    "review_round": 1,
    "submitted_by": "someone.else",
    "reason": "x",
    "delivery_plan": "plan A",
    "rules_version": "0" * 64,
}
FORGED_CONTRACT = {
    "contract_class": "general",
    "route": "countersign",
    "route_departments": (),
    "route_approver": "none",
    "confirmation_required": "signed_copy",
    "amendment": None,
    "amount": Money("1", "CNY"),
    "quotation_ref": "CON-2026-000009",
    "signoffs": (),
    "review_round": 3,
}


@pytest.mark.parametrize(("field", "value"), FORGED_REQUIREMENT.items())
def test_create_refuses_what_the_engine_sets_on_a_requirement(
    desk: Desk, field: str, value: object
) -> None:
    """Sign-offs, rounds, submitter...: refused by name, the inputs listed; nothing written."""
    with pytest.raises(ValidationError) as info:
        desk.create("requirement", actor=CLERK, **requirement_fields(**{field: value}))
    assert info.value.field == field
    assert "the engine sets" in info.value.expected
    assert "customer (required), description (required)" in info.value.expected
    assert_nothing_written(desk)


@pytest.mark.parametrize(("field", "value"), FORGED_CONTRACT.items())
def test_create_refuses_what_the_engine_sets_on_a_contract(
    desk: Desk, field: str, value: object
) -> None:
    """A contract's class, route, approver, amendment and amount are the engine's."""
    with pytest.raises(ValidationError) as info:
        desk.create("contract", actor=CLERK, **contract_fields(**{field: value}))
    assert info.value.field == field
    assert "lines (required)" in info.value.expected
    assert_nothing_written(desk)


def test_forged_signoffs_cannot_get_a_requirement_accepted(desk: Desk) -> None:
    """The attack of issue 13: three round-1 sign-offs given at creation, then accept."""
    with pytest.raises(ValidationError, match=r"the engine sets (review_round|signoffs)"):
        desk.create(
            "requirement",
            actor=CLERK,
            **requirement_fields(signoffs=forged_signoffs(), review_round=1),
        )


def test_a_500000_contract_cannot_be_preset_as_general(desk: Desk) -> None:
    """Drafted without a preset class, the engine classifies it special on submission."""
    with pytest.raises(ValidationError, match="contract_class"):
        desk.create(
            "contract",
            actor=CLERK,
            **contract_fields(contract_class="general", route_departments=()),
        )
    c = desk.create("contract", actor=CLERK, **contract_fields())
    submitted = desk.fire(c.ref, "submit", actor=CLERK)
    assert submitted.contract_class == "special"  # type: ignore[attr-defined]


def test_an_unknown_field_and_a_missing_input_are_named(desk: Desk) -> None:
    """Neither raises a raw TypeError: the field is named, with what is accepted."""
    with pytest.raises(ValidationError, match="not a field of a requirement") as info:
        desk.create("requirement", actor=CLERK, **requirement_fields(colour="red"))
    assert info.value.field == "colour"
    with pytest.raises(ValidationError, match="a requirement needs received_at") as info:
        desk.create("requirement", actor=CLERK, customer=CUSTOMER, description="x")
    assert info.value.field == "received_at"
    assert_nothing_written(desk)


def test_create_many_refuses_a_forged_row_and_writes_nothing_of_its_batch(desk: Desk) -> None:
    """An import row with sign-offs fails the import at that row; the batch is not written."""
    rows = [requirement_fields(), requirement_fields(signoffs=forged_signoffs())]
    with pytest.raises(ImportFailed) as info:
        desk.create_many("requirement", rows, actor=CLERK)
    assert info.value.row == 1
    assert isinstance(info.value.cause, ValidationError)
    assert info.value.cause.field == "signoffs"
    assert info.value.committed == ()
    assert_nothing_written(desk)


def test_a_declared_input_must_be_a_field_the_caller_may_set() -> None:
    """A lifecycle cannot declare an engine field (or a non-field) as a creation input."""
    lc: Lifecycle = REQUIREMENT
    bad = type(lc)(
        **{
            **{a: getattr(lc, a) for a in ("kind", "record_type", "initial", "states")},
            "transitions": lc.transitions,
            "signoffs": lc.signoffs,
            "inputs": (
                *lc.inputs,
                CreationInput("signoffs"),
                CreationInput("colour"),
                CreationInput("customer"),
            ),
        }
    )
    with pytest.raises(ConfigError) as info:
        bad.build()
    text = str(info.value)
    assert "creation input 'signoffs' is set by the engine" in text
    assert "creation input 'colour' is not a field of Requirement" in text
    assert "creation input 'customer' is declared more than once" in text


@pytest.mark.parametrize("kind", sorted(BUILTIN_LIFECYCLES))
def test_the_lifecycle_page_lists_the_creation_inputs(kind: str) -> None:
    """docs/lifecycles/<kind>.md has a creation-inputs table from the declaration."""
    lc = BUILTIN_LIFECYCLES[kind]
    page = markdown(lc)
    assert "## Creation inputs" in page
    for i in lc.inputs:
        assert f"| `{i.name}` | {'yes' if i.required else ''} |" in page


# --- 3. closed vocabularies ------------------------------------------------------------------


def test_a_misspelt_contract_flag_is_refused_with_a_suggestion(desk: Desk) -> None:
    """flags={"frist_order"} would review a first order as general: refused instead."""
    with pytest.raises(ValidationError, match="did you mean 'first_order'") as info:
        desk.contracts.draft(
            customer=CUSTOMER,
            lines=contract_fields()["lines"],
            currency="CNY",
            actor=CLERK,
            flags={"frist_order"},
        )
    assert info.value.field == "flags"
    assert "first_order, new_product, oem" in info.value.expected
    assert desk.query() == []


@pytest.mark.parametrize(
    ("customer", "field", "meant"),
    [
        (Customer("C1", "C", category="importnat"), "customer.category", "important"),
        (Customer("C1", "C", flags={"foriegn"}), "customer.flags", "foreign"),
    ],
)
def test_a_misspelt_customer_word_is_refused(
    desk: Desk, customer: Customer, field: str, meant: str
) -> None:
    """A category or flag typo is not kept: refused, naming the word meant."""
    with pytest.raises(ValidationError, match=f"did you mean '{meant}'") as info:
        desk.requirements.receive(customer=customer, description="x", actor=CLERK)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field", "meant"),
    [
        ({"channel": "emial"}, "channel", "email"),
        ({"kind": "inquery"}, "kind", "inquiry"),
    ],
)
def test_requirement_channel_and_kind_come_from_the_vocabulary(
    desk: Desk, kwargs: dict[str, str], field: str, meant: str
) -> None:
    with pytest.raises(ValidationError, match=f"did you mean '{meant}'") as info:
        desk.requirements.receive(customer=CUSTOMER, description="x", actor=CLERK, **kwargs)
    assert info.value.field == field


def test_contract_document_and_channel_come_from_the_vocabulary(desk: Desk) -> None:
    for kwargs, meant in (
        ({"document": "quotaton"}, "quotation"),
        ({"channel": "domestc"}, "domestic"),
    ):
        with pytest.raises(ValidationError, match=f"did you mean '{meant}'"):
            desk.contracts.draft(
                customer=CUSTOMER,
                lines=contract_fields()["lines"],
                currency="CNY",
                actor=CLERK,
                **kwargs,
            )


def test_a_misspelt_return_reason_is_refused_with_a_suggestion(desk: Desk) -> None:
    with pytest.raises(ValidationError, match="did you mean 'damaged'"):
        desk.returns.report(
            customer=CUSTOMER,
            product="p",
            reason_code="damagd",
            reason_text="t",
            actor=CLERK,
        )


def test_a_misspelt_department_is_refused_on_sign(desk: Desk) -> None:
    """sign(department="enginering") names the department meant, and writes nothing."""
    ref = desk.requirements.receive(customer=CUSTOMER, description="x", actor=CLERK).ref
    desk.fire(ref, "start_evaluation", actor=CLERK)
    with pytest.raises(ValidationError, match="did you mean 'engineering'") as info:
        desk.sign(ref, department="enginering", actor=ENG)
    assert info.value.field == "department"
    assert desk.get(ref).version == 2
    for department, actor in (("engineering", ENG), ("materials", MAT), ("production", PRO)):
        desk.sign(ref, department=department, actor=actor)


def test_create_many_refuses_a_word_outside_the_vocabulary(desk: Desk) -> None:
    with pytest.raises(ImportFailed) as info:
        desk.create_many("requirement", [requirement_fields(channel="pigeon")], actor=CLERK)
    assert isinstance(info.value.cause, ValidationError)
    assert info.value.cause.field == "channel"


HOST_RULES = """
[vocabularies.customer_flags]
on_hold = { zh = "暂停供货", en = "on credit hold" }

[vocabularies.contract_flags]
rush = { zh = "加急", en = "rush order" }
oem = false

[vocabularies.return_reasons]
missing_parts = { zh = "缺件", en = "missing parts" }

[vocabularies.departments]
legal = { zh = "法务部", en = "legal" }
"""


def test_a_host_extends_and_narrows_a_vocabulary_in_its_toml(tmp_path: Path) -> None:
    """New words are accepted, a removed one is refused, the defaults stay."""
    path = tmp_path / "host.toml"
    path.write_text(HOST_RULES, encoding="utf-8")
    with Desk.open(rules=path) as desk:
        held = Customer("C9", "Held Ltd", flags={"on_hold", "new"})
        assert desk.requirements.receive(customer=held, description="x", actor=CLERK)
        lines = contract_fields()["lines"]
        c = desk.contracts.draft(
            customer=CUSTOMER, lines=lines, currency="CNY", actor=CLERK, flags={"rush"}
        )
        assert c.flags == {"rush"}
        with pytest.raises(ValidationError, match="first_order, new_product, rush"):
            desk.contracts.draft(
                customer=CUSTOMER, lines=lines, currency="CNY", actor=CLERK, flags={"oem"}
            )
        assert "missing_parts" in desk.returns.reasons
        r = desk.returns.report(
            customer=CUSTOMER,
            product="p",
            reason_code="missing_parts",
            reason_text="t",
            actor=CLERK,
        )
        assert r.reason_code == "missing_parts"
        assert desk.rules.vocabulary("departments").labels["legal"] == ("法务部", "legal")
        # Vocabularies decide which words enter, not how records are decided.
        assert desk.rules.version == default_rules().version


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"vocabularies": ["x"]}, "'vocabularies' must be a table"),
        ({"vocabularies": {"departments": ["legal"]}}, "vocabulary 'departments': must be a table"),
        (
            {"vocabularies": {"departments": {"legal": 3}}},
            "vocabulary 'departments', value 'legal': expected",
        ),
        (
            {"vocabularies": {"departments": {"legal": {"de": "Recht"}}}},
            "unknown key 'de'",
        ),
        (
            {"vocabularies": {"departments": {"nobody": False}}},
            "value 'nobody': not in the vocabulary, nothing to remove",
        ),
        ({"vocabularies": {"departments": {" legal": "x"}}}, "a value is a non-empty word"),
    ],
)
def test_a_broken_vocabulary_is_a_config_error_naming_the_place(
    source: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_rules(source, with_defaults=True)
    assert "<dict #2>" in str(info.value)


def test_an_unknown_vocabulary_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match="no vocabulary 'colours'; vocabularies: approvers, contract_"
    ):
        default_rules().vocabulary("colours")


def test_the_default_vocabularies_hold_the_built_in_words() -> None:
    """The packaged rule set declares every word the records used to hard-code."""
    words = default_rules().vocabularies
    assert dict(words["requirement_kinds"].labels) == REQUIREMENT_KINDS
    assert dict(words["requirement_channels"].labels) == REQUIREMENT_CHANNELS
    assert dict(words["contract_documents"].labels) == CONTRACT_DOCUMENTS
    assert set(words["customer_categories"]) == {"strategic", "important", "potential", "general"}
    assert {"engineering", "materials", "production", "quality", "sales"} <= set(
        words["departments"]
    )


def test_a_vocabulary_default_removed_by_the_host_is_refused(tmp_path: Path) -> None:
    """A record default outside the vocabulary is refused like a given value."""
    rules = {"vocabularies": {"requirement_channels": {"fax": False}}}
    with Desk.open(rules=rules) as desk:
        with pytest.raises(ValidationError, match="requirement_channels vocabulary"):
            desk.create("requirement", actor=CLERK, **requirement_fields())
        assert desk.create("requirement", actor=CLERK, **requirement_fields(channel="email"))


def test_the_return_of_a_contract_line_still_counts_its_shipment(desk: Desk) -> None:
    """report() keeps taking shipped_on: a declared input of the return lifecycle."""
    r = desk.returns.report(
        customer=CUSTOMER,
        product="p",
        reason_code="quality",
        reason_text="t",
        actor=CLERK,
        shipped_on=date(2026, 2, 1),
    )
    assert r.shipped_on == date(2026, 2, 1)


def test_a_route_naming_an_unknown_department_does_not_load() -> None:
    """Nobody could sign for it: the row is named, with the departments there are."""
    row = {
        "id": "legal-review",
        "before": "quotation",
        "when": "amount > 9000000",
        "then": {
            "route": "legal",
            "departments": ["legal"],
            "approver": "none",
            "confirmation": "signed_copy",
        },
    }
    source = {"tables": {"review_route": {"rows": [row]}}}
    with pytest.raises(ConfigError, match=r"row 'legal-review', field 'then\.departments'"):
        load_rules(source, with_defaults=True)
    extended = {**source, "vocabularies": {"departments": {"legal": {"zh": "法务", "en": "legal"}}}}
    assert load_rules(extended, with_defaults=True).table("review_route")
