"""People: one person is one id, actors are Actors, approvals are independent."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from reqmgmt import (
    Actor,
    ConfigError,
    ContractLine,
    Customer,
    Desk,
    HookError,
    Money,
    NotAuthorized,
    Record,
    ValidationError,
    hookimpl,
)
from reqmgmt.lifecycle import REQUIREMENT, RETURNS
from reqmgmt.people import actor_key, normalize_actor_id
from reqmgmt.testing import ApprovedSubcontractors, FakeClock

from ..conftest import CLERK, CUSTOMER, ENG, MAT, PRO, VP, receive, to_evaluating

FINDINGS = {"findings": "镀层附着力不足", "defect_category": "plating", "cause": "前处理不良"}


# --- ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given", ["clerk", "Clerk", " clerk ", "CLERK\t", "ｃｌｅｒｋ", "Ｃｌｅｒｋ"]
)
def test_spellings_of_one_id_are_one_person(given: str) -> None:
    """NFKC, stripped, case-folded: every spelling is stored as the same id."""
    assert Actor(given).id == "clerk"


@pytest.mark.parametrize(
    "given",
    [
        "clerk\u200b",  # zero-width space
        "cl\u200derk",  # zero-width joiner
        "cl\u2028erk",  # line separator
        "\ufeffclerk",  # byte-order mark
        "cl\x00erk",
        "cl\x1berk",
        "cler\u202ek",  # right-to-left override
        "",
        "   ",
        "x" * 65,
        "x" * 10_000,
        None,
        7,
        b"clerk",
    ],
)
def test_ids_with_invisible_characters_or_no_text_are_refused(given: object) -> None:
    """Control, format and separator characters make a look-alike: refused, naming the field."""
    with pytest.raises(ValidationError, match=r"Actor\.id"):
        Actor(given)  # type: ignore[arg-type]


def test_a_string_subclass_is_read_as_its_text() -> None:
    """A str subclass with its own __str__/__eq__ is taken for its characters."""

    class Sly(str):
        def __str__(self) -> str:
            return "vp"

        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = str.__hash__

    actor = Actor(Sly("Clerk"))
    assert type(actor.id) is str
    assert actor.id == "clerk"
    assert normalize_actor_id(Sly("x")) == "x"


def test_stored_ids_are_compared_leniently() -> None:
    """Ids written before normalisation compare in canonical form, invisible characters dropped."""
    assert actor_key("Clerk\u200b ") == "clerk"
    assert actor_key("ＣＬＥＲＫ") == "clerk"


# --- the same person under another spelling ----------------------------------------------------


@pytest.mark.parametrize("spelling", ["clerk ", "Clerk", "ＣＬＥＲＫ", "\tclerk"])
def test_a_near_duplicate_of_the_submitter_cannot_sign(spelling: str, desk: Desk) -> None:
    """The clerk who submitted the review cannot sign it under another spelling of the id."""
    ref = to_evaluating(desk)
    twin = Actor(spelling, departments={"engineering"})
    assert not desk.can(ref, "sign", actor=twin, department="engineering")
    with pytest.raises(NotAuthorized, match="clerk submitted this review"):
        desk.sign(ref, department="engineering", actor=twin)
    assert desk.get(ref).signoffs == ()


def test_a_zero_width_twin_cannot_even_be_an_actor(desk: Desk) -> None:
    """'clerk\\u200b' looks like clerk on every screen: it is no id."""
    to_evaluating(desk)
    with pytest.raises(ValidationError, match="ZERO WIDTH SPACE"):
        Actor("clerk\u200b", departments={"engineering"})


def test_the_audit_trail_shows_one_person_as_one_id(desk: Desk) -> None:
    """Commands by 'Clerk' and ' clerk' are both clerk's in the trail and on the record."""
    ref = receive(desk, actor=Actor("Clerk", roles={"sales"}))
    desk.fire(ref, "start_evaluation", actor=Actor(" CLERK", roles={"sales"}))
    assert {e.actor_id for e in desk.history(ref)} == {"clerk"}
    record = desk.get(ref)
    assert (record.created_by, record.submitted_by) == ("clerk", "clerk")


def test_one_person_signs_once_per_round_whatever_the_spelling(desk: Desk) -> None:
    """'Eng' signed for engineering; 'ENG ' may not sign for materials in the same round."""
    ref = to_evaluating(desk)
    desk.sign(ref, department="engineering", actor=Actor("Eng", departments={"engineering"}))
    again = Actor("ENG ", departments={"materials"})
    with pytest.raises(NotAuthorized, match="already signed for engineering"):
        desk.sign(ref, department="materials", actor=again)


# --- actor must be an Actor -------------------------------------------------------------------


