"""cxr.model_fetch, models.fetch and models.catalog: ``cxr model fetch`` against a local HTTP server the test starts:
the right file is stored and verified, a transfer cut short resumes with a Range request, a wrong digest is refused
with nothing left behind, ``--from`` works with no network, and an unpinned release needs ``--sha256``."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest
import typer

from cxr.model_fetch import _expected_sha256
from models.catalog import CATALOG, published
from tests.helpers.cli import run_cli
from tests.helpers.http_files import Served, http_files

ENTRY = published("densenet121-res224-all")
PAYLOAD = os.urandom(3 * 1024 * 1024 + 17)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


def fetch(tmp_path: Path, *arguments: str) -> tuple[int, str]:
    result = run_cli("model", "fetch", ENTRY.name, "--to", str(tmp_path / "weights"), *arguments, cwd=tmp_path)
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_the_right_file_is_stored_and_verified(tmp_path: Path) -> None:
    with http_files(Served({ENTRY.file: PAYLOAD})) as served:
        code, output = fetch(tmp_path, "--mirror", served.url, "--sha256", DIGEST)
        assert code == 0, output
        assert (tmp_path / "weights" / ENTRY.file).read_bytes() == PAYLOAD
        assert left_in(tmp_path / "weights") == [ENTRY.file]
        assert f"stored {tmp_path / 'weights' / ENTRY.file} (sha256 {DIGEST})" in output
        assert f'set detector = "xrv:{ENTRY.name}"' in output
        again, output = fetch(tmp_path, "--mirror", served.url, "--sha256", DIGEST)
        assert again == 0 and "already there" in output and len(served.requests) == 1


def test_a_transfer_cut_short_resumes_where_it_stopped(tmp_path: Path) -> None:
    half = len(PAYLOAD) // 2
    with http_files(Served({ENTRY.file: PAYLOAD}, cut_first_after=half)) as served:
        code, output = fetch(tmp_path, "--mirror", served.url, "--sha256", DIGEST)
        assert code == 1 and "the same command resumes" in output, output
        part = tmp_path / "weights" / f"{ENTRY.file}.part"
        assert part.stat().st_size == half and not (tmp_path / "weights" / ENTRY.file).exists()
        code, output = fetch(tmp_path, "--mirror", served.url, "--sha256", DIGEST)
        assert code == 0, output
    assert served.requests == [(f"/{ENTRY.file}", None), (f"/{ENTRY.file}", f"bytes={half}-")]
    assert served.bytes_sent == len(PAYLOAD), "the second request sent only the rest"
    assert (tmp_path / "weights" / ENTRY.file).read_bytes() == PAYLOAD
    assert left_in(tmp_path / "weights") == [ENTRY.file]


def test_a_wrong_digest_is_refused_and_nothing_is_left_behind(tmp_path: Path) -> None:
    wrong = hashlib.sha256(b"another file").hexdigest()
    with http_files(Served({ENTRY.file: PAYLOAD})) as served:
        code, output = fetch(tmp_path, "--mirror", served.url, "--sha256", wrong)
    assert code == 2, output
    assert f"refused: {ENTRY.file}: sha256 {DIGEST} is not the expected {wrong}; the file was removed" in output
    assert left_in(tmp_path / "weights") == []


def test_a_copy_brought_in_by_hand_is_checked_the_same_way_with_no_network(tmp_path: Path) -> None:
    carried = tmp_path / "usb"
    carried.mkdir()
    (carried / ENTRY.file).write_bytes(PAYLOAD)
    code, output = fetch(tmp_path, "--from", str(carried), "--sha256", DIGEST, "--mirror", "http://127.0.0.1:9/")
    assert code == 0, output
    assert (tmp_path / "weights" / ENTRY.file).read_bytes() == PAYLOAD
    (carried / ENTRY.file).write_bytes(PAYLOAD[:-1] + b"\0")
    (tmp_path / "weights" / ENTRY.file).unlink()
    code, output = fetch(tmp_path, "--from", str(carried / ENTRY.file), "--sha256", DIGEST)
    assert code == 2 and "refused" in output, output
    assert left_in(tmp_path / "weights") == []


def test_an_unpinned_release_needs_the_admins_digest(tmp_path: Path) -> None:
    code, output = fetch(tmp_path)
    assert code == 2 and f"no sha256 is pinned for {ENTRY.name} in this version: give --sha256" in output, output
    code, output = fetch(tmp_path, "--sha256", "not-hex")
    assert code == 2 and "--sha256 takes 64 hexadecimal digits" in output
    assert left_in(tmp_path / "weights") == []
    unknown = run_cli("model", "fetch", "densenet999", cwd=tmp_path)
    assert unknown.returncode == 2 and "known: densenet121-res224-all, resnet50-res512-all" in unknown.stdout


def test_a_pinned_digest_is_used_and_another_given_is_refused() -> None:
    pinned = replace(ENTRY, sha256=DIGEST)
    assert _expected_sha256(pinned, None) == DIGEST
    assert _expected_sha256(pinned, DIGEST.upper()) == DIGEST
    with pytest.raises(typer.Exit):
        _expected_sha256(pinned, hashlib.sha256(b"other").hexdigest())


def test_the_catalog_names_torchxrayvisions_own_addresses() -> None:
    xrv = pytest.importorskip("torchxrayvision")
    for name, entry in CATALOG.items():
        assert entry.url == xrv.models.model_urls[name]["weights_url"]
        assert entry.url.endswith("/" + entry.file)
