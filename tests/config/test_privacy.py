"""config.privacy: keyed digests, and the secret files every process of a node shares (made once, 0600, the same for
processes that start together, also where the file system has no hard links)."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from config.privacy import accession_digest, digest_key, private_file


def test_processes_starting_together_agree_on_one_secret_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "var" / "digest-key"
    with ThreadPoolExecutor(8) as pool:
        made = set(pool.map(lambda i: private_file(path, f"secret-{i}"), range(32)))
    assert len(made) == 1 and path.read_text().strip() in made
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["digest-key"], "nothing left aside"


def test_without_hard_links_the_secret_is_created_exclusively(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: str, target: str) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "secret"
    assert private_file(path, "first") == "first" and private_file(path, "second") == "first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_the_accession_digest_is_keyed_and_ignores_surrounding_spaces(tmp_path: Path) -> None:
    key = digest_key(tmp_path, None)
    assert digest_key(tmp_path, None) == key and digest_key(tmp_path, "configured") == "configured"
    assert accession_digest(" ACC-1 ", key) == accession_digest("ACC-1", key) != accession_digest("ACC-1", "other")
    assert len(accession_digest("ACC-1", key)) == 32 and "ACC" not in accession_digest("ACC-1", key)
