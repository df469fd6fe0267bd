"""Griffe extension for the API reference: the docstrings' Sphinx markup as Markdown.

The docstrings say ``:class:`ValidationError``` and ``:meth:`dispatch``` (Sphinx's
roles); Markdown would show the role as text.  Each role becomes the code name,
linked (mkdocs-autorefs, optional) to the object's entry in the API reference
when the name resolves from where the docstring is and that object is shown;
otherwise it stays plain code.  A paragraph ending in ``::`` before an indented
example (Sphinx's literal block) ends in ``:``; Markdown shows the indented
block as code already.  mkdocs.yml loads this file by path.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj):`(~?)([\w.]+)(?:\(\))?`")
LITERAL_BLOCK = re.compile(r"(?<=\S)::\n(?=[ \t]*\n)")


def _target(obj: griffe.Object, name: str) -> str | None:
    """The full path ``name`` means in ``obj``'s docstring, or None when it does not resolve."""
    collection = obj.modules_collection
    if name in collection:
        return name
    head, _, rest = name.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        try:
            resolved = scope.resolve(head)
        except (griffe.NameResolutionError, griffe.AliasResolutionError, KeyError):
            scope = scope.parent
            continue
        return f"{resolved}.{rest}" if rest else resolved
    return None


def _rewrite(obj: griffe.Object) -> None:
    docstring = obj.docstring
    if docstring is None or ":" not in docstring.value:
        return

    def replace(match: re.Match[str]) -> str:
        short, name = match.group(1), match.group(2)
        shown = f"<code>{escape(name.rsplit('.', 1)[-1] if short else name)}</code>"
        target = _target(obj, name)
        if target is None:
            return shown
        return f'<autoref identifier="{escape(target)}" optional>{shown}</autoref>'

    docstring.value = LITERAL_BLOCK.sub(":\n", ROLE.sub(replace, docstring.value))


def _walk(obj: griffe.Object) -> None:
    _rewrite(obj)
    for member in obj.members.values():
        if not member.is_alias and isinstance(member, griffe.Object):
            _walk(member)


class SphinxRoles(griffe.Extension):
    """Rewrites the Sphinx roles of every docstring in a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        _walk(pkg)
