"""Typed usage of the public API, checked by mypy --strict (not run by pytest)."""

from __future__ import annotations

from reqmgmt import Actor, Customer, Desk, HistoryCheck, Record, Requirement, Verdict, hookimpl


class Plugin:
    @hookimpl
    def reqmgmt_authorize(self, actor: Actor, record: Record, event: str) -> bool | None:
        return None


def walk() -> tuple[Requirement, Verdict, HistoryCheck]:
    clerk = Actor("clerk", roles={"sales"})
    with Desk.open("memory://", plugins=[Plugin()]) as desk:
        req: Requirement = desk.requirements.receive(
            customer=Customer("C1", "Customer"), description="brackets", actor=clerk
        )
        record: Record = desk.fire(req.ref, "clarify", actor=clerk, note="?")
        events: list[str] = desk.allowed_events(record.ref, actor=clerk)
        assert events
        verdict = desk.can(req.ref, "clarified", actor=clerk)
        return req, verdict, desk.verify_history(req.ref)


def reasons_in_chinese(verdict: Verdict) -> list[tuple[str, str, str]]:
    from reqmgmt import NotAuthorized
    from reqmgmt.i18n import Reason, reason

    out: list[tuple[str, str, str]] = [(r.code, r.zh, r.text("en")) for r in verdict.reasons]
    extra: Reason = reason("signoff.no_review", state="received")
    err = NotAuthorized("REQ-1", "accept", "clerk", [extra, "plain"])
    out.append((err.code, err.zh, err.en))
    return out
