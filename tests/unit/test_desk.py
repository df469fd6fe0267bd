"""The command path: one transaction, vetoes before the write, effects after commit."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from reqmgmt import (
    Actor,
    AuditEvent,
    ConfigError,
    ConflictError,
    Customer,
    Desk,
    HookError,
    ImportFailed,
    InvalidTransition,
    NotAuthorized,
    NotFound,
    Record,
    TransitionBlocked,
    ValidationError,
    hookimpl,
)
from reqmgmt.lifecycle import REQUIREMENT
from reqmgmt.lifecycle.base import Context, Transition
from reqmgmt.storage.memory import MemoryStore, _pack_trail, _trail
from reqmgmt.testing import FailingNotifier, FakeClock, RecordingNotifier, ScriptedApprovers

from ..conftest import CLERK, CLERK2, ENG, MAT, OUTSIDER, PRO, receive, sign_all, to_evaluating


def snapshot(desk: Desk, ref: str) -> tuple[Record, tuple[AuditEvent, ...], list[str]]:
    """Everything a command could write about ``ref``."""
    keys = [e.notification.key for e in desk.outbox(now=FOREVER)]
    return desk.get(ref), desk.history(ref), keys


FOREVER = datetime.max.replace(tzinfo=UTC)


# --- steps 1-2: finding the transition ---------------------------------------------------


def test_illegal_event_names_state_and_allowed_events(desk: Desk) -> None:
    """An event not allowed in the state lists what is allowed there; nothing is written."""
    ref = receive(desk)
    before = snapshot(desk, ref)
    with pytest.raises(InvalidTransition) as info:
        desk.fire(ref, "close", actor=CLERK)
    err = info.value
    assert (err.ref, err.state, err.event) == (ref, "received", "close")
    assert err.allowed == ("cancel", "clarify", "identify", "reject", "remark", "start_evaluation")
    assert "'close' is not allowed in state 'received'" in str(err)
    assert snapshot(desk, ref) == before


def test_unknown_event_is_an_invalid_transition(desk: Desk) -> None:
    """A misspelt event is refused the same way."""
    ref = receive(desk)
    with pytest.raises(InvalidTransition, match="'clarfy'"):
        desk.fire(ref, "clarfy", actor=CLERK, note="x")


def test_unknown_ref_is_not_found(desk: Desk) -> None:
    """Commands on a missing record raise NotFound."""
    with pytest.raises(NotFound, match="REQ-2026-999999"):
        desk.fire("REQ-2026-999999", "clarify", actor=CLERK)
    with pytest.raises(NotFound):
        desk.can("REQ-2026-999999", "clarify", actor=CLERK)


# --- step 3: authorisation ------------------------------------------------------------


def test_actor_without_the_role_is_not_authorized(desk: Desk) -> None:
    """The error names the roles needed and the roles held."""
    ref = receive(desk)
    with pytest.raises(NotAuthorized) as info:
        desk.fire(ref, "start_evaluation", actor=ENG)
    assert "needs one of the roles sales; eng has none" in str(info.value)
    assert info.value.actor == "eng"


def test_creating_needs_the_create_role(desk: Desk) -> None:
    """Only sales may take in a requirement."""
    with pytest.raises(NotAuthorized, match="creating a requirement needs one of the roles sales"):
        receive(desk, actor=ENG)


def test_authorize_veto_names_the_refusing_plugin(clock: FakeClock) -> None:
    """A reqmgmt_authorize returning False refuses, naming the plugin."""

    class NoNight:
        @hookimpl
        def reqmgmt_authorize(self, actor: Actor, record: Record, event: str) -> bool | None:
            return False if event == "clarify" else None

    with Desk.open(clock=clock, plugins=[NoNight()]) as desk:
        ref = receive(desk)
        with pytest.raises(NotAuthorized, match="refused by reqmgmt_authorize of plugin"):
            desk.fire(ref, "clarify", actor=CLERK, note="?")
        assert not desk.can(ref, "clarify", actor=CLERK)
        assert desk.can(ref, "start_evaluation", actor=CLERK)


def test_before_transition_block_is_located_and_writes_nothing(clock: FakeClock) -> None:
    """A credit-check style veto raises TransitionBlocked with ref, event and state."""

    class CreditCheck:
        @hookimpl
        def reqmgmt_before_transition(self, record: Record, event: str, actor: Actor) -> None:
            if event == "accept":
                raise TransitionBlocked("customer HK-001 is over its credit limit")

    with Desk.open(clock=clock, plugins=[CreditCheck()]) as desk:
        ref = to_evaluating(desk)
        sign_all(desk, ref)
        before = snapshot(desk, ref)
        with pytest.raises(TransitionBlocked) as info:
            desk.fire(ref, "accept", actor=CLERK, delivery_plan="p")
        assert (info.value.ref, info.value.event, info.value.state) == (ref, "accept", "evaluating")
        assert "over its credit limit" in str(info.value)
        assert snapshot(desk, ref) == before


@pytest.mark.parametrize("hook", ["authorize", "before", "approvers"])
def test_an_exception_in_any_veto_hook_writes_nothing(clock: FakeClock, hook: str) -> None:
    """A crashing veto plugin aborts the command (HookError naming it) with nothing written."""

    class Crashing:
        @hookimpl
        def reqmgmt_authorize(self, actor: Actor, record: Record, event: str) -> bool | None:
            if hook == "authorize" and event == "sign":
                raise RuntimeError("authorize crashed")
            return None

        @hookimpl
        def reqmgmt_before_transition(self, record: Record, event: str, actor: Actor) -> None:
            if hook == "before" and event == "sign":
                raise RuntimeError("before crashed")

        @hookimpl
        def reqmgmt_approvers(
            self, records: Sequence[Record], department: str
        ) -> Sequence[Collection[str]] | None:
            if hook == "approvers":
                raise RuntimeError("approvers crashed")
            return None

    with Desk.open(clock=clock, plugins=[Crashing()]) as desk:
        ref = to_evaluating(desk)
        before = snapshot(desk, ref)
        with pytest.raises(HookError, match=r"plugin 'Crashing'.*crashed") as info:
            desk.sign(ref, department="engineering", actor=ENG)
        assert isinstance(info.value.__cause__, RuntimeError)
        assert snapshot(desk, ref) == before


def test_an_exception_in_a_guard_writes_nothing(clock: FakeClock) -> None:
    """A guard that raises aborts the command; store, audit and outbox stay as they were."""

    def broken(ctx: Context) -> str | None:
        raise ZeroDivisionError("guard bug")

    transitions = tuple(
        attrs.evolve(t, guards=(broken,)) if t.event == "clarify" else t
        for t in REQUIREMENT.transitions
    )
    lc = attrs.evolve(REQUIREMENT, transitions=transitions)
    with Desk.open(clock=clock, lifecycles=[lc]) as desk:
        ref = receive(desk)
        before = snapshot(desk, ref)
        with pytest.raises(ZeroDivisionError):
            desk.fire(ref, "clarify", actor=CLERK, note="?")
        assert snapshot(desk, ref) == before


# --- step 4: guards and input -----------------------------------------------------------


def test_note_is_required_where_declared(desk: Desk) -> None:
    """Rejecting without a reason is refused and says why."""
    ref = receive(desk)
    with pytest.raises(ValidationError, match="'reject' requires one"):
        desk.fire(ref, "reject", actor=CLERK)
    with pytest.raises(ValidationError):
        desk.fire(ref, "reject", actor=CLERK, note="   ")


def test_required_and_unknown_data_are_refused(desk: Desk) -> None:
    """Missing required data and unexpected keys are named."""
    ref = to_evaluating(desk)
    sign_all(desk, ref)
    with pytest.raises(ValidationError, match="'accept' requires 'delivery_plan'"):
        desk.fire(ref, "accept", actor=CLERK)
    with pytest.raises(ValidationError, match="only delivery_plan for 'accept'") as info:
        desk.fire(ref, "accept", actor=CLERK, delivery_plan="p", colour="red")
    assert info.value.field == "colour"


def test_accept_is_blocked_until_all_three_departments_signed(desk: Desk) -> None:
    """The guard names the departments still missing."""
    ref = to_evaluating(desk)
    desk.sign(ref, department="engineering", actor=ENG)
    with pytest.raises(TransitionBlocked, match="still needs: materials, production"):
        desk.fire(ref, "accept", actor=CLERK, delivery_plan="p")


# --- sign-offs ------------------------------------------------------------------------------


def test_the_submitter_may_not_sign(desk: Desk) -> None:
    """No self-approval: the clerk who submitted cannot sign, even in the department."""
    ref = receive(desk, actor=CLERK2)
    desk.fire(ref, "start_evaluation", actor=CLERK2)
    with pytest.raises(NotAuthorized, match=r"submitted this review .* no self-approval"):
        desk.sign(ref, department="engineering", actor=CLERK2)


def test_one_person_signs_once_per_round(desk: Desk) -> None:
    """Signing a second department in the same round is refused."""
    both = Actor("both", departments={"engineering", "materials"})
    ref = to_evaluating(desk)
    desk.sign(ref, department="engineering", actor=both)
    with pytest.raises(NotAuthorized, match="already signed for engineering in review round 1"):
        desk.sign(ref, department="materials", actor=both)


def test_each_department_signs_once_per_round(desk: Desk) -> None:
    """A second engineer cannot sign engineering again."""
    ref = to_evaluating(desk)
    desk.sign(ref, department="engineering", actor=ENG)
    with pytest.raises(TransitionBlocked, match="engineering already signed in review round 1"):
        desk.sign(ref, department="engineering", actor=Actor("eng2", departments="engineering"))


def test_signing_for_a_department_you_are_not_in_is_refused(desk: Desk) -> None:
    """Eligibility comes from Actor.departments by default."""
    ref = to_evaluating(desk)
    with pytest.raises(NotAuthorized, match="eng is not an eligible signer for materials"):
        desk.sign(ref, department="materials", actor=ENG)


def test_a_department_outside_the_step_is_refused(desk: Desk) -> None:
    """Only the step's departments sign; the error lists them."""
    ref = to_evaluating(desk)
    quality = Actor("qa", departments={"quality"})
    with pytest.raises(TransitionBlocked, match="departments that sign here: engineering"):
        desk.sign(ref, department="quality", actor=quality)


