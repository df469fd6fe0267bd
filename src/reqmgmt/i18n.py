"""Reasons and error messages in Chinese and English, under a stable code.

Every refusal the library gives (a guard's reason, a missing role, a
department that already signed...) is a :class:`Reason`: a ``str`` whose
text is the English sentence, so code and tests comparing strings keep
working, with three more attributes:

* ``code``: a stable dotted name (``signoff.already_signed``) a host can
  switch on; it never changes when the wording does;
* ``zh``: the same sentence in Chinese (identifiers, refs and values stay as
  they are), for a host that shows Chinese forms;
* ``params``: the values it was formatted with.

``reason.en`` is ``str(reason)``; ``reason.text("zh")`` picks a language.
The errors of :mod:`reqmgmt.errors` carry ``code``, ``en`` and ``zh`` the
same way.  :data:`CATALOGUE` holds every code with its English and Chinese
template; ``reqmgmt messages`` prints it (docs/errors.md is generated from
it).  A host registers its own codes with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from attrs import frozen

__all__ = [
    "CATALOGUE",
    "LANGUAGES",
    "Reason",
    "Template",
    "Text",
    "has_cjk",
    "reason",
    "register",
    "render",
]

#: The languages every code has a text in.
LANGUAGES = ("en", "zh")

_EMPTY: Mapping[str, object] = MappingProxyType({})


class Text(str):
    """An English ``str`` that also knows its Chinese text (``zh``)."""

    __slots__ = ("zh",)
    zh: str

    def __new__(cls, en: str, zh: str) -> Text:
        self = super().__new__(cls, en)
        self.zh = zh
        return self

    @property
    def en(self) -> str:
        """The English text (``str(self)``)."""
        return str.__str__(self)

    def text(self, lang: str) -> str:
        """The text in ``lang`` (``"en"`` or ``"zh"``)."""
        return self.zh if lang == "zh" else str.__str__(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str.__str__(self), self.zh))


class Reason(Text):
    """Why something was refused: English ``str`` plus ``code``, ``zh`` and ``params``.

    Build one with :func:`reason` from a registered code.  A plain string a
    host gives where a reason is expected becomes ``Reason.plain(text)``
    (code ``text``, the same text in both languages).
    """

    __slots__ = ("code", "params")
    code: str
    params: Mapping[str, object]

    def __new__(cls, code: str, en: str, zh: str, params: Mapping[str, object] = _EMPTY) -> Reason:
        self = str.__new__(cls, en)
        self.zh = zh
        self.code = code
        self.params = params
        return self

    @classmethod
    def plain(cls, text: str) -> Reason:
        """A reason given as plain text (a host's): code ``text``, en = zh = the text."""
        if isinstance(text, Reason):
            return text
        if isinstance(text, Text):
            return cls("text", str.__str__(text), text.zh, {"text": str.__str__(text)})
        text = str(text)
        return cls("text", text, text, {"text": text})

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, str.__str__(self), self.zh, dict(self.params)))


@frozen
class Template:
    """A code's English and Chinese template (``str.format`` syntax, the same fields)."""

    code: str
    en: str
    zh: str
    #: What the code is about (the catalogue's section).
    group: str
    #: One of reqmgmt's own codes (a host's, from :func:`register`, are not).
    library: bool = False


