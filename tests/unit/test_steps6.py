"""Round six's fast paths of the command path against the general ones (issue 15):
authorise's input test against check_input, the Context written out against
attrs' __init__, signer_problems' round against Record.round_signoffs, the
notifications' generated loop against the maker and notices, Engine.run's cursor."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqmgmt import Actor, Desk, command, notices
from reqmgmt.errors import NotAuthorized, ReqMgmtError, TransitionBlocked, ValidationError
from reqmgmt.lifecycle.base import Context
from reqmgmt.model import Notification, Requirement, Signoff, fill_line, maker
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, ENG, PRO, receive, to_evaluating


class Blank(str):
    """A str whose strip says it is blank."""

    def strip(self, chars: str | None = None) -> str:
        return ""


class Loud(str):
    """A str whose strip raises, and whose format says something else."""

    def strip(self, chars: str | None = None) -> str:
        raise RuntimeError("strip")

    def __format__(self, spec: str) -> str:
        return "LOUD"


class Odd(Mapping[str, Any]):
    """A Mapping that is no dict."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


texts = st.sampled_from(
    ["", " ", "\t\n", "x", "can do", "\ud800", "名字", "a" * 501, "a" * 500]
) | st.text(max_size=8)
hostile_texts = texts | texts.map(Blank) | texts.map(Loud)
values = (
    st.none()
    | hostile_texts
    | st.integers()
    | st.sampled_from([0, False, b"x", [], ["a"], 1.5, 10**30])
)
keys = st.sampled_from(["department", "delivery_plan", "opinion", "x:y", "\ud800"]) | (
    st.sampled_from(["department", "delivery_plan"]).map(Blank)
)
datas = st.dictionaries(keys, values, max_size=3)
mappings = datas | datas.map(Odd) | datas.map(MappingProxyType)
notes = st.none() | hostile_texts | st.sampled_from([0, b"note", ["a"]])


def _outcome(call: Any) -> tuple[str, str] | None:
    """The library error ``call()`` raises (type and message), or None."""
    try:
        call()
    except ReqMgmtError as exc:
        return type(exc).__name__, str(exc)
    except Exception as exc:  # a hostile value's own error
        return type(exc).__name__, str(exc)
    return None


@pytest.fixture(scope="module")
def evaluating() -> Iterator[tuple[Desk, str]]:
    with Desk.open("memory://", clock=FakeClock()) as desk:
        yield desk, to_evaluating(desk)


@given(note=notes, data=mappings, event=st.sampled_from(["sign", "accept", "close", "start"]))
def test_authorise_checks_input_as_check_input(
    evaluating: tuple[Desk, str], note: Any, data: Mapping[str, Any], event: str
) -> None:
    """Whatever the note and data, authorise raises check_input's error or none of its own."""
    desk, ref = evaluating
    record = desk.get(ref)
    engine = desk.engine("requirement")
    # close and start are not declared from evaluating: their transitions from elsewhere.
    state = {"sign": "evaluating", "accept": "evaluating", "close": "completed"}.get(
        event, "accepted"
    )
    t = engine.transition(state, event)
    assert t is not None
    actor = ENG if event == "sign" else CLERK
    expected = _outcome(lambda: command.check_input(record, t, note, data))
    got = _outcome(
        lambda: command.authorise(
            desk, engine, t, record, event, actor, note, data, desk.now(), dry=False
        )
    )
    if expected is not None:
        assert got == expected
    else:  # past the input: no ValidationError of the input's (sign-off rules may refuse)
        assert got is None or got[0] == "NotAuthorized"


def test_authorise_calls_check_input_only_where_it_could_refuse(
    evaluating: tuple[Desk, str], monkeypatch: Any
) -> None:
    """The benchmark's inputs never reach check_input (5 of its 8 commands did)."""
    desk, ref = evaluating
    record = desk.get(ref)
    engine = desk.engine("requirement")
    calls: list[str] = []
    real = command.check_input

    def counting(record: Any, t: Any, note: Any, data: Any) -> None:
        calls.append(t.event)
        real(record, t, note, data)

    monkeypatch.setattr(command, "check_input", counting)

    def authorise(state: str, event: str, note: Any, **data: Any) -> None:
        t = engine.transition(state, event)
        assert t is not None
        actor = ENG if event == "sign" else PRO if event == "complete" else CLERK
        command.authorise(desk, engine, t, record, event, actor, note, data, desk.now(), dry=False)

    authorise("evaluating", "sign", "can do", department="engineering")
    authorise("evaluating", "accept", None, delivery_plan="2 lots")
    authorise("in_progress", "complete", "shipped complete")
    authorise("accepted", "start", None)
    assert calls == []
    with pytest.raises(ValidationError, match="department"):
        authorise("evaluating", "sign", "can do", department="  ")
    with pytest.raises(ValidationError, match="extra"):
        authorise("evaluating", "accept", None, delivery_plan="2 lots", extra=1)
    with pytest.raises(ValidationError, match="note"):
        authorise("evaluating", "accept", 3, delivery_plan="2 lots")
    with pytest.raises(ValidationError, match="note"):
        authorise("in_progress", "complete", " ")
    # A str subclass is check_input's to test (and a blank-looking one refused):
    authorise("evaluating", "accept", Blank("x"), delivery_plan="2 lots")
    with pytest.raises(ValidationError, match="delivery_plan"):
        authorise("evaluating", "accept", None, delivery_plan=Blank("2 lots"))
    assert calls == ["sign", "accept", "accept", "complete", "accept", "accept"]