def _calls(desk: Desk, ref: str) -> dict[str, Callable[[Any], object]]:
    line = ContractLine(line_no=1, product="p", quantity=1, unit_price=Money("1", "CNY"))
    return {
        "fire": lambda a: desk.fire(ref, "clarify", actor=a, note="?"),
        "sign": lambda a: desk.sign(ref, department="engineering", actor=a),
        "can": lambda a: desk.can(ref, "clarify", actor=a),
        "allowed_events": lambda a: desk.allowed_events(ref, actor=a),
        "create": lambda a: desk.create(
            "requirement", actor=a, customer=CUSTOMER, description="x", received_at=desk.now()
        ),
        "create_many": lambda a: desk.create_many(
            "requirement", [{"customer": CUSTOMER, "description": "x"}], actor=a
        ),
        "receive": lambda a: desk.requirements.receive(customer=CUSTOMER, description="x", actor=a),
        "draft": lambda a: desk.contracts.draft(
            customer=CUSTOMER, lines=[line], currency="CNY", actor=a
        ),
        "report": lambda a: desk.returns.report(
            customer=CUSTOMER, product="p", reason_code="quality", reason_text="x", actor=a
        ),
    }


@pytest.mark.parametrize(
    "method",
    [
        "fire",
        "sign",
        "can",
        "allowed_events",
        "create",
        "create_many",
        "receive",
        "draft",
        "report",
    ],
)
@pytest.mark.parametrize("actor", [None, "clerk", {"id": "clerk"}])
def test_actor_must_be_an_actor(method: str, actor: object, desk: Desk) -> None:
    """actor=None (or a str, a dict): ValidationError naming the argument; nothing written."""
    ref = receive(desk)
    before = (desk.query(), desk.history(ref), desk.outbox())
    with pytest.raises(ValidationError, match=r"^actor: got .*expected an Actor"):
        _calls(desk, ref)[method](actor)
    assert (desk.query(), desk.history(ref), desk.outbox()) == before


# --- independence declared per transition ------------------------------------------------------

BOTH = Actor("both", roles={"sales", "vp"})


def test_one_actor_cannot_request_and_approve_the_same_outsourcing(desk: Desk) -> None:
    """Holding sales and vp, the requester of an outsourcing may not approve it; another VP may."""
    ref = to_evaluating(desk)
    desk.fire(ref, "request_outsourcing", actor=BOTH, note="material short", subcontractor="hongda")
    assert desk.get(ref).requested_by == "both"
    verdict = desk.can(ref, "approve_outsourcing", actor=BOTH, outsourcing="cut 2,000")
    assert not verdict
    assert any("requested this approval" in r for r in verdict.reasons)
    with pytest.raises(NotAuthorized, match="both requested this approval and may not approve"):
        desk.fire(ref, "approve_outsourcing", actor=BOTH, outsourcing="cut 2,000")
    assert "approve_outsourcing" not in desk.allowed_events(ref, actor=BOTH)
    done = desk.fire(ref, "approve_outsourcing", actor=VP, outsourcing="cut 2,000")
    assert done.state == "confirming_cutting"


def test_the_submitter_cannot_approve_the_outsourcing_of_their_review(desk: Desk) -> None:
    """A sales-and-vp actor who submitted the evaluation may not approve its outsourcing."""
    ref = receive(desk)
    desk.fire(ref, "start_evaluation", actor=BOTH)
    desk.fire(
        ref, "request_outsourcing", actor=CLERK, note="material short", subcontractor="hongda"
    )
    with pytest.raises(NotAuthorized, match="both submitted this review"):
        desk.fire(ref, "approve_outsourcing", actor=BOTH, outsourcing="cut")


def test_a_new_round_forgets_the_requester(desk: Desk) -> None:
    """requested_by belongs to the round: the next review round starts without one."""
    ref = to_evaluating(desk)
    desk.fire(
        ref, "request_outsourcing", actor=CLERK, note="material short", subcontractor="hongda"
    )
    desk.fire(ref, "refuse_outsourcing", actor=VP, note="too expensive")
    record = desk.fire(ref, "agreed", actor=CLERK, note="later date")
    assert (record.review_round, record.requested_by) == (2, None)


def test_the_inspector_who_judged_a_return_valid_cannot_dispose_of_it(desk: Desk) -> None:
    """A quality + quality_manager actor judges valid; the disposition needs someone else."""
    both = Actor("qboth", roles={"quality", "quality_manager"})
    sales = Actor("s", roles={"sales"})
    r = desk.returns.report(
        customer=CUSTOMER,
        product="bracket",
        reason_code="quality",
        reason_text="blisters",
        kind="complaint",
        actor=sales,
    )
    desk.fire(r.ref, "to_quality", actor=sales)
    desk.fire(r.ref, "judge_valid", actor=both, **FINDINGS)
    with pytest.raises(NotAuthorized, match="qboth requested this approval"):
        desk.returns.dispose(r.ref, "rework", actor=both)
    done = desk.returns.dispose(r.ref, "rework", actor=Actor("qm", roles={"quality_manager"}))
    assert done.state == "dispositioned"


# --- approvers' ids ---------------------------------------------------------------------------


class Approvers:
    def __init__(self, answer: object) -> None:
        self.answer = answer

    @hookimpl
    def reqmgmt_approvers(
        self, records: Sequence[Record], department: str
    ) -> Sequence[Collection[str]] | None:
        return self.answer  # type: ignore[return-value]