#: Every code reqmgmt (and a host, through :func:`register`) gives, by code.
CATALOGUE: dict[str, Template] = {}


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a CJK ideograph (a check that a zh text is Chinese)."""
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


def register(code: str, en: str, zh: str, *, group: str = "host") -> Template:
    """Add ``code`` with its templates; the same code twice must say the same."""
    problems = []
    if not code or not all(part.isidentifier() for part in code.split(".")):
        problems.append(f"code {code!r}: expected dotted lower-case identifiers")
    if not en.strip() or not zh.strip():
        problems.append(f"code {code!r}: expected an English and a Chinese text")
    elif not has_cjk(zh):
        problems.append(f"code {code!r}: the zh text {zh!r} holds no Chinese")
    template = Template(code, en, zh, group)
    known = CATALOGUE.get(code)
    if known is not None and (known.en, known.zh) != (en, zh):
        problems.append(f"code {code!r} is registered already with other texts")
    if problems:
        from .errors import ConfigError  # errors imports this module

        raise ConfigError("reqmgmt.i18n.register", problems)
    CATALOGUE[code] = template
    return template


def render(value: object, lang: str) -> object:
    """A parameter as shown in ``lang``: a :class:`Text` in its language, a tuple joined."""
    if isinstance(value, Text):
        return value.zh if lang == "zh" else str.__str__(value)
    if isinstance(value, tuple):
        return ("；" if lang == "zh" else "; ").join(str(render(v, lang)) for v in value)
    return value


def reason(code: str, **params: object) -> Reason:
    """The reason ``code`` (a registered one) formatted with ``params``."""
    template = CATALOGUE.get(code)
    if template is None:
        from .errors import ConfigError

        raise ConfigError("reqmgmt.i18n.reason", f"unknown code {code!r}; register it first")
    if params:
        en = template.en.format(**{k: render(v, "en") for k, v in params.items()})
        zh = template.zh.format(**{k: render(v, "zh") for k, v in params.items()})
        return Reason(code, en, zh, MappingProxyType(params))
    return Reason(code, template.en, template.zh)


def _library(group: str, entries: Mapping[str, tuple[str, str]]) -> None:
    # Checked by tests/unit/test_i18n.py rather than on every import.
    for code, (en, zh) in entries.items():
        CATALOGUE[code] = Template(code, en, zh, group, True)


# --- the library's own codes ------------------------------------------------------------
# English texts are the ones reqmgmt always gave (tests and hosts compare them).

# A host's plain-text reason, shown as given in both languages (the one code
# whose zh text need not be Chinese).
CATALOGUE["text"] = Template("text", "{text}", "{text}", "a host's plain text", True)

_library(
    "sign-off (会签)",
    {
        "signoff.incomplete": (
            "sign-off round {round} still needs: {missing}",
            "第 {round} 轮会签尚缺以下部门签字：{missing}",
        ),
        "signoff.no_review": (
            "no review waits for signatures in state {state!r}",
            "状态 {state!r} 下没有等待会签的评审",
        ),
        "signoff.department_not_in_step": (
            "department {department!r} does not sign in state {state!r}; "
            "departments that sign here: {required}",
            "部门 {department!r} 不在状态 {state!r} 下会签；在此会签的部门：{required}",
        ),
        "signoff.already_signed": (
            "{department} already signed in review round {round} (by {actor}); "
            "each department signs once per round",
            "{department} 已在第 {round} 轮评审中会签（签字人 {actor}）；每个部门每轮只签一次",
        ),
        "signoff.signer_already_signed": (
            "{actor} already signed for {department} in review round {round}; "
            "one person signs once per round",
            "{actor} 已在第 {round} 轮评审中代表 {department} 会签；每人每轮只能签一次",
        ),
        "signoff.not_eligible": (
            "{actor} is not an eligible signer for {department}",
            "{actor} 无权代表 {department} 会签",
        ),
    },
)

_library(
    "authorisation",
    {
        "authorize.role": (
            "{action} needs one of the roles {roles}; {actor} has {has}",
            "{action} 需要以下角色之一：{roles}；{actor} 的角色：{has}",
        ),
        "authorize.vetoed": (
            "refused by reqmgmt_authorize of plugin {plugins}",
            "插件 {plugins} 的 reqmgmt_authorize 拒绝了此操作",
        ),
        "independence.approve": (
            "{actor} {party} and may not approve it: no self-approval",
            "{actor} {party}，不能批准：不得自我批准",
        ),
        "independence.sign": (
            "{actor} {party} and may not sign it: no self-approval",
            "{actor} {party}，不能会签：不得自我批准",
        ),
        "guard.refused": ("a guard refused", "前置条件不满足，操作被拒绝"),
    },
)

_library(
    "input",
    {
        "input.note_required": (
            "a note saying why: {event!r} requires one",
            "一条说明原因的备注：{event!r} 必须填写备注",
        ),
        "input.note_type": ("a string", "一段文字"),
        "input.unknown_data": (
            "only {accepted} for {event!r}",
            "{event!r} 可接受的数据：{accepted}",
        ),
        "input.data_required": (
            "a value: {event!r} requires {key!r}",
            "一个值：{event!r} 必须提供 {key!r}",
        ),
    },
)

_library(
    "requirement (客户需求)",
    {
        "plan.not_sent_to": (
            "the delivery plan of {ref} did not go to {department!r}; it went to: {sent}",
            "{ref} 的交货计划表未发给 {department!r}；已发给：{sent}",
        ),
        "plan.already_signed": (
            "{department} signed for the delivery plan already ({actor})",
            "{department} 已签收交货计划表（签收人 {actor}）",
        ),
        "plan.not_a_member": (
            "{actor} is not in {department} and may not sign for it",
            "{actor} 不属于 {department}，不能代其签收",
        ),
        "import.evaluation_confirmed_already": (
            "the customer confirmed the evaluation of round {round} already (recorded by {actor})",
            "客户已确认第 {round} 轮评估结果（登记人 {actor}）",
        ),
        "import.evaluation_unconfirmed": (
            "the customer has not confirmed the evaluation of round {round} "
            "(customer_confirms_evaluation first)",
            "客户尚未确认第 {round} 轮评估结果（请先执行 customer_confirms_evaluation）",
        ),
        "import.form_confirmed_already": (
            "the customer confirmed its section of the import approval form already",
            "客户已确认需求导入核准单中的客户栏",
        ),
        "requirement.not_of_the_company": (
            "{actor!r} has no role and no department; remarks and identified requirements are "
            "added by someone of the company (and whoever reqmgmt_authorize lets through)",
            "{actor!r} 没有角色也不属于任何部门；"
            "备注和识别的要求须由公司人员添加（并经 reqmgmt_authorize 许可）",
        ),
    },
)

_library(
    "contract (合同)",
    {
        "contract.no_amendment": (
            "no amendment is waiting for review",
            "没有等待评审的合同变更",
        ),
        "contract.amendment_in_review": (
            "an amendment ({fields}) is in review (合同变更评审); approve or decline it first",
            "合同变更（{fields}）正在评审中（合同变更评审）；请先批准或驳回该变更",
        ),
        "contract.amendment_before_replacement": (
            "an amendment ({fields}) is in review (合同变更评审); approve or decline it before "
            "a replacement line is added",
            "合同变更（{fields}）正在评审中（合同变更评审）；请先批准或驳回该变更，再添加换货行",
        ),
        "contract.read_back_missing": (
            "a verbal order needs the customer's read-back (复述) confirmation: "
            "pass read_back=True with what the customer confirmed",
            "口头订单需要客户复述确认：请传入 read_back=True 及客户确认的内容",
        ),
        "contract.not_all_shipped": (
            "not everything has shipped: {open_lines}",
            "尚未全部出货：{open_lines}",
        ),
        "contract.open_line": (
            "line {line}: {open} open",
            "第 {line} 行未交 {open}",
        ),
        "contract.self_reviewed_route": (
            "route {route!r} is reviewed by the signatory himself (自行评审): the drafter "
            "fires self_review, the customer's read-back is the control",
            "评审路线 {route!r} 由签约人自行评审：由起草人执行 self_review，以客户复述确认为控制",
        ),
        "contract.not_self_reviewed": (
            "route {route!r} is not self-reviewed; it needs an approval by someone who "
            "neither drafted, submitted nor signed it (approve)",
            "评审路线 {route!r} 不属于自行评审；须由未起草、未提交、未会签的人批准（approve）",
        ),
        "contract.not_the_signatory": (
            "only the signatory who took the order, {signatory!r}, reviews it himself "
            "(自行评审); {actor!r} may not",
            "只有接单的签约人 {signatory!r} 可以自行评审；{actor!r} 不可以",
        ),
        "contract.quotation_not_fulfilled": (
            "a quotation is not fulfilled; an accepted one becomes an order (convert_to_order)",
            "报价单本身不履行；客户接受的报价单转为订单（convert_to_order）",
        ),
        "contract.not_a_quotation": (
            "only a quotation becomes an order; this is a {document}",
            "只有报价单能转为订单；此单据是 {document}",
        ),
    },
)

_library(
    "returns and complaints (退货与客诉)",
    {
        "return.no_goods": (
            "a complaint without goods has nothing to receive; send it to quality",
            "没有退货的客诉无货可收；请转交品质部",
        ),
        "return.goods_first": (
            "returned goods go to quality after materials received them (receive_goods)",
            "退货须先由货仓部收货（receive_goods），再转交品质部",
        ),
        "return.outside_window": (
            "returned {days} days after shipment, outside the return window ({matched}); "
            "quality may accept it with override_reason",
            "出货后 {days} 天才退货，超出退货期限（{matched}）；"
            "品质部可填写 override_reason 破例受理",
        ),
        "return.capa_due_on": (
            "a date from {first} (the day the return was reported) to {last} ({years} years ahead)",
            "{first}（退货登记当日）至 {last}（{years} 年内）之间的日期",
        ),
        "return.capa_required": (
            "the rules require a CAPA (纠正预防措施): open it and have it verified first",
            "规则要求纠正预防措施（CAPA）：请先开立并经验证",
        ),
    },
)

_library(
    "errors",
    {
        "error": ("{message}", "出错：{message}"),
        "error.usage": ("{message}", "命令行用法有误：{message}"),
        "error.validation": (
            "{place}: got {value}; expected {expected}",
            "{place}：收到的值 {value} 不可接受；要求：{expected}",
        ),
        "error.config": ("{location}: {problem}", "{location} 配置有误：{problem}"),
        "error.config.many": (
            "{location}: {count} problems\n{problems}",
            "{location} 配置有 {count} 处错误：\n{problems}",
        ),
        "error.not_found": ("record {ref!r} not found{hint}", "找不到记录 {ref!r}{hint}"),
        "error.not_found.version": (
            "version {version} of record {ref!r} not found{hint}",
            "找不到记录 {ref!r} 的第 {version} 版{hint}",
        ),
        "error.invalid_transition": (
            "{kind} {ref}: event {event!r} is not allowed in state {state!r}; "
            "events allowed there: {allowed}",
            "{kind} {ref}：状态 {state!r} 下不允许事件 {event!r}；该状态允许的事件：{allowed}",
        ),
        "error.not_authorized": (
            "{ref}: {actor!r} may not fire {event!r}: {reasons}",
            "{ref}：{actor!r} 无权执行 {event!r}：{reasons}",
        ),
        "error.transition_blocked": (
            "{where}{event!r} in state {state!r} blocked: {reasons}",
            "{where}状态 {state!r} 下的 {event!r} 被阻止：{reasons}",
        ),
        "error.transition_blocked.bare": (
            "{where}blocked: {reasons}",
            "{where}操作被阻止：{reasons}",
        ),
        "error.hook": (
            "plugin {plugin!r}, hook {hook}: {answer}; expected {expected}",
            "插件 {plugin!r} 的钩子 {hook} 回答有误：{answer}；应为：{expected}",
        ),
        "error.conflict.exists": (
            "{ref}: a record with this reference already exists (version {actual})",
            "{ref}：已有使用此编号的记录（第 {actual} 版）",
        ),
        "error.conflict.missing": (
            "{ref}: expected version {expected} but the record does not exist",
            "{ref}：预期第 {expected} 版，但该记录不存在",
        ),
        "error.conflict.no_such_version": (
            "{ref}: version {expected} does not exist; the record is at version {actual}; "
            "send the version you read (at most {actual})",
            "{ref}：第 {expected} 版不存在；该记录目前是第 {actual} 版；"
            "请提交您读取到的版本（不大于 {actual}）",
        ),
        "error.conflict.version": (
            "{ref}: expected version {expected} but the stored version is {actual}; "
            "reload the record and retry",
            "{ref}：预期第 {expected} 版，但已保存的是第 {actual} 版（已被他人修改）；"
            "请重新加载记录后重试",
        ),
        "error.import_failed": (
            "import of {kind} records: row {row} refused: {cause}; nothing of its batch "
            "was written, the {committed} rows before the batch were; "
            "fix the row and resume from row {committed}",
            "导入 {kind} 记录：第 {row} 行被拒绝：{cause}；该批次没有写入任何内容，"
            "此批之前的 {committed} 行已写入；请修正该行后从第 {committed} 行继续导入",
        ),
        "error.rule": (
            "table {table!r}{row}: {reason}; facts {facts}; fix the rule set "
            "(reqmgmt rules check) or the facts",
            "规则表 {table!r}{row} 无法判定：{reason}；事实 {facts}；"
            "请修正规则集（reqmgmt rules check）或事实数据",
        ),
        "error.tampered": (
            "{ref}: the stored record was changed outside reqmgmt: {what}{detail}; "
            "nothing was done. Run `reqmgmt verify --db URL` (or desk.verify_history) "
            "to see what changed, and restore the record from a backup",
            "{ref}：已保存的记录在 reqmgmt 之外被改动：{what}{detail}；未执行任何操作。"
            "请运行 `reqmgmt verify --db URL`（或 desk.verify_history）查看改动，"
            "并从备份恢复该记录",
        ),
        "error.store_unavailable": (
            "cannot open the store {url}: {problem}",
            "无法打开存储 {url}：{problem}",
        ),
        "error.no_database": (
            "there is no reqmgmt database at {url} ({problem}); check the URL, "
            "or create one with: reqmgmt db upgrade '{url}'",
            "{url} 处没有 reqmgmt 数据库（{problem}）；请检查 URL，"
            "或用以下命令创建：reqmgmt db upgrade '{url}'",
        ),
    },
)


_PAGE_HEAD = """\
# Reason and error codes