def test_approvers_hook_decides_who_may_sign(clock: FakeClock) -> None:
    """With reqmgmt_approvers, only the named people sign, whatever their departments."""
    approvers = ScriptedApprovers({"engineering": ["chief"]})
    with Desk.open(clock=clock, plugins=[approvers]) as desk:
        ref = to_evaluating(desk)
        with pytest.raises(NotAuthorized, match="not an eligible signer for engineering"):
            desk.sign(ref, department="engineering", actor=ENG)
        record = desk.sign(ref, department="engineering", actor=Actor("chief"))
        assert record.signoffs[-1].actor_id == "chief"
        assert approvers.calls == 2


def test_a_decline_sends_the_record_back_with_the_reason(desk: Desk) -> None:
    """One rejection sends it back for rework; the earlier round stays in the history."""
    ref = to_evaluating(desk)
    desk.sign(ref, department="engineering", actor=ENG, opinion="ok")
    with pytest.raises(ValidationError, match="requires one"):
        desk.sign(ref, department="materials", actor=MAT, approve=False)
    back = desk.sign(
        ref, department="materials", actor=MAT, approve=False, opinion="无库存 no stock"
    )
    assert back.state == "received"
    assert back.reason == "无库存 no stock"
    assert [(s.department, s.approve, s.round) for s in back.signoffs] == [
        ("engineering", True, 1),
        ("materials", False, 1),
    ]
    # A new round starts clean: everybody signs again, old signatures are kept.
    desk.fire(ref, "start_evaluation", actor=CLERK)
    again = desk.sign(ref, department="engineering", actor=ENG)
    assert again.review_round == 2
    assert len(again.signoffs) == 3
    assert desk.history(ref)[-3].note == "无库存 no stock"