def test_the_written_out_context_is_attrs_one(evaluating: tuple[Desk, str]) -> None:
    """Every field of Context is set as Context(...) sets it (nothing else runs in its init)."""
    desk, ref = evaluating
    record = desk.get(ref)
    engine = desk.engine("requirement")
    t = engine.transition("evaluating", "accept")
    assert t is not None
    now = desk.now()
    data = {"delivery_plan": "2 lots"}
    ctx = command.authorise(desk, engine, t, record, "accept", CLERK, None, data, now, dry=False)
    made = Context(
        record, CLERK, "accept", None, data, now, t, engine.lifecycle, desk._decide, [], None,
        desk.rules.vocabularies, desk.pm,
    )  # fmt: skip
    assert type(ctx) is Context
    assert not hasattr(Context, "__attrs_post_init__")
    for a in attrs.fields(Context):
        assert getattr(ctx, a.name) == getattr(made, a.name), a.name
    assert ctx == made
    assert ctx.decisions == []
    assert ctx.decisions is not made.decisions


def _signoff(department: str, actor: str, round_: int) -> Signoff:
    return Signoff(department, actor, True, "", "review", round_, datetime.now(UTC))


class OtherRounds(Requirement):
    """A host's record class whose current round is the one before (no kind of its
    own: reqmgmt.model.record_classes passes it by, stores keep reading Requirements)."""

    RECORD_KIND: ClassVar[str] = ""

    def round_signoffs(self, round: int | None = None) -> tuple[Signoff, ...]:
        return super().round_signoffs(self.review_round - 1 if round is None else round)


def _old_signer_problems(desk: Desk, record: Any, actor: Any, department: object) -> list[Any]:
    """signer_problems as it was: Record.round_signoffs asked."""
    problems = []
    for s in record.round_signoffs():
        if command.actor_key(s.actor_id) == actor.id:
            problems.append(
                command.reason(
                    "signoff.signer_already_signed",
                    actor=actor.id,
                    department=s.department,
                    round=s.round,
                )
            )
            break
    if isinstance(department, str):
        eligible = department in actor.departments
        if not eligible:
            problems.append(
                command.reason("signoff.not_eligible", actor=actor.id, department=department)
            )
    return problems


@given(
    rounds=st.lists(
        st.tuples(
            st.sampled_from(["engineering", "materials"]),
            st.sampled_from(["eng", "ENG", " eng", "eng\u200b", "pro", "ｅｎｇ"]),
            st.integers(0, 3),
        ),
        max_size=5,
    ),
    current=st.integers(0, 3),
    cls=st.sampled_from([Requirement, OtherRounds]),
    department=st.sampled_from(["engineering", "materials", Blank("engineering"), None, 3]),
)
def test_signer_problems_reads_the_round_as_round_signoffs(
    evaluating: tuple[Desk, str], rounds: list[Any], current: int, cls: Any, department: Any
) -> None:
    """The round's sign-offs written out find what Record.round_signoffs finds, in
    its order; a class with its own round_signoffs is asked."""
    desk, ref = evaluating
    base = desk.get(ref)
    record = cls(
        **{a.name: getattr(base, a.name) for a in attrs.fields(Requirement)}
        | {"signoffs": tuple(_signoff(*r) for r in rounds), "review_round": current}
    )
    assert command.signer_problems(desk, record, ENG, department) == _old_signer_problems(
        desk, record, ENG, department
    )


def _old_make(tos: Any, prefix: str, *rest: Any) -> tuple[Notification, ...]:
    make = maker(Notification)
    ref, kind, version, event, *others = rest
    return tuple(make(prefix + to, ref, kind, version, event, to, *others) for to in tos)


def _fields(notes: tuple[Notification, ...]) -> list[list[tuple[type, Any]]]:
    return [[(type(v), v) for v in attrs.astuple(n, recurse=False)] for n in notes]