@pytest.mark.parametrize("signer", ["l", "na", "i.n", "li", "."])
def test_one_string_per_record_is_refused_not_searched(signer: str) -> None:
    """["li.na"] was a substring test: 'l', 'na', 'i.n' signed.  Now a HookError, no signature."""
    with Desk.open(clock=FakeClock(), plugins=[Approvers(["li.na"])]) as desk:
        ref = to_evaluating(desk)
        actor = Actor(signer, departments={"engineering"})
        with pytest.raises(HookError, match=r"reqmgmt_approvers: returned \['li\.na'\]"):
            desk.sign(ref, department="engineering", actor=actor)
        verdict = desk.can(ref, "sign", actor=actor, department="engineering")
        assert not verdict
        assert "reqmgmt_approvers" in verdict.reasons[0]
        assert desk.get(ref).signoffs == ()


def test_approver_ids_are_normalised_like_actor_ids() -> None:
    """The host's ' Li.Na ' is the actor li.na; 'li.na\\u200b' in an answer is refused."""
    with Desk.open(clock=FakeClock(), plugins=[Approvers([{" Li.Na "}])]) as desk:
        ref = to_evaluating(desk)
        signed = desk.sign(ref, department="engineering", actor=Actor("li.na"))
        assert signed.signoffs[-1].actor_id == "li.na"
    with Desk.open(clock=FakeClock(), plugins=[Approvers([{"li.na\u200b"}])]) as desk:
        ref = to_evaluating(desk)
        with pytest.raises(HookError, match="no actor id"):
            desk.sign(ref, department="engineering", actor=Actor("li.na"))


# --- the lifecycle's self-check ----------------------------------------------------------------


def _with(lc: Any, event: str, **changes: Any) -> Any:
    return attrs.evolve(
        lc,
        transitions=tuple(
            attrs.evolve(t, **changes) if t.event == event else t for t in lc.transitions
        ),
    )


def test_an_approval_without_an_independence_declaration_is_refused() -> None:
    """meaning='approval' needs independent_of or an explicit, reasoned waiver."""
    lax = _with(REQUIREMENT, "approve_outsourcing", independent_of=())
    with pytest.raises(ConfigError, match="means approval but declares no independence"):
        lax.build()
    waived = _with(REQUIREMENT, "approve_outsourcing", independent_of=(), independence_waived="x")
    waived.build()
    assert "approve_outsourcing" in waived.build().events


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"independent_of": ("boss",)}, "unknown party 'boss'; known: capa_owner, drafter"),
        ({"independence_waived": "because"}, "declares independence and waives it"),
        ({"independent_of": (), "independence_waived": "  "}, "must say why"),
    ],
)
def test_independence_declarations_are_checked(changes: dict[str, Any], message: str) -> None:
    """Unknown parties, a declaration and a waiver together, an empty waiver: refused."""
    with pytest.raises(ConfigError, match=message):
        _with(RETURNS, "dispose", **changes).build()


def test_the_requester_needs_a_requesting_event() -> None:
    """independent_of=('requester',) without any requests_approval transition is a mistake."""
    lc = _with(REQUIREMENT, "request_outsourcing", requests_approval=False)
    with pytest.raises(ConfigError, match="no transition requests approval"):
        lc.build()


# --- on SQLite ----------------------------------------------------------------------------------


def test_people_on_sqlite(tmp_path: Path) -> None:
    """The same on SQLite: near-duplicates refused, one id in the trail, requester kept."""
    clock = FakeClock()
    with Desk.open(
        f"sqlite:///{tmp_path / 'p.db'}", clock=clock, plugins=[ApprovedSubcontractors()]
    ) as desk:
        ref = desk.requirements.receive(
            customer=Customer("C-1", "C"), description="x", actor=Actor("Clerk", roles={"sales"})
        ).ref
        desk.fire(ref, "start_evaluation", actor=CLERK)
        with pytest.raises(NotAuthorized, match="submitted this review"):
            desk.sign(
                ref, department="engineering", actor=Actor("CLERK ", departments="engineering")
            )
        desk.fire(ref, "request_outsourcing", actor=BOTH, note="short", subcontractor="hongda")
    with Desk.open(
        f"sqlite:///{tmp_path / 'p.db'}", clock=clock, plugins=[ApprovedSubcontractors()]
    ) as desk:
        assert desk.get(ref).requested_by == "both"
        with pytest.raises(NotAuthorized, match="requested this approval"):
            desk.fire(ref, "approve_outsourcing", actor=BOTH, outsourcing="cut")
        desk.fire(ref, "approve_outsourcing", actor=VP, outsourcing="cut")
        desk.fire(ref, "cutting_confirmed", actor=CLERK, note="customer faxed OK")
        for actor in (ENG, MAT, PRO):
            department = next(iter(actor.departments))
            desk.sign(ref, department=department, actor=actor)
        assert {e.actor_id for e in desk.history(ref)} == {
            "clerk",
            "both",
            "vp",
            "eng",
            "mat",
            "pro",
        }
        assert desk.verify_history(ref)
        with pytest.raises(ValidationError, match="actor"):
            desk.fire(ref, "accept", actor=None, delivery_plan="wk 12")  # type: ignore[arg-type]