def test_sign_outside_a_signoff_state_is_an_invalid_transition(desk: Desk) -> None:
    """desk.sign in a state without a step names the allowed events."""
    ref = receive(desk)
    with pytest.raises(InvalidTransition, match="'sign' is not allowed in state 'received'"):
        desk.sign(ref, department="engineering", actor=ENG)


# --- step 5: the write -----------------------------------------------------------------


def test_a_stale_write_conflicts_and_leaves_store_audit_and_outbox_untouched(
    clock: FakeClock,
) -> None:
    """A command whose record changed under it raises ConflictError and writes nothing."""
    box: dict[str, Desk] = {}

    class Interloper:
        """Commits another command on the same record while the first is running."""

        fired = False

        @hookimpl
        def reqmgmt_before_transition(self, record: Record, event: str, actor: Actor) -> None:
            if event == "clarify" and not self.fired:
                self.fired = True
                box["desk"].fire(record.ref, "cancel", actor=CLERK, note="customer withdrew")

    with Desk.open(clock=clock, plugins=[Interloper()], autodispatch=False) as desk:
        box["desk"] = desk
        ref = receive(desk)
        with pytest.raises(ConflictError) as info:
            desk.fire(ref, "clarify", actor=CLERK, note="which finish?")
        assert (info.value.expected, info.value.actual) == (1, 2)
        record, events, keys = snapshot(desk, ref)
        assert record.state == "cancelled"
        assert record.version == 2
        assert [e.event for e in events] == ["receive", "cancel"]
        assert keys == [f"{ref}:1:role:sales", f"{ref}:2:role:sales"]
        assert desk.verify_history(ref)