@given(
    tos=st.lists(hostile_texts, max_size=4),
    values=st.tuples(
        *[hostile_texts, hostile_texts, st.integers(), hostile_texts, hostile_texts],
        *[hostile_texts, hostile_texts, st.none(), st.none() | hostile_texts],
        st.just(()) | st.just((("k", "v"),)),
    ),
)
def test_notifications_maker_makes_what_the_maker_makes(
    tos: list[str], values: tuple[Any, ...]
) -> None:
    """The generated loop, filled in as the stand-in or through object.__setattr__,
    makes the notifications the maker made, value for value (types too)."""
    ref, kind, version, event, topic, zh, en, at, note, details = values
    rest = (ref, kind, version, event, topic, zh, en, at, note, details)
    expected = _old_make(tos, "p:", *rest)
    assert fill_line(Notification, "n") is not None  # else both makers below are one
    for fill_in in (True, False):
        got = command.notifications_maker(fill_in)(tos, "p:", *rest)
        assert all(type(n) is Notification for n in got)
        assert _fields(got) == _fields(expected)


@given(note=st.none() | hostile_texts, data=mappings)
def test_notifications_say_what_notices_say(
    evaluating: tuple[Desk, str], note: Any, data: Mapping[str, Any]
) -> None:
    """A str note and a dict of short texts are written as notices.text and
    notices.details' general loop write them (the same values, of the same types)."""
    desk, ref = evaluating
    record = desk.get(ref)
    engine = desk.engine("requirement")
    t = engine.transition("evaluating", "accept")
    assert t is not None
    new = attrs.evolve(record, state="accepted", version=record.version + 1)
    now = desk.now()
    plain = command.notifications(desk, engine, t, record, new, now)
    got = command.notifications(desk, engine, t, record, new, now, note, data)
    # notices.details' general pairs (its dict of short texts is answered by a fast
    # path, which must give these very pairs)
    details = tuple((str(k), notices.text(v)) for k, v in data.items()) if data else ()
    said = notices.text(note) if note else None
    assert [n.recipient for n in got] == [n.recipient for n in plain] != []
    for n, p in zip(got, plain, strict=True):
        assert [(type(k), k, type(v), v) for k, v in n.details] == [
            (type(k), k, type(v), v) for k, v in details
        ]
        assert n.text_en == p.text_en + ("" if said is None else f"; note: {said}")
        assert n.text_zh == p.text_zh + ("" if said is None else f";说明:{said}")
        assert n.key == f"{new.ref}:{new.version}:{n.recipient}" == p.key
        assert n.note is note


def test_engine_run_cursor_and_guards() -> None:
    """The cursor made without __init__ carries the guards' context and reasons:
    a refused sign-off names the guard's reason, a passing one its destination."""
    with Desk.open("memory://", clock=FakeClock()) as desk:
        ref = to_evaluating(desk)
        engine = desk.engine("requirement")
        record = desk.get(ref)
        t = engine.transition("evaluating", "sign")
        assert t is not None
        shipping = Actor("ship", "Shipping", departments={"shipping"})
        for actor, department, blocked in (
            (ENG, "engineering", False),
            (shipping, "shipping", True),
        ):
            ctx = command.authorise(
                desk, engine, t, record, "sign", actor, None, {"department": department},
                desk.now(), dry=True,
            )  # fmt: skip
            if blocked:
                with pytest.raises(TransitionBlocked) as caught:
                    engine.run(ctx)
                assert [r.code for r in caught.value.reasons] == ["signoff.department_not_in_step"]
            else:
                assert engine.run(ctx) == "evaluating"
        other = receive(desk)
        with pytest.raises(NotAuthorized):
            desk.fire(other, "start_evaluation", actor=PRO)


@pytest.mark.parametrize(
    "data",
    [
        {"department": "engineering", "opinion": "a" * 500},
        {"opinion": "a" * 501},
        {"opinion": "x", "long": "名" * 501},
        {Blank("department"): "engineering"},
        {"department": Loud("engineering")},
        {"department": "engineering", "count": 3},
    ],
)
def test_notices_details_fast_pairs_are_the_general_ones(data: dict[Any, Any]) -> None:
    """A dict of short texts is answered by its own items; anything else (a long text,
    a str subclass, another value) by the general loop: the same pairs either way."""
    got = notices.details(data)
    general = tuple((str(k), notices.text(v)) for k, v in data.items())
    assert [(type(k), k, type(v), v) for k, v in got] == [
        (type(k), k, type(v), v) for k, v in general
    ]
    if all(type(k) is str and type(v) is str and len(v) <= 500 for k, v in data.items()):
        assert all(v is data[k] for k, v in got)  # the very objects, as the general loop gives
