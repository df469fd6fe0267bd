"""People's ids: one person, one id.

An actor id is kept in one canonical form: Unicode NFKC, without surrounding
white space, case-folded.  ``"Clerk"``, ``" clerk "`` and ``"ｃｌｅｒｋ"`` are
the same person, ``clerk``.  Ids holding control, format (zero-width) or
line-separator characters are refused: ``"clerk\\u200b"`` looks like
``clerk`` on every screen and must not be a second person.

:class:`reqmgmt.Actor` stores its id in this form, so the audit trail shows
one person as one id; ids a ``reqmgmt_approvers`` plugin returns are put in
the same form before they are compared.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from .errors import ValidationError

__all__ = ["ACTOR_ID_MAX", "actor_key", "normalize_actor_id"]

#: Longest actor id, in characters (after normalisation).
ACTOR_ID_MAX = 64

# Control, format (zero-width, bidi marks), surrogate, private-use, line and
# paragraph separators: invisible or ambiguous on screen.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})

_EXPECTED = (
    f"a non-empty string of at most {ACTOR_ID_MAX} characters without control, "
    "zero-width or other invisible characters"
)


def _canonical(value: str) -> str:
    folded = unicodedata.normalize("NFKC", value).strip().casefold()
    # Case folding can leave a string that is no longer NFKC (rare): fold it again.
    return folded if folded.isascii() else unicodedata.normalize("NFKC", folded)


def _refused(text: str) -> str | None:
    if text.isascii():  # the common case: only C0 controls and DEL to look for
        for ch in text:
            if ch < " " or ch == "\x7f":
                return ch
        return None
    category = unicodedata.category
    for ch in text:
        if category(ch) in _REFUSED_CATEGORIES:
            return ch
    return None


def normalize_actor_id(value: object, *, field: str = "id", where: str = "Actor") -> str:
    """``value`` in its canonical form; raises :class:`ValidationError` when it is no id.

    Refused: anything but a string, an empty one, one longer than
    :data:`ACTOR_ID_MAX` and one holding control, format (``"\\u200b"``),
    surrogate, private-use or line-separator characters.
    """
    if not isinstance(value, str):
        raise ValidationError(field, value, _EXPECTED, where=where)
    if len(value) > 16 * ACTOR_ID_MAX:  # no id, however much white space it carries
        raise ValidationError(field, value[:ACTOR_ID_MAX] + "...", _EXPECTED, where=where)
    text = _canonical(value[:])  # [:] gives a plain str, whatever a subclass overrides
    bad = _refused(text)
    if bad is not None:
        raise ValidationError(
            field,
            value,
            f"{_EXPECTED} (it holds {unicodedata.name(bad, f'U+{ord(bad):04X}')})",
            where=where,
        )
    if not text or len(text) > ACTOR_ID_MAX:
        raise ValidationError(field, value, _EXPECTED, where=where)
    return text


@lru_cache(maxsize=4096)
def actor_key(value: str) -> str:
    """The comparison key of a stored id (``created_by``, a sign-off's ``actor_id``...).

    Lenient where :func:`normalize_actor_id` is strict: ids written before
    ids were normalised are compared in canonical form with invisible
    characters dropped, so an old ``"Clerk\\u200b"`` still counts as ``clerk``.
    """
    text = _canonical(value)
    if _refused(text) is None:
        return text
    category = unicodedata.category
    return "".join(ch for ch in text if category(ch) not in _REFUSED_CATEGORIES).strip()
