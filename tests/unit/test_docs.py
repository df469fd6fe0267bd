"""Docs stay in step with the code: hooks documented, diagrams fresh."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from reqmgmt import diagram, make_plugin_manager
from reqmgmt.lifecycle import BUILTIN_LIFECYCLES

DOCS = Path(__file__).resolve().parents[2] / "docs"


def hook_names() -> list[str]:
    pm = make_plugin_manager()
    return sorted(n for n in dir(pm.hook) if n.startswith("reqmgmt_"))


def documented_sections() -> dict[str, str]:
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    return {s.split("(", 1)[0].strip("` \n"): s for s in sections}


@pytest.mark.parametrize("name", hook_names())
def test_every_hook_is_documented(name: str) -> None:
    """docs/hooks.md has a section for the hook, naming each parameter and an example."""
    sections = documented_sections()
    assert name in sections, f"docs/hooks.md has no '### {name}(...)' section"
    section = sections[name]
    from reqmgmt import hookspecs

    params = inspect.signature(getattr(hookspecs, name)).parameters
    for param in params:
        assert f"`{param}`" in section, f"docs/hooks.md: {name} does not describe `{param}`"
    assert "```python" in section, f"docs/hooks.md: {name} has no example"
    assert "Called" in section or "called" in section


def test_no_hook_is_documented_that_does_not_exist() -> None:
    """Every documented hook is a real one."""
    assert sorted(documented_sections()) == hook_names()


@pytest.mark.parametrize("kind", sorted(BUILTIN_LIFECYCLES))
def test_lifecycle_pages_are_generated_from_the_declarations(kind: str) -> None:
    """docs/lifecycles/<kind>.md equals what the declaration generates now."""
    page = DOCS / "lifecycles" / f"{kind}.md"
    expected = diagram.markdown(BUILTIN_LIFECYCLES[kind])
    assert page.exists(), f"run: reqmgmt diagram --write docs/lifecycles ({page} missing)"
    assert page.read_text(encoding="utf-8") == expected, (
        f"{page} is stale; run: reqmgmt diagram --write docs/lifecycles"
    )


def test_rules_page_quotes_the_default_requirement_deadlines() -> None:
    """docs/rules.md states the hours the default requirement_deadline table gives."""
    from reqmgmt.rules import default_rules

    table = default_rules().tables["requirement_deadline"]
    hours = {}
    for row in table.rows:
        match = re.fullmatch(r"priority == '(\w+)'", row.when.source)
        assert match, f"unexpected requirement_deadline condition {row.when.source!r}"
        hours[match.group(1)] = (row.then["hours"], row.then["remind_before_hours"])
    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("| `requirement_deadline`"))
    answer = ", ".join(f"{p} {h}" for p, (h, _) in hours.items())
    lead = ", ".join(str(r) for _, r in hours.values())
    assert f"({answer})" in line, f"docs/rules.md should say ({answer}): {line}"
    assert f"({lead} hours)" in line, f"docs/rules.md should give the leads ({lead} hours): {line}"


@pytest.mark.parametrize("kind", sorted(BUILTIN_LIFECYCLES))
def test_every_event_data_key_is_described_on_the_lifecycle_page(kind: str) -> None:
    """Each required and optional data key has a description, and the page lists it."""
    lc = BUILTIN_LIFECYCLES[kind]
    page = (DOCS / "lifecycles" / f"{kind}.md").read_text(encoding="utf-8")
    # A lifecycle whose events take no data (a survey is only recorded) has no such section.
    assert ("## Event data" in page) == any(t.requires or t.optional for t in lc.transitions)
    for t in lc.all_transitions():
        for key in (*t.requires, *t.optional):
            what = lc.describe_data(key)
            assert what, f"{kind}: data key {key!r} of {t.event!r} has no data_help entry"
            assert f"| `{key}` |" in page
        for key in t.optional:
            assert f"`{key}` (optional)" in page, f"{kind}: {key!r} not shown as optional"


def test_the_contract_page_drafts_every_document_type() -> None:
    """docs/lifecycles/contract.md shows each document type and channel being drafted."""
    page = (DOCS / "lifecycles" / "contract.md").read_text(encoding="utf-8")
    for word in ("contract", "order", "verbal", "quotation", "bid"):
        assert f'document="{word}"' in page, f"no example drafts a {word}"
    assert 'channel="foreign_trade"' in page
    assert "sample_review" in page


def test_the_recipient_table_in_hooks_md_is_generated_and_fresh() -> None:
    """docs/hooks.md's recipient table equals what the declarations and default rules give."""
    from reqmgmt.rules import default_rules

    expected = diagram.recipients(
        [BUILTIN_LIFECYCLES[k] for k in sorted(BUILTIN_LIFECYCLES)], default_rules()
    )
    page = (DOCS / "hooks.md").read_text(encoding="utf-8")
    assert expected in page, "stale; run: reqmgmt diagram --recipients docs/hooks.md"


def test_every_recipient_is_one_a_host_can_route() -> None:
    """Each department a lifecycle names is in the vocabulary; per-record ones say whom."""
    from reqmgmt.rules import default_rules

    departments = default_rules().vocabulary("departments")
    for lc in BUILTIN_LIFECYCLES.values():
        for t in (lc.creation(), *lc.all_transitions()):
            for r in t.notify:
                kind, _, name = r.partition(":")
                assert r == "customer" or kind in ("role", "department"), r
                if kind == "department" and name != "*":  # "*": every department
                    assert name in departments, f"{lc.kind}.{t.event} notifies unknown {r!r}"
            if t.notify_from is not None:
                assert t.notify_from_says, f"{lc.kind}.{t.event}: notify_from_says missing"
