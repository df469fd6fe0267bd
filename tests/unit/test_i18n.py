"""Reasons and errors carry a stable code and a Chinese and English text (docs/errors.md)."""

from __future__ import annotations

import pickle
import re
import string
from pathlib import Path

import pytest

import reqmgmt.commandline
from reqmgmt import Actor, Desk, hookimpl
from reqmgmt.errors import (
    ConfigError,
    ConflictError,
    HookError,
    ImportFailed,
    InvalidTransition,
    NoDatabase,
    NotAuthorized,
    NotFound,
    ReqMgmtError,
    RuleError,
    StoreUnavailable,
    TamperedRecord,
    TransitionBlocked,
    ValidationError,
)
from reqmgmt.i18n import CATALOGUE, Reason, Text, catalogue_markdown, has_cjk, reason, register
from reqmgmt.lifecycle import BUILTIN_LIFECYCLES
from reqmgmt.lifecycle.base import PARTIES
from reqmgmt.model import Record
from reqmgmt.testing import FakeClock

from ..conftest import CLERK, ENG, OUTSIDER, receive, sign_all, to_evaluating

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "reqmgmt"

#: One instance of every error class (a new class needs one here).
SAMPLES: dict[type[ReqMgmtError], ReqMgmtError] = {
    ReqMgmtError: ReqMgmtError("something went wrong"),
    ValidationError: ValidationError("quantity", -1, "a positive whole number", where="REQ-1"),
    ConfigError: ConfigError("rules.toml", ["a", "b"]),
    NotFound: NotFound("REQ-2026-000001", version=3, hint="versions 1 to 2 exist"),
    InvalidTransition: InvalidTransition("REQ-1", "requirement", "closed", "accept", []),
    NotAuthorized: NotAuthorized("REQ-1", "accept", "bob", ["plain reason"]),
    TransitionBlocked: TransitionBlocked("credit limit").locate("REQ-1", "accept", "evaluating"),
    HookError: HookError("credit", "reqmgmt_authorize", "'yes'", "True, False or None"),
    ConflictError: ConflictError("REQ-1", 2, 3),
    ImportFailed: ImportFailed("requirement", 4, NotFound("C-9"), ["REQ-1"]),
    RuleError: RuleError("return_window", "r1", {"days": 3}, "division by zero"),
    TamperedRecord: TamperedRecord("REQ-1", ["state"], "state says closed"),
    StoreUnavailable: StoreUnavailable("postgresql://h/db", "connection refused"),
    NoDatabase: NoDatabase("sqlite:///x.db"),
    reqmgmt.commandline.UsageError: reqmgmt.commandline.UsageError("--since: not a time"),
}


