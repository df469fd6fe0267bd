"""Diagrams and reference pages generated from lifecycle declarations.

``docs/lifecycles/<kind>.md`` is the output of :func:`markdown`; a test
regenerates it and fails when the committed page is stale
(``reqmgmt diagram --write docs/lifecycles`` refreshes them).
"""

from __future__ import annotations

import inspect
import re

from .lifecycle.base import Lifecycle, Transition
from .model import SIGNATURE_MEANINGS

__all__ = ["graphviz", "markdown", "mermaid"]


def _roles(t: Transition) -> str:
    if t.roles_from is not None:
        return "per record (route approver)"
    return ", ".join(sorted(t.roles)) if t.roles else "anyone"


def _independence(lc: Lifecycle, t: Transition) -> str:
    parties = lc.independence(t)
    if parties:
        return "not the " + ", ".join(p.name for p in parties)
    if t.independence_waived:
        return "waived"
    return ""


def mermaid(lc: Lifecycle) -> str:
    """A Mermaid ``stateDiagram-v2`` of the lifecycle, labels in zh-CN and English."""
    lines = ["stateDiagram-v2"]
    for s in lc.states:
        lines.append(f'    state "{s.zh}<br/>{s.en}" as {s.name}')
    lines.append(f"    [*] --> {lc.initial}: {lc.create_event}")
    for t in lc.all_transitions():
        for src in t.sources:
            lines.append(f"    {src} --> {t.dest}: {t.event}")
    for s in lc.states:
        if s.final:
            lines.append(f"    {s.name} --> [*]")
    return "\n".join(lines) + "\n"


def graphviz(lc: Lifecycle) -> str:
    """The lifecycle as Graphviz DOT."""
    lines = [f'digraph "{lc.kind}" {{', "    rankdir=LR;", "    node [shape=box, style=rounded];"]
    lines.append('    "__start" [shape=point];')
    for s in lc.states:
        shape = ", peripheries=2" if s.final else ""
        lines.append(f'    "{s.name}" [label="{s.zh}\\n{s.en}"{shape}];')
    lines.append(f'    "__start" -> "{lc.initial}" [label="{lc.create_event}"];')
    for t in lc.all_transitions():
        for src in t.sources:
            lines.append(f'    "{src}" -> "{t.dest}" [label="{t.event}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def markdown(lc: Lifecycle) -> str:
    """The reference page of a lifecycle: diagram, states, transitions, sign-offs."""
    out = [
        f"# {lc.zh} / {lc.en} lifecycle (`{lc.kind}`)",
        "",
        "<!-- Generated from the lifecycle declaration by "
        "`reqmgmt diagram --write docs/lifecycles`; do not edit. -->",
        "",
        "```mermaid",
        mermaid(lc).rstrip(),
        "```",
        "",
        "## States",
        "",
        "| state | 中文 | English | notes |",
        "|---|---|---|---|",
    ]
    for s in lc.states:
        notes = []
        if s.name == lc.initial:
            notes.append("initial")
        if s.final:
            notes.append("final")
        if s.waiting:
            notes.append("waiting on the customer")
        step = lc.signoff_step(s.name)
        if step is not None:
            listed = step.departments if isinstance(step.departments, tuple) else ("(per record)",)
            notes.append("sign-off: " + ", ".join(listed))
        out.append(f"| `{s.name}` | {s.zh} | {s.en} | {', '.join(notes)} |")
    out += [
        "",
        "## Transitions",
        "",
        "| event | from | to | 中文 | English | roles | note required | data | meaning "
        "| independent of |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    create = lc.creation()
    for t in (create, *lc.all_transitions()):
        sources = ", ".join(f"`{s}`" for s in t.sources) or "(new)"
        meaning = ""
        if t.meaning:
            zh, en = SIGNATURE_MEANINGS[t.meaning]
            meaning = f"{zh} {en}"
        out.append(
            f"| `{t.event}` | {sources} | `{t.dest}` | {t.zh} | {t.en} | {_roles(t)} | "
            f"{'yes' if t.note_required else ''} | {', '.join(t.requires)} | {meaning} | "
            f"{_independence(lc, t)} |"
        )
    out += _creation_inputs(lc)
    if lc.signoffs:
        out += ["", "## Sign-off steps (会签)", ""]
        for step in lc.signoffs:
            deps = (
                ", ".join(step.departments)
                if isinstance(step.departments, tuple)
                else "chosen per record by the rules"
            )
            where = ", ".join(f"`{s}`" for s in step.states)
            back = (
                f"sends the record back to `{step.rework}`"
                if step.rework
                else "ends the review where the record is"
            )
            out.append(
                f"- In {where}: {deps} each sign once per review round "
                f"(`{step.sign_event}`); `{step.decline_event}` {back}, with the opinion as "
                f"the reason. Signature meaning: {' '.join(SIGNATURE_MEANINGS[step.meaning])}. "
                f"A signer is not the {', '.join(step.independent_of) or '(anyone)'}; nobody "
                "signs twice in one round."
            )
    out += _duties(lc)
    return "\n".join(out) + "\n"


def _creation_inputs(lc: Lifecycle) -> list[str]:
    out = [
        "",
        "## Creation inputs",
        "",
        f"`{lc.create_event}` takes these fields and no others (`desk.create`, `create_many` "
        "and the desk's helpers alike); anything else is refused with a `ValidationError` "
        "naming the field. State, version, review rounds, sign-offs and whatever the rules "
        "decide are the engine's.",
    ]
    if "customer" in lc.input_names:
        out[-1] += (
            " A customer's category and flags come from the `customer_categories` and "
            "`customer_flags` vocabularies."
        )
    out += ["", "| input | required | vocabulary |", "|---|---|---|"]
    for i in lc.inputs:
        words = f"`{i.vocabulary}`" if i.vocabulary else ""
        out.append(f"| `{i.name}` | {'yes' if i.required else ''} | {words} |")
    if not lc.inputs:
        out.append("| (none declared: nothing can be created) | | |")
    if lc.against_store is not None and lc.against_store.__doc__:
        # The check against other records, as its docstring says it (first paragraph
        # after the summary line), in the creating transaction.
        paragraphs = inspect.cleandoc(lc.against_store.__doc__).split("\n\n")
        text = " ".join(" ".join(paragraphs[1:2] or paragraphs[:1]).split()).replace("``", "`")
        text = re.sub(r":\w+:`~?([^`]*)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
        out += ["", f"Checked against stored records in the creating transaction: {text}"]
    return out


def _duties(lc: Lifecycle) -> list[str]:
    """The separation-of-duties section: each approval, who may not give it, and why."""
    lines = ["", "## Separation of duties", ""]
    requesting = sorted({t.event for t in lc.all_transitions() if t.requests_approval})
    if requesting:
        lines += [
            "Requesting events (their actor becomes the `requester` until the next review "
            "round): " + ", ".join(f"`{e}`" for e in requesting) + ".",
            "",
        ]
    parties = {p.name: p for t in lc.all_transitions() for p in lc.independence(t)}
    for p in parties.values():
        lines.append(f"- `{p.name}`: whoever {p.says.format(ref='the record', round='n')}")
    if parties:
        lines.append("")
    seen: set[tuple[str, str]] = set()
    for t in lc.all_transitions():
        if t.meaning != "approval" and not t.independent_of and not t.independent:
            continue
        text = _independence(lc, t)
        if t.independence_waived:
            text = f"no independence: {t.independence_waived}"
        if (t.event, text) in seen:
            continue
        seen.add((t.event, text))
        lines.append(f"- `{t.event}` ({t.en}): {text or 'none declared'}")
    return lines
