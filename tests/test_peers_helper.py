"""A missing peer skips a test on a developer's machine and fails it under CI, where .ci/run provides every peer."""

from __future__ import annotations

import pytest

from tests.helpers.peers import require_tool

ABSENT = "cxr-no-such-peer"


def test_a_missing_peer_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=ABSENT):
        require_tool(ABSENT)


def test_a_missing_peer_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"{ABSENT} is not installed .*under CI"):
        require_tool(ABSENT)
    assert require_tool("sh").endswith("/sh"), "a present peer is found under CI too"