def _subclasses(cls: type[ReqMgmtError]) -> list[type[ReqMgmtError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out += _subclasses(sub)
    return out


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_code_has_an_english_and_a_chinese_text() -> None:
    assert len(CATALOGUE) > 40
    for code, t in CATALOGUE.items():
        if not t.library:
            continue  # a host's, registered by another test or a doc example
        assert t.code == code
        assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", code), code
        assert t.en.strip(), code
        assert t.zh.strip(), code
        assert _fields(t.en) == _fields(t.zh), f"{code}: the two texts take other fields"
        if code != "text":  # a host's plain text, shown as given
            assert has_cjk(t.zh), f"{code}: the zh text holds no Chinese"


def test_every_code_in_the_source_is_catalogued_and_every_catalogued_one_used() -> None:
    source = {p: p.read_text(encoding="utf-8") for p in SRC.rglob("*.py")}
    used = set()
    for text in source.values():
        used |= set(re.findall(r"(?:reason|_say|refuses)\(\s*\"([a-z_.]+)\"", text))
        used |= set(re.findall(r"code = \"([a-z_.]+)\"", text))
        used |= set(re.findall(r"\"((?:error|independence|signoff)\.[a-z_.]+)\"", text))
    assert used - set(CATALOGUE) == set()
    elsewhere = "".join(t for p, t in source.items() if p.name != "i18n.py")
    own = [c for c, t in CATALOGUE.items() if t.library]
    unused = [c for c in own if c != "text" and f'"{c}"' not in elsewhere]
    assert unused == []


def test_every_error_class_has_a_code_and_both_texts() -> None:
    classes = _subclasses(ReqMgmtError)
    assert set(classes) <= set(SAMPLES), "add a sample of the new error class to SAMPLES"
    for cls, exc in SAMPLES.items():
        assert type(exc) is cls
        assert exc.code in CATALOGUE, cls
        assert cls is ReqMgmtError or exc.code != "error", f"{cls.__name__} has no code of its own"
        assert exc.en == str(exc) == exc.text("en")
        assert exc.zh == exc.text("zh")
        assert has_cjk(exc.zh), cls
        assert exc.zh != exc.en


def test_error_texts() -> None:
    """The English stays as it always was; the Chinese keeps refs and values."""
    exc = SAMPLES[ConflictError]
    assert str(exc) == (
        "REQ-1: expected version 2 but the stored version is 3; reload the record and retry"
    )
    assert exc.code == "error.conflict.version"
    assert exc.params["actual"] == 3
    assert exc.zh == (
        "REQ-1：预期第 2 版，但已保存的是第 3 版（已被他人修改）；请重新加载记录后重试"
    )
    assert SAMPLES[NotFound].zh == "找不到记录 'REQ-2026-000001' 的第 3 版；versions 1 to 2 exist"
    assert SAMPLES[ConfigError].en == "rules.toml: 2 problems\n  - a\n  - b"
    assert SAMPLES[InvalidTransition].zh.endswith("该状态允许的事件：无")
    assert SAMPLES[InvalidTransition].en.endswith("events allowed there: none")
    failed = SAMPLES[ImportFailed]
    assert "找不到记录 'C-9'" in failed.zh
    assert "record 'C-9' not found" in failed.en
    blocked = TransitionBlocked(["a", "b"])
    assert (blocked.code, str(blocked), blocked.zh) == (
        "error.transition_blocked.bare",
        "blocked: a; b",
        "操作被阻止：a；b",
    )


def test_a_reason_is_the_english_string() -> None:
    r = reason("signoff.incomplete", round=2, missing="quality, sales")
    assert r == "sign-off round 2 still needs: quality, sales"
    assert isinstance(r, str)
    assert r.en == str(r) == r.text("en")
    assert r.zh == r.text("zh") == "第 2 轮会签尚缺以下部门签字：quality, sales"
    assert (r.code, dict(r.params)) == (
        "signoff.incomplete",
        {"round": 2, "missing": "quality, sales"},
    )
    copy = pickle.loads(pickle.dumps(r))
    assert (copy, copy.code, copy.zh) == (r, r.code, r.zh)
    plain = Reason.plain("over the credit limit")
    assert (plain.code, plain.zh, str(plain)) == ("text", plain, "over the credit limit")
    assert Reason.plain(r) is r
    with pytest.raises(ConfigError, match="unknown code"):
        reason("no.such_code")


def test_a_host_registers_its_codes() -> None:
    try:
        register(
            "host_test.credit", "over the credit limit of {customer}", "{customer} 超出信用额度"
        )
        assert reason("host_test.credit", customer="C-1").zh == "C-1 超出信用额度"
        assert not CATALOGUE["host_test.credit"].library
        assert "host_test" not in catalogue_markdown()
        with pytest.raises(ConfigError, match="holds no Chinese"):
            register("host_test.latin", "x", "no chinese here")
        with pytest.raises(ConfigError, match="registered already"):
            register("host_test.credit", "other", "其他")
        with pytest.raises(ConfigError, match="dotted"):
            register("Bad Code", "x", "中文")
        assert set(CATALOGUE) & {"host_test.latin", "Bad Code"} == set()
    finally:
        CATALOGUE.pop("host_test.credit", None)


def test_every_guard_declares_catalogued_codes() -> None:
    guards = 0
    for kind, lc in BUILTIN_LIFECYCLES.items():
        for t in lc.all_transitions():
            for guard in t.guards:
                codes = getattr(guard, "reason_codes", None)
                assert codes, f"{kind} {t.event}: guard {guard.__name__} declares no reason code"
                assert set(codes) <= set(CATALOGUE), guard.__name__
                guards += 1
        for party in (*PARTIES.values(), *lc.parties):
            assert has_cjk(party.zh), f"{kind}: party {party.name} has no Chinese text"
    assert guards >= 15


def test_refusals_carry_codes_and_chinese(clock: FakeClock) -> None:
    class CreditCheck:
        on = False

        @hookimpl
        def reqmgmt_before_transition(self, record: Record, event: str, actor: Actor) -> None:
            if self.on and event == "accept":
                raise TransitionBlocked("customer HK-001 is over its credit limit")

    check = CreditCheck()
    with Desk.open(clock=clock, plugins=[check]) as desk:
        ref = to_evaluating(desk)
        # A missing role, answered by can() and raised by fire().
        verdict = desk.can(ref, "accept", actor=OUTSIDER)
        assert [r.code for r in verdict.reasons] == ["authorize.role"]
        assert verdict.reasons[0].zh == ("执行 'accept' 需要以下角色之一：sales；nobody 的角色：无")
        with pytest.raises(NotAuthorized) as refused:
            desk.fire(ref, "accept", actor=OUTSIDER, delivery_plan="p")
        assert refused.value.reasons[0].code == "authorize.role"
        assert "nobody 的角色：无" in refused.value.zh
        # A guard: the sign-off is not complete.
        with pytest.raises(TransitionBlocked) as blocked:
            desk.fire(ref, "accept", actor=CLERK, delivery_plan="p")
        assert [r.code for r in blocked.value.reasons] == ["signoff.incomplete"]
        assert blocked.value.zh == (
            f"{ref}：状态 'evaluating' 下的 'accept' 被阻止："
            "第 1 轮会签尚缺以下部门签字：engineering, materials, production"
        )
        desk.sign(ref, department="engineering", actor=ENG)
        with pytest.raises(NotAuthorized) as twice:
            desk.sign(ref, department="engineering", actor=ENG)
        assert twice.value.reasons[0].code == "signoff.signer_already_signed"
        eng2 = Actor("eng2", departments={"engineering"})
        with pytest.raises(TransitionBlocked) as again:
            desk.sign(ref, department="engineering", actor=eng2)
        assert again.value.reasons[0].code == "signoff.already_signed"
        assert again.value.reasons[0].params["department"] == "engineering"
        # An independence refusal names the party in Chinese.
        drafter = Actor("e2", roles={"sales"}, departments={"engineering"})
        ref2 = receive(desk, actor=drafter)
        desk.fire(ref2, "start_evaluation", actor=drafter)
        verdict = desk.can(ref2, "sign", actor=drafter, department="engineering")
        codes = {r.code for r in verdict.reasons}
        assert "independence.sign" in codes, verdict.reasons
        zh = next(r.zh for r in verdict.reasons if r.code == "independence.sign")
        assert "提交了本次评审（第 1 轮）" in zh or f"起草了 {ref2}" in zh
        # A host's plain-text veto: the code "text", the same text in both languages.
        sign_all_but(desk, ref)
        check.on = True
        with pytest.raises(TransitionBlocked) as vetoed:
            desk.fire(ref, "accept", actor=CLERK, delivery_plan="p")
        (veto,) = vetoed.value.reasons
        assert (veto.code, veto.zh) == ("text", "customer HK-001 is over its credit limit")
        # An error said no: can() gives its code and Chinese.
        verdict = desk.can(ref, "no_such_event", actor=CLERK)
        assert verdict.reasons[0].code == "error.invalid_transition"
        assert has_cjk(verdict.reasons[0].zh)


def sign_all_but(desk: Desk, ref: str) -> None:
    """Sign the departments still missing (engineering signed already)."""
    from ..conftest import MAT, PRO

    desk.sign(ref, department="materials", actor=MAT, opinion="in stock")
    desk.sign(ref, department="production", actor=PRO, opinion="week 12")


def test_missing_input_says_so_in_chinese(desk: Desk) -> None:
    ref = to_evaluating(desk)
    sign_all(desk, ref)
    with pytest.raises(ValidationError) as missing:
        desk.fire(ref, "accept", actor=CLERK)
    assert str(missing.value).endswith("expected a value: 'accept' requires 'delivery_plan'")
    assert missing.value.expected.code == "input.data_required"  # type: ignore[attr-defined]
    assert missing.value.zh.endswith("要求：一个值：'accept' 必须提供 'delivery_plan'")


def test_texts_are_plain_str_subclasses() -> None:
    t = Text("none", "无")
    assert t == "none"
    assert t.zh == "无"
    assert t.text("zh") == "无"
    assert pickle.loads(pickle.dumps(t)).zh == "无"


def test_the_catalogue_page_is_current() -> None:
    page = ROOT / "docs" / "errors.md"
    assert page.exists(), "run: reqmgmt messages --write docs/errors.md"
    assert page.read_text(encoding="utf-8") == catalogue_markdown(), (
        "docs/errors.md is stale; run: reqmgmt messages --write docs/errors.md"
    )
    assert "errors.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


def test_cli_errors_in_the_chosen_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """$REQMGMT_LANG=zh: the message on stderr in Chinese; --json adds code and zh."""
    import json

    from reqmgmt.cli import main

    url = f"sqlite:///{tmp_path / 'typo.db'}"
    assert main(["outbox", "--db", url]) == 1
    assert "there is no reqmgmt database" in capsys.readouterr().err
    monkeypatch.setenv("REQMGMT_LANG", "zh_CN.UTF-8")
    assert main(["outbox", "--db", url, "--json"]) == 1
    out, err = capsys.readouterr()
    assert f"{url} 处没有 reqmgmt 数据库" in err
    error = json.loads(out)["error"]
    assert error["code"] == "error.no_database"
    assert error["message"].startswith("there is no reqmgmt database")
    assert error["zh"].startswith(f"{url} 处没有 reqmgmt 数据库")
    assert main(["report", "--db", url, "--since", "yesterday"]) == 2
    assert "命令行用法有误" in capsys.readouterr().err