def test_expected_version_refuses_a_command_on_a_record_changed_since_it_was_shown(
    desk: Desk,
) -> None:
    """A user acted on version 1 (a form); someone else moved the record on: ConflictError."""
    ref = receive(desk)
    desk.fire(ref, "clarify", actor=CLERK, note="which finish?")
    desk.fire(ref, "clarified", actor=CLERK, note="zinc")  # back in received, version 3
    before = snapshot(desk, ref)
    with pytest.raises(ConflictError, match="expected version 1 but the stored version is 3"):
        desk.fire(ref, "start_evaluation", actor=CLERK, expected_version=1)
    assert snapshot(desk, ref) == before
    after = desk.fire(ref, "start_evaluation", actor=CLERK, expected_version=3)
    assert after.version == 4
    with pytest.raises(ConflictError):
        desk.sign(ref, department="engineering", actor=ENG, expected_version=3)
    assert desk.sign(ref, department="engineering", actor=ENG, expected_version=4).version == 5


def test_the_audit_event_records_who_when_what_and_why(desk: Desk, clock: FakeClock) -> None:
    """Actor, clock time, states, changed fields old → new, note, meaning, chained hash."""
    ref = to_evaluating(desk)
    sign_all(desk, ref)
    at = clock.now
    desk.fire(ref, "accept", actor=CLERK, delivery_plan="2 lots")
    events = desk.history(ref)
    e = events[-1]
    assert (e.actor_id, e.actor_name, e.at) == ("clerk", CLERK.name, at)
    assert (e.event, e.from_state, e.to_state, e.meaning) == (
        "accept",
        "evaluating",
        "accepted",
        "responsibility",
    )
    changes = {c.field: (c.old, c.new) for c in e.changes}
    assert changes["state"] == ("evaluating", "accepted")
    assert changes["delivery_plan"] == (None, "2 lots")
    assert changes["version"] == (5, 6)
    assert e.prev_hash == events[-2].hash
    assert len(e.hash) == 64
    assert events[0].prev_hash == ""
    assert events[0].from_state is None


def test_signatures_are_audited_with_their_meaning_and_opinion(desk: Desk) -> None:
    """A sign-off's audit event keeps the meaning (review) and the opinion as note."""
    ref = to_evaluating(desk)
    desk.sign(ref, department="engineering", actor=ENG, opinion="现有模具 existing die")
    e = desk.history(ref)[-1]
    assert (e.event, e.meaning, e.note) == ("sign", "review", "现有模具 existing die")
    signoff = desk.get(ref).signoffs[-1]
    assert (signoff.department, signoff.opinion, signoff.meaning) == (
        "engineering",
        "现有模具 existing die",
        "review",
    )


# --- step 6: after commit ------------------------------------------------------------------


def test_observers_see_the_committed_record(clock: FakeClock) -> None:
    """reqmgmt_after_transition runs after commit, with the record as stored."""
    seen: list[tuple[int, int, str]] = []
    box: dict[str, Desk] = {}

    class Mirror:
        @hookimpl
        def reqmgmt_after_transition(self, record: Record, audit_event: AuditEvent) -> None:
            stored = box["desk"].get(record.ref)
            seen.append((record.version, stored.version, audit_event.event))

    with Desk.open(clock=clock, plugins=[Mirror()]) as desk:
        box["desk"] = desk
        ref = receive(desk)
        desk.fire(ref, "clarify", actor=CLERK, note="?")
    assert seen == [(1, 1, "receive"), (2, 2, "clarify")]


