"""An expected_version above the record's is a version that does not exist, not a conflict.

Nobody changed the record: the caller sent a version it never had (a forged
or mistyped form, a page of a database restored from an older backup).  The
error stays a :class:`ConflictError` (nothing was written, a host's
``except ConflictError`` keeps working) under its own code and message.
"""

from __future__ import annotations

import pytest

from reqmgmt import ConflictError, Desk
from reqmgmt.i18n import has_cjk

from ..conftest import CLERK, receive


def test_a_version_above_the_records_is_said_not_to_exist(desk: Desk) -> None:
    ref = receive(desk)
    current = desk.get(ref).version
    with pytest.raises(ConflictError) as info:
        desk.fire(ref, "start_evaluation", actor=CLERK, expected_version=current + 5)
    err = info.value
    assert err.code == "error.conflict.no_such_version"
    assert (err.expected, err.actual) == (current + 5, current)
    assert f"version {current + 5} does not exist" in err.en
    assert f"at version {current}" in err.en
    assert "changed" not in err.en
    assert "stored version is" not in err.en
    assert f"第 {current + 5} 版不存在" in err.zh
    assert has_cjk(err.zh)
    assert "他人修改" not in err.zh
    assert desk.get(ref).version == current  # nothing written


def test_an_older_version_is_still_someone_elses_change(desk: Desk) -> None:
    ref = receive(desk)
    desk.fire(ref, "start_evaluation", actor=CLERK)
    with pytest.raises(ConflictError) as info:
        desk.fire(ref, "remark", actor=CLERK, note="x", expected_version=1)
    assert info.value.code == "error.conflict.version"
    assert "stored version is 2" in info.value.en


def test_the_error_itself_picks_the_reason() -> None:
    """Every place raising ConflictError (the command, the stores' writes) gets it."""
    assert ConflictError("R", 9, 3).code == "error.conflict.no_such_version"
    assert ConflictError("R", 3, 3).code == "error.conflict.version"
    assert ConflictError("R", 2, 3).code == "error.conflict.version"
