"""Satisfaction surveys (满意度调查): one audited record per answered survey.

A survey is recorded once and never changes: its lifecycle has one state,
``recorded``, final.  Being a record, it gets what every record has for
free: a number (``SVY-2026-000001``), the creating audit event (who, when,
the whole answer, hash-chained), the creation role check and veto hooks,
the outbox, imports (``desk.create_many("survey", rows)``), verification,
and the report's summary rows.  See docs/reports.md for why it is a record
kind and not an event on the record it is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import NotFound, ValidationError
from ..model import Customer, Survey
from .base import CreationInput, Lifecycle, State

_WHERE = "survey"
#: The state a record must be in to be surveyed about.
SURVEYED_STATE = "closed"


def check_about(fields: Mapping[str, Any], tx: Any) -> None:
    """``about`` names an existing, closed record of the same customer."""
    about = fields.get("about")
    if about is None:
        return
    if not isinstance(about, str) or not about.strip():
        raise ValidationError("about", about, "the reference of a closed record", where=_WHERE)
    record = tx.get(about)
    if record is None:
        raise NotFound(about, hint="about must name an existing record")
    if isinstance(record, Survey):
        raise ValidationError("about", about, "a requirement, contract or return", where=_WHERE)
    if record.state != SURVEYED_STATE:
        raise ValidationError(
            "about", about, f"a {SURVEYED_STATE} record (it is {record.state})", where=_WHERE
        )
    customer = fields.get("customer")
    theirs = getattr(getattr(record, "customer", None), "id", None)
    if isinstance(customer, Customer) and theirs != customer.id:
        raise ValidationError(
            "about",
            about,
            f"a record of customer {customer.id} (it is customer {theirs}'s)",
            where=_WHERE,
        )


SURVEY = Lifecycle(
    kind="survey",
    record_type=Survey,
    zh="满意度调查",
    en="satisfaction survey",
    initial="recorded",
    create_event="record",
    create_roles={"sales"},
    number_prefix="SVY",
    against_store=check_about,
    inputs=(
        CreationInput("customer", required=True),
        CreationInput("answers", required=True, vocabulary="survey_questions"),
        CreationInput("comment"),
        CreationInput("about"),
    ),
    states=(State("recorded", "已记录", "recorded", final=True),),
    transitions=(),
)