def test_a_failing_observer_does_not_undo_the_command(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An observer's exception is logged; the command stays committed."""

    class Broken:
        @hookimpl
        def reqmgmt_after_transition(self, record: Record, audit_event: AuditEvent) -> None:
            raise RuntimeError("ERP mirror offline")

    with (
        caplog.at_level(logging.ERROR, "reqmgmt"),
        Desk.open(clock=clock, plugins=[Broken()]) as desk,
    ):
        ref = receive(desk)
        assert desk.fire(ref, "clarify", actor=CLERK, note="?").version == 2
        assert desk.get(ref).state == "clarifying"
    assert "reqmgmt_after_transition failed" in caplog.text


def test_notifications_have_idempotency_keys_and_labels(
    desk: Desk, notifier: RecordingNotifier
) -> None:
    """Each notification is keyed ref:version:recipient and carries zh and en text."""
    ref = receive(desk)
    desk.fire(ref, "start_evaluation", actor=CLERK)
    assert notifier.keys() == [
        f"{ref}:1:role:sales",
        f"{ref}:2:department:engineering",
        f"{ref}:2:department:materials",
        f"{ref}:2:department:production",
    ]
    n = notifier.sent[-1]
    assert n.text_zh == f"客户需求 {ref}:待处理 → 评估中(提交评估)"
    assert n.text_en == f"customer requirement {ref}: received → evaluating (submit for evaluation)"
    assert desk.outbox() == []


def test_a_failing_notifier_keeps_the_command_and_the_notification(clock: FakeClock) -> None:
    """Delivery failure: the command stays committed, the notification waits for retry."""
    failing = FailingNotifier()
    with Desk.open(clock=clock, plugins=[failing]) as desk:
        ref = receive(desk)
        record = desk.fire(ref, "clarify", actor=CLERK, note="which finish?")
        assert record.version == 2
        assert desk.get(ref).state == "clarifying"
        clock.advance(hours=1)
        pending = desk.outbox()
        assert [e.notification.key for e in pending] == [f"{ref}:1:role:sales", f"{ref}:2:customer"]
        assert pending[0].attempts == 1
        assert pending[0].last_error is not None
        assert "mail server down" in pending[0].last_error
        # Per record, the later notification waits behind the failed earlier one.
        assert pending[1].attempts == 0
        failing.failing = False
        result = desk.dispatch()
        assert (result.delivered, len(result.failed)) == (2, 0)
        assert desk.outbox(now=clock.now + timedelta(days=1)) == []


def test_dispatch_backs_off_and_gives_up_after_max_attempts(clock: FakeClock) -> None:
    """Retry delays double; after max_attempts the entry is a dead letter."""
    failing = FailingNotifier()
    with Desk.open(clock=clock, plugins=[failing], autodispatch=False) as desk:
        desk.max_attempts = 3
        receive(desk)
        assert len(desk.dispatch().failed) == 1
        assert len(desk.dispatch().failed) == 0  # not due yet: 30 s back-off
        clock.advance(seconds=31)
        assert len(desk.dispatch().failed) == 1
        clock.advance(seconds=61)
        result = desk.dispatch()
        assert (len(result.failed), result.dead) == (1, 1)
        clock.advance(days=1)
        assert desk.outbox() == []
        assert failing.attempts == 3


def test_dispatch_without_a_notifier_delivers_nothing(clock: FakeClock) -> None:
    """With no reqmgmt_notify plugin, notifications wait in the outbox."""
    with Desk.open(clock=clock) as desk:
        receive(desk)
        assert desk.dispatch().delivered == 0
        assert len(desk.outbox()) == 1


# --- dry runs -----------------------------------------------------------------------------


def test_can_answers_with_reasons_and_writes_nothing(desk: Desk) -> None:
    """can() is truthy when allowed and explains a refusal; the record is unchanged."""
    ref = to_evaluating(desk)
    before = snapshot(desk, ref)
    verdict = desk.can(ref, "accept", actor=CLERK)
    assert not verdict
    assert verdict.reasons == ("sign-off round 1 still needs: engineering, materials, production",)
    assert desk.can(ref, "sign", actor=ENG)
    assert not desk.can(ref, "sign", actor=OUTSIDER)
    assert not desk.can(ref, "close", actor=CLERK)
    assert "not allowed in state 'evaluating'" in desk.can(ref, "close", actor=CLERK).reasons[0]
    assert snapshot(desk, ref) == before


def test_allowed_events_depend_on_the_actor(desk: Desk) -> None:
    """The events offered match role and sign-off eligibility."""
    ref = to_evaluating(desk)
    # remark and identify take no role: anyone of the company (a role or a department)
    # whom the host's reqmgmt_authorize lets through.
    open_to_company = ["identify", "remark"]
    assert desk.allowed_events(ref, actor=CLERK) == sorted(
        ["cancel", "hand_to_design", "negotiate", "request_outsourcing", *open_to_company]
    )
    assert desk.allowed_events(ref, actor=ENG) == sorted(["decline", "sign", *open_to_company])
    assert desk.allowed_events(ref, actor=OUTSIDER) == []
    sign_all(desk, ref)
    assert "accept" in desk.allowed_events(ref, actor=CLERK)
    assert desk.allowed_events(ref, actor=ENG) == open_to_company


# --- reading ---------------------------------------------------------------------------------


def test_earlier_versions_are_rebuilt_from_the_audit(desk: Desk) -> None:
    """get(version=n) gives the record as it was; out-of-range versions are NotFound."""
    ref = receive(desk)
    desk.fire(ref, "clarify", actor=CLERK, note="?")
    desk.fire(ref, "clarified", actor=CLERK, note="zinc")
    v1 = desk.get(ref, version=1)
    assert (v1.state, v1.version) == ("received", 1)
    assert desk.get(ref, version=2).state == "clarifying"
    assert desk.get(ref, version=3) == desk.get(ref)
    with pytest.raises(NotFound, match="versions 1 to 3 exist"):
        desk.get(ref, version=4)


def test_verify_history_finds_an_altered_event(desk: Desk) -> None:
    """Changing a stored event breaks the chain at that event."""
    ref = receive(desk)
    desk.fire(ref, "clarify", actor=CLERK, note="?")
    desk.fire(ref, "clarified", actor=CLERK, note="zinc")
    assert desk.verify_history(ref)
    store = desk.store
    assert isinstance(store, MemoryStore)
    trail = _trail(store._audit[ref])  # [(canonical JSON, hash)]
    data, digest = trail[1]
    assert b'"note":"?"' in data
    trail[1] = (data.replace(b'"note":"?"', b'"note":"edited afterwards"'), digest)
    store._audit[ref] = _pack_trail(trail)
    assert desk.history(ref)[1].note == "edited afterwards"
    check = desk.verify_history(ref)
    assert not check
    assert check.broken_at == 2
    assert "altered" in check.problem


def test_verify_history_finds_a_removed_event(desk: Desk) -> None:
    """Deleting an event shows as a version gap."""
    ref = receive(desk)
    desk.fire(ref, "clarify", actor=CLERK, note="?")
    desk.fire(ref, "clarified", actor=CLERK, note="zinc")
    store = desk.store
    assert isinstance(store, MemoryStore)
    trail = _trail(store._audit[ref])
    del trail[1]
    store._audit[ref] = _pack_trail(trail)
    check = desk.verify_history(ref)
    assert check.broken_at == 2
    assert "version 3, expected 2" in check.problem


def test_verify_history_finds_a_record_edited_behind_the_engine(desk: Desk) -> None:
    """A stored record that does not match its replayed trail is reported."""
    ref = receive(desk)
    records = desk.store._records  # type: ignore[attr-defined]
    records[ref] = attrs.evolve(records[ref], description="changed quietly")
    check = desk.verify_history(ref)
    assert not check
    assert "differing fields: description" in check.problem


# --- numbering, opening, clock ---------------------------------------------------------------


def test_case_numbers_count_up_per_year(desk: Desk) -> None:
    """REQ-<year>-<6 digits> from the store sequence."""
    assert [receive(desk) for _ in range(3)] == [
        "REQ-2026-000001",
        "REQ-2026-000002",
        "REQ-2026-000003",
    ]


def test_the_host_can_number_records(clock: FakeClock) -> None:
    """reqmgmt_next_number wins over the store sequence; a taken number conflicts."""

    class ErpNumbers:
        @hookimpl
        def reqmgmt_next_number(self, kind: str, year: int) -> str | None:
            return f"KH{year}-0007"

    with Desk.open(clock=clock, plugins=[ErpNumbers()]) as desk:
        assert receive(desk) == "KH2026-0007"
        with pytest.raises(ConflictError, match="already exists"):
            receive(desk)


def test_opening_an_unknown_url_says_what_is_supported() -> None:
    """No plugin for the URL: ConfigError naming the built-in one."""
    with pytest.raises(ConfigError, match="built in: 'memory://'"):
        Desk.open("oracle://erp")


def test_a_misspelt_hook_is_refused() -> None:
    """A plugin implementing an unknown reqmgmt_ hook fails at open time."""

    class Typo:
        @hookimpl
        def reqmgmt_notfy(self, notification: object) -> None:  # misspelt on purpose
            pass

    with pytest.raises(ConfigError, match="reqmgmt_notfy"):
        Desk.open(plugins=[Typo()])


def test_a_naive_clock_is_refused() -> None:
    """The clock must give timezone-aware times."""
    with (
        Desk.open(clock=lambda: datetime(2026, 1, 1)) as desk,
        pytest.raises(ValidationError, match="timezone-aware"),
    ):
        receive(desk)


def test_unknown_record_kind_is_named() -> None:
    """Asking for a lifecycle the Desk does not run lists those it does."""
    with Desk.open() as desk, pytest.raises(ValidationError, match="one of contract, requirement"):
        desk.create("complaint", actor=CLERK)


def test_custom_lifecycles_replace_the_builtin_ones(clock: FakeClock) -> None:
    """Desk.open(lifecycles=...) runs exactly the declarations given."""
    lc = attrs.evolve(
        REQUIREMENT,
        transitions=(
            *REQUIREMENT.transitions,
            Transition("escalate", ("received",), "received", zh="升级", en="escalate"),
        ),
    )
    with Desk.open(clock=clock, lifecycles=[lc]) as desk:
        ref = receive(desk)
        assert desk.fire(ref, "escalate", actor=PRO).version == 2


# --- imports ---------------------------------------------------------------------------------


def _rows(n: int, bad: int | None = None) -> list[dict[str, object]]:
    return [
        {
            "customer": Customer("C1", "Customer"),
            "description": f"legacy order {i}",
            "channel": "email",
            "received_at": None if i == bad else datetime(2025, 12, 1, tzinfo=UTC),
        }
        for i in range(n)
    ]


def test_create_many_numbers_audits_and_queues_every_record(desk: Desk) -> None:
    """An import in batches: every record as if created alone, observers after commit."""
    refs = desk.create_many("requirement", _rows(7), actor=CLERK, batch_size=3)
    assert refs == [f"REQ-2026-{i:06d}" for i in range(1, 8)]
    for ref in refs:
        record = desk.get(ref)
        assert (record.state, record.version) == ("received", 1)
        assert [e.event for e in desk.history(ref)] == ["receive"]
        assert desk.verify_history(ref)
    assert {e.notification.ref for e in desk.outbox()} == set(refs)


def test_a_bad_row_keeps_earlier_batches_and_writes_nothing_of_its_own(desk: Desk) -> None:
    """Row 4 is bad: batch 0-2 stays, batch 3-5 is not written; the error says where to resume."""
    with pytest.raises(ImportFailed) as info:
        desk.create_many("requirement", _rows(7, bad=4), actor=CLERK, batch_size=3)
    err = info.value
    assert err.row == 4
    assert isinstance(err.cause, ValidationError)
    assert err.committed == ("REQ-2026-000001", "REQ-2026-000002", "REQ-2026-000003")
    assert "resume from row 3" in str(err)
    assert [r.ref for r in desk.query(kind="requirement")] == list(err.committed)


def test_create_many_refuses_a_batch_size_below_one(desk: Desk) -> None:
    with pytest.raises(ValidationError, match="batch_size"):
        desk.create_many("requirement", _rows(1), actor=CLERK, batch_size=0)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_an_import_row_whose_number_is_taken_fails_at_that_row(
    backend: str, tmp_path: object, clock: FakeClock
) -> None:
    """The batch is written at once (insert_many); a taken ref still names its row."""
    numbers = iter(["OLD-1", "OLD-2", "OLD-3", "OLD-4", "OLD-2", "OLD-6"])

    class LegacyNumbers:
        @hookimpl
        def reqmgmt_next_number(self, kind: str, year: int) -> str:
            return next(numbers)

    url = "memory://" if backend == "memory" else f"sqlite:///{tmp_path}/import.db"
    with Desk.open(url, clock=clock, plugins=[LegacyNumbers()]) as desk:
        with pytest.raises(ImportFailed) as info:
            desk.create_many("requirement", _rows(6), actor=CLERK, batch_size=3)
        err = info.value
        assert err.row == 4  # row 4 got OLD-2, taken by row 1 of the first batch
        assert isinstance(err.cause, ConflictError)
        assert err.cause.ref == "OLD-2"
        assert err.committed == ("OLD-1", "OLD-2", "OLD-3")
        assert [r.ref for r in desk.query(kind="requirement")] == ["OLD-1", "OLD-2", "OLD-3"]
        assert [e.version for e in desk.history("OLD-2")] == [1]
        assert {e.notification.ref for e in desk.outbox()} == {"OLD-1", "OLD-2", "OLD-3"}


@pytest.mark.parametrize("field", ["ref", "state", "version", "created_by"])
def test_creating_refuses_fields_the_engine_sets(desk: Desk, field: str) -> None:
    with pytest.raises(ValidationError, match="the engine sets") as info:
        desk.create(
            "requirement",
            actor=CLERK,
            customer=Customer("C1", "Customer"),
            description="x",
            received_at=datetime(2026, 3, 2, tzinfo=UTC),
            **{field: "REQ-2026-999999" if field == "ref" else "x"},
        )
    assert info.value.field == field
    assert desk.query() == []


@pytest.mark.parametrize("limit", [0, -1, 1.5, "10", True])
def test_worker_limits_are_positive_whole_numbers(desk: Desk, limit: object) -> None:
    """dispatch/dead_letters refuse a limit every backend would read differently."""
    with pytest.raises(ValidationError, match="limit"):
        desk.dispatch(limit=limit)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="limit"):
        desk.dead_letters(limit=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "when",
    [
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(2026, 3, 3),
    ],
)
def test_worker_times_follow_the_input_policy(desk: Desk, when: datetime) -> None:
    """run_reminders and report refuse a time outside 1900-2200 (or naive): no OverflowError."""
    with pytest.raises(ValidationError, match="now"):
        desk.run_reminders(now=when)
    with pytest.raises(ValidationError, match="since"):
        desk.report(since=when)


