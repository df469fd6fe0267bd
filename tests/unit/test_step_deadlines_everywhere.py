"""Issue 14 point 12: every waiting step of a return is reminded, and every non-final state
of every lifecycle has a step deadline in the default rules or says why it has none.

Times by hand (Shanghai, UTC+8; working hours 08:30-12:00, 13:00-17:30).  The FakeClock
starts on Monday 2 March 2026 17:00 CST (09:00 UTC) and ticks one second per call.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reqmgmt import ConfigError, Desk, Return
from reqmgmt.lifecycle import BUILTIN_LIFECYCLES
from reqmgmt.rules import default_rules, load_rules
from reqmgmt.testing import FakeClock

from .test_lifecycle_returns import QUALITY_MANAGER, judged_valid

CST = ZoneInfo("Asia/Shanghai")


def test_every_non_final_state_has_a_step_deadline_or_says_why_not() -> None:
    """The walk: a state with neither a step_deadline row nor a [no_step_deadline] reason
    fails, and so does one with both (the declaration would be a lie)."""
    rules = default_rules()
    table = rules.table("step_deadline")
    missing, both = [], []
    for kind, lc in BUILTIN_LIFECYCLES.items():
        for state in lc.states:
            if state.final:
                continue
            out = rules.decide("step_deadline", {"kind": kind, "state": state.name}).outcome
            has_deadline = bool(out.get("hours")) or bool(out.get("until"))
            declared = rules.no_step_deadline.get((kind, state.name))
            if not has_deadline and not declared:
                missing.append(f"{kind}.{state.name}")
            if has_deadline and declared:
                both.append(f"{kind}.{state.name}")
    assert missing == []
    assert both == []
    assert table.default is not None
    assert not table.default.get("hours")
    # The return's waiting steps the issue names have real deadlines.
    for state in ("dispositioning", "capa_open"):
        assert (("return", state)) not in rules.no_step_deadline


def _open(clock: FakeClock) -> Desk:
    return Desk.open("memory://", clock=clock)


def test_a_valid_return_waiting_for_disposition_is_reminded_then_escalated() -> None:
    """16 working hours for the quality manager's disposition (处置), reminded 4 h before."""
    clock = FakeClock()
    with _open(clock) as desk:
        r = judged_valid(desk)
        assert r.step == "disposition"
        # Judged Monday 17:00:0x CST: 0.5 h Monday, 8 h Tuesday, 7.5 h Wednesday -> Wed 17:00.
        assert r.step_due_at is not None
        assert r.step_due_at.astimezone(CST).replace(second=0) == datetime(
            2026, 3, 4, 17, 0, tzinfo=CST
        )
        assert desk.run_reminders(r.step_due_at - timedelta(days=1)).queued == 0
        desk.run_reminders(r.step_due_at + timedelta(minutes=1))
        with desk.store.transaction() as tx:
            keys = [e.notification.key for e in tx.pending(now=r.step_due_at + timedelta(days=1))]
        assert any(k.startswith(f"{r.ref}:disposition@") and ":due:" in k for k in keys)
        # Disposed: the step moves on (no disposition reminder any more).
        done = desk.returns.dispose(r.ref, "scrap", actor=QUALITY_MANAGER)
        assert done.step == "capa_or_close"


def test_a_capa_past_its_due_on_is_reminded() -> None:
    """The CAPA step is due at the end of its due_on (midnight after it, calendar zone)."""
    clock = FakeClock()
    with _open(clock) as desk:
        r = judged_valid(desk, safety_related=True)
        desk.returns.dispose(r.ref, "rework", actor=QUALITY_MANAGER)
        due_on = date(2026, 3, 20)
        opened = desk.fire(
            r.ref, "open_capa", actor=QUALITY_MANAGER, owner="lin", due_on=due_on,
            actions="更换模具",
        )  # fmt: skip
        assert isinstance(opened, Return)
        assert opened.step == "capa"
        midnight = datetime(2026, 3, 21, 0, 0, tzinfo=CST).astimezone(UTC)
        assert opened.step_due_at == midnight
        assert opened.next_deadline == midnight
        before = desk.run_reminders(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
        assert before.queued == 0
        past = desk.run_reminders(midnight + timedelta(hours=1))
        assert past.queued >= 1
        with desk.store.transaction() as tx:
            keys = [e.notification.key for e in tx.pending(now=midnight + timedelta(days=1))]
        assert any(k.startswith(f"{r.ref}:capa@") and ":due:" in k for k in keys)


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"return": {"dispositionning": "typo"}}, "return has no state 'dispositionning'"),
        ({"return": {"closed": "done"}}, "'closed' is final"),
        ({"retrun": {"reported": "typo"}}, "no lifecycle 'retrun'"),
    ],
)
def test_a_declaration_naming_an_unknown_state_is_refused(
    declared: dict[str, dict[str, str]], message: str
) -> None:
    rules = load_rules({"no_step_deadline": declared}, with_defaults=True)
    with pytest.raises(ConfigError, match=message):
        Desk.open("memory://", rules=rules)


def test_a_declaration_needs_a_reason() -> None:
    with pytest.raises(ConfigError, match=r"no_step_deadline\.return\.reported: the reason"):
        load_rules({"no_step_deadline": {"return": {"reported": " "}}}, with_defaults=True)


def test_until_names_a_record_field() -> None:
    rules = load_rules(
        {"tables": {"step_deadline": {"rows": [
            {"id": "return-capa", "when": "kind == 'return' and state == 'capa_open'",
             "then": {"step": "capa", "until": "capa.__class__"}},
        ]}}},
        with_defaults=True,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"row 'return-capa'.*a record field such as"):
        Desk.open("memory://", rules=rules)