<!-- Generated by `reqmgmt messages --write docs/errors.md`; do not edit. -->

Every refusal reqmgmt gives and every error it raises has a stable **code**
and a text in English and Chinese.  A refusal (a guard's reason, a missing
role, a department that already signed) is a `reqmgmt.i18n.Reason`: a `str`
whose text is the English sentence (so `str()` and string comparisons keep
working) with `code`, `zh` and `params` (the values it was formatted with).
They are the `reasons` of `NotAuthorized` and `TransitionBlocked` and of the
answers of `Desk.can()` (an error's own code and texts where an error said
no).  Every error (`reqmgmt.errors`) has `code`, `params`, `en` (which is
`str(exc)`) and `zh`; `exc.text("zh")` picks a language.

```python
from reqmgmt import Actor, Customer, Desk, NotAuthorized

desk = Desk.open("memory://")
clerk = Actor("clerk", roles={"sales"})
req = desk.requirements.receive(
    customer=Customer("HK-001", "Hong Kong Trading Ltd"), description="冲压支架", actor=clerk
)
desk.fire(req.ref, "start_evaluation", actor=clerk)
(reason,) = desk.can(req.ref, "accept", actor=clerk).reasons
assert reason.code == "signoff.incomplete"
assert reason == "sign-off round 1 still needs: engineering, materials, production"
assert reason.zh == "第 1 轮会签尚缺以下部门签字：engineering, materials, production"
try:
    desk.fire(req.ref, "accept", actor=Actor("visitor"), delivery_plan="week 12")
except NotAuthorized as err:
    assert err.code == "error.not_authorized"
    assert err.reasons[0].code == "authorize.role"
    print(err.zh)  # REQ-…：'visitor' 无权执行 'accept'：执行 'accept' 需要以下角色之一：sales；…
```

Identifiers, refs, names and values stay as they are in both languages;
texts a host or a rule set supplies (a plugin's reason, a `ConfigError`'s
problems, the `expected` of most `ValidationError`s) are shown as given.  A
plain string a host plugin gives as a reason (`TransitionBlocked("credit
limit reached")`) gets the code `text`, with the same text in both
languages; a host gives Chinese by passing a `Reason` of its own code,
registered with `reqmgmt.i18n.register(code, en, zh)`.

The codes, with their templates (`str.format` fields in braces):
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", "<br>")


def catalogue_markdown() -> str:
    """docs/errors.md: reqmgmt's codes with their templates, by group."""
    groups: dict[str, list[Template]] = {}
    for template in CATALOGUE.values():
        if template.library:
            groups.setdefault(template.group, []).append(template)
    out = [_PAGE_HEAD]
    for group, templates in groups.items():
        out.append(f"\n## {group}\n\n| code | English | 中文 |\n|---|---|---|\n")
        for t in sorted(templates, key=lambda t: t.code):
            out.append(f"| `{t.code}` | {_cell(t.en)} | {_cell(t.zh)} |\n")
    return "".join(out)
