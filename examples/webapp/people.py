"""The demo's people and customers, and the little the example's ERP answers.

The ids, roles and departments are those ``reqmgmt demo`` acts with, so the
web app signs in as the people whose records the demo's database holds (a test
keeps the two lists equal).  A real host takes them from its login and org chart.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from reqmgmt import Actor, Customer, Record, hookimpl

#: Everyone the person picker offers, by id (the allow-list of the sign-in form).
PEOPLE: dict[str, Actor] = {
    a.id: a
    for a in (
        Actor("zhang.wei", "张伟 (发货部)", departments={"shipping"}, roles={"sales"}),
        Actor("zhou.min", "周敏 (市场部)", departments={"sales"}, roles={"sales"}),
        Actor("wu.qiang", "吴强 (市场部)", departments={"sales"}, roles={"sales"}),
        Actor("li.na", "李娜 (工程部)", departments={"engineering"}),
        Actor("wang.fang", "王芳 (资材部)", departments={"materials"}, roles={"materials"}),
        Actor("liu.yang", "刘洋 (生产部)", departments={"production"}, roles={"production"}),
        Actor("chen.jing", "陈静 (品质部)", departments={"quality"}, roles={"quality"}),
        Actor("lin.qm", "林经理 (品质经理)", roles={"quality_manager"}),
        Actor("xu.qd", "徐总监 (品质总监)", roles={"quality_manager"}),
        Actor("he.sm", "何经理 (营业经理)", roles={"sales_manager"}),
        Actor("chen.vp", "陈副总", roles={"vp"}),
    )
}

#: The demo's customers, the choices of the intake forms.
CUSTOMERS: dict[str, Customer] = {
    c.id: c
    for c in (
        Customer(
            "HK-001", "香港客户 Hong Kong Trading Ltd", category="important", flags={"foreign"}
        ),
        Customer("C-100", "华南五金 South China Hardware"),
        Customer("C-200", "新客户 New Customer Co.", flags={"new"}),
    )
}


class ExampleErp:
    """What only the ERP knows, as far as the example's forms ask it."""

    def __init__(self) -> None:
        self._projects = itertools.count(1)

    @hookimpl
    def reqmgmt_subcontractors(self, record: Record) -> Sequence[str]:
        return ("宏达五金", "新华冲压")  # the approved subcontractors 外包加工商清单

    @hookimpl
    def reqmgmt_design_project(self, record: Record, novelty: str, note: str) -> str:
        return f"DP-{record.ref}-{next(self._projects)}"
