"""The interface's words in zh and en, and the person's language (a toggle or
Accept-Language); everything else comes from the library in both languages.

Every text the app writes itself is a word of :data:`WORDS`: the page's
words through :func:`say`, the ``expected`` of the app's own refusals
(``ValidationError``) through :func:`both`, which carries both languages
(tests/integration/test_webapp_edges.py walks the app's refusals).
"""

from __future__ import annotations

from typing import Any

from flask import request, session

from reqmgmt.i18n import Text

LANGUAGES = ("zh", "en")


#: The interface's own words; everything else comes from the library in both languages.
WORDS: dict[str, tuple[str, str]] = {
    "inbox": ("待办", "Inbox"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "who": ("请选择您的身份", "Who are you?"),
    "nothing": ("目前没有需要您处理的事项。", "Nothing waits for you now."),
    "record": ("单据", "Record"),
    "customer": ("客户", "Customer"),
    "state": ("状态", "State"),
    "actions": ("可执行操作", "What you can do"),
    "due": ("期限", "Due"),
    "overdue": ("已逾期", "overdue"),
    "left": ("剩余工作时间", "working time left"),
    "paused": ("等待客户, 计时暂停", "waiting on the customer, clock stopped"),
    "hours": ("小时", "h"),
    "version": ("版本", "version"),
    "position": ("流程位置", "Where it is"),
    "ways": ("从这里可以到", "Ways on from here"),
    "history": ("历史记录", "History"),
    "verified": ("审计链完整", "Audit chain intact"),
    "broken": ("审计链损坏", "Audit chain BROKEN"),
    "events": ("个事件", "events"),
    "signoffs": ("本轮会签", "Sign-offs of this round"),
    "forms": ("打印表单", "Printed forms"),
    "note": ("备注/理由", "Note / reason"),
    "opinion": ("意见", "Opinion"),
    "approve": ("同意", "Approve"),
    "decline": ("不同意", "Decline"),
    "department": ("部门", "Department"),
    "amend": ("合同变更", "Amend the contract"),
    "amend_reason": ("变更理由", "Reason for the change"),
    "new": ("新建", "New"),
    "create": ("创建", "Create"),
    "conflict": (
        "您打开页面之后, 其他人已修改了这张单据"
        " (您看到的是第 {expected} 版, 现在是第 {actual} 版)。"
        "您的操作未执行; 下面是最新状态, 请确认后再操作。",
        "Someone changed this record after you opened the page (you saw version {expected}, "
        "it is now version {actual}). Nothing was done; below is its current state: check it "
        "and act again.",
    ),
    "refused": ("操作被拒绝", "Refused"),
    "done": ("已完成", "Done"),
    "no_people": ("未知人员", "unknown person"),
    "lines": ("明细", "Lines"),
    "all_open": ("全部未结单据", "All open records"),
    "required": ("必填", "required"),
    "yes": ("是", "yes"),
    "line": ("行", "line"),
    "unit_price": ("单价", "unit price"),
    "quantity": ("数量", "quantity"),
    "delivery_date": ("交货日期", "delivery date"),
    "http_400": (
        "请求无效 (表单令牌缺失或已过期? 请刷新页面)",
        "Bad request (a missing or stale form token? reload the page)",
    ),
    "http_404": ("找不到该页面或单据", "No such page or record"),
    "http_405": ("此地址不接受这种请求", "This address does not take that request"),
    "http_413": ("提交的内容太大", "What was sent is too large"),
    "http_other": ("请求未能处理", "The request could not be handled"),
    "page": ("第 {page} / {pages} 页", "page {page} of {pages}"),
    "previous": ("上一页", "previous"),
    "next": ("下一页", "next"),
    "nothing_here": (
        "本页没有需要您处理的事项; 请看其他页。",
        "Nothing on this page waits for you; see the other pages.",
    ),
    "days": ("天", "days"),
    "far": ("(超过 {days} 天, 不计算工作时间)", "(over {days} days: working time not computed)"),
    # What a refusal of the app's own says is allowed (ValidationError's ``expected``).
    "x_ticked": ("勾选或不勾选", "a ticked box or none"),
    "x_max_chars": ("最多 {n} 个字符", "at most {n} characters"),
    "x_one_of": ("以下之一：{allowed}", "one of {allowed}"),
    "x_whole": ("只用数字写的整数 (0 至 999999999)", "a whole number written in digits"),
    "x_date": ("日期, 格式 YYYY-MM-DD", "a date YYYY-MM-DD"),
    "x_amount": ("金额, 如 1200 或 1200.50", "an amount like 1200 or 1200.50"),
    "x_decision": ("approve (同意) 或 decline (不同意)", "approve or decline"),
    "x_page": (
        "页码, 从 1 到 {pages} 的整数",
        "a page number, a whole number from 1 to {pages}",
    ),
}


def lang() -> str:
    """The person's language: the toggle's choice, else the browser's Accept-Language."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return "zh" if request.accept_languages.best_match(["en", "zh"]) == "zh" else "en"


def say(word: str, **params: object) -> str:
    """An interface word in the person's language."""
    zh, en = WORDS[word]
    return (zh if lang() == "zh" else en).format(**params)


def both(word: str, **params: object) -> Text:
    """An interface word in both languages (English ``str``, ``.zh`` Chinese): the
    ``expected`` of the app's own refusals, shown in the person's language."""
    zh, en = WORDS[word]
    return Text(en.format(**params), zh.format(**params))


def one_of(allowed: Any) -> Text:
    """The words "one of a, b, c" in both languages (the values as they are)."""
    return both("x_one_of", allowed=", ".join(map(str, allowed)))


def label(obj: Any) -> str:
    """The zh or en label of a State or Transition (``zh`` / ``en`` attributes)."""
    text = getattr(obj, lang(), "") or getattr(obj, "en", "")
    return str(text or getattr(obj, "name", "") or getattr(obj, "event", ""))