def test_a_remark_is_added_at_any_time_without_a_state_change(desk: Desk) -> None:
    """备注: in every open state, audited, the state kept; refused without a note or once final."""
    ref = to_evaluating(desk)
    before = desk.get(ref)
    after = desk.fire(ref, "remark", actor=ENG, note="客户电话: 可接受分批 split lots OK")
    assert (after.state, after.version) == ("evaluating", before.version + 1)
    assert after.remarks[-1] == "客户电话: 可接受分批 split lots OK"  # type: ignore[attr-defined]
    event = desk.history(ref)[-1]
    assert (event.event, event.from_state, event.to_state, event.actor_id) == (
        "remark",
        "evaluating",
        "evaluating",
        ENG.id,
    )
    with pytest.raises(ValidationError, match="note"):
        desk.fire(ref, "remark", actor=ENG)
    with pytest.raises(TransitionBlocked, match="has no role and no department"):
        desk.fire(ref, "remark", actor=OUTSIDER, note="drive-by")
    open_states = {s.name for s in REQUIREMENT.states if not s.final}
    remarkable = {s for t in REQUIREMENT.transitions if t.event == "remark" for s in t.sources}
    assert remarkable == open_states
    desk.fire(ref, "cancel", actor=CLERK, note="客户取消")
    with pytest.raises(InvalidTransition):
        desk.fire(ref, "remark", actor=ENG, note="too late")


def test_a_notification_says_what_the_person_needs(desk: Desk, notifier: RecordingNotifier) -> None:
    """The note, the event's key data, the ref and version travel with the notification."""
    ref = receive(desk)
    desk.fire(ref, "clarify", actor=CLERK, note="镀层厚度? plating thickness?")
    asked = [n for n in notifier.sent if n.event == "clarify"]
    assert asked
    assert {(n.ref, n.version, n.note) for n in asked} == {(ref, 2, "镀层厚度? plating thickness?")}
    assert asked[0].text_zh.endswith(";说明:镀层厚度? plating thickness?")
    assert asked[0].text_en.endswith("; note: 镀层厚度? plating thickness?")
    desk.fire(ref, "clarified", actor=CLERK, note="8-12 µm")
    desk.fire(ref, "start_evaluation", actor=CLERK)
    sign_all(desk, ref)
    desk.fire(ref, "accept", actor=CLERK, delivery_plan="2 批: 第12周, 第14周")
    accepted = [n for n in notifier.sent if n.event == "accept"]
    assert accepted
    assert accepted[0].details == (("delivery_plan", "2 批: 第12周, 第14周"),)


def test_notification_details_are_bounded_plain_text() -> None:
    """Data of any shape becomes bounded text; a host object's __str__ is never called."""
    from datetime import date

    from reqmgmt import ContractLine, Money
    from reqmgmt.notices import MAX_DETAIL, details

    class Hostile:
        def __str__(self) -> str:
            raise AssertionError("called")

    line = ContractLine(
        line_no=2, product="支架", quantity=5, unit_price=Money("3", "CNY"), delivery_date=None
    )
    got = dict(
        details(
            {
                "shipment": {1: 120, 2: 5},
                "changes": {"lines": (line,)},
                "credit": Money("100", "CNY"),
                "due_on": date(2027, 1, 4),
                "safety_related": True,
                "odd": Hostile(),
                "long": "x" * 5000,
            }
        )
    )
    assert got["shipment"] == "1: 120, 2: 5"
    assert got["changes"].startswith("lines: line 2: 支架 × 5 @ ")
    assert got["due_on"] == "2027-01-04"
    assert got["safety_related"] == "true"
    assert got["odd"] == "Hostile"
    assert len(got["long"]) == MAX_DETAIL
