"""Fuzzing the receive path (our SCP's handler, ingest and validation, over real associations) and the decode path
(models.imaging, as the analysis worker decodes a spooled instance), with the mutation families of the hardening
campaign (tests/helpers/fuzz_cases.py). Peer in the same run: DCMTK's dcmdump parsing the same files.

Checked for every input:
- no crash: no exception escapes a handler (pynetdicom logs one), and decoding raises nothing but the clear
  UndecodableImageError;
- no hang: each input is answered within the DIMSE timeout;
- nothing lost: every instance acknowledged (0x0000 or a warning) has its row and its spooled file;
- nothing written outside the data directory (traversal UIDs), and the node answers C-ECHO every 100 inputs.

    .venv/bin/python bench/fuzz.py --count 10000 [--seed 1] [--no-peer]

Exit status 1 when any crash, hang, loss or escape was found; the inputs that caused them are kept in --keep.
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydicom.filereader import read_file_meta_info
from pynetdicom import AE, _config
from sqlalchemy import select

from config.settings import ScpSettings, Settings
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import Instance
from dicom_node.scp import start_node
from models.imaging import UndecodableImageError, decode_file
from tests.helpers.fuzz_cases import FAMILIES, Case, bases, make_case
from tests.helpers.scp import echo_seconds

STATUS_OK = {0x0000, 0xB000, 0xB006, 0xB007}


class HandlerErrors(logging.Handler):
    """Counts what pynetdicom logs when one of our handlers raised (it answers the peer, and logs the traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and "handler" in record.getMessage().lower():
            self.records.append(f"{record.name}: {record.getMessage()} {record.exc_info[1]!r}")


@dataclass
class Tally:
    inputs: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    problems: list[str] = field(default_factory=list)
    ours_ms: list[float] = field(default_factory=list)
    peer_ms: list[float] = field(default_factory=list)
    peer_rejected: int = 0
    ours_refused: int = 0
    files: int = 0


def store(port: int, path: Path) -> int | None:
    """The C-STORE status of the file's data set, sent byte for byte as it is (pynetdicom's chunked send reads only
    the file meta); None when there was no answer (association refused or aborted, a timeout), -1 when the sender's
    side would not send it (a UID pynetdicom will not put in a request)."""
    info = read_file_meta_info(path)
    ae = AE(ae_title="FUZZ")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(info.MediaStorageSOPClassUID, info.TransferSyntaxUID)
    association = ae.associate("127.0.0.1", port, ae_title="CXR_AI")
    if not association.is_established:
        return None
    try:
        response = association.send_c_store(path)
    except Exception:
        association.abort()
        return -1
    if association.is_established:
        association.release()
    return int(response.Status) if "Status" in response else None


def raw(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        try:
            connection.sendall(data)
            connection.settimeout(0.5)  # an answer, if any, comes at once; a node that waits for more is right to
            connection.recv(4096)
        except OSError:
            pass  # closed on us, or nothing answered: either is the node's right


def decode_outcome(path: Path) -> str:
    try:
        decode_file(path)
    except UndecodableImageError:
        return "decode refused"
    except Exception as exc:
        return f"DECODE CRASH {type(exc).__name__}: {str(exc)[:120]}"
    return "decoded"


def escaped(root: Path, allowed: list[Path]) -> list[Path]:
    """Files under ``root`` outside the data directory and the inputs; and any file the traversal UIDs name."""
    found = [p for p in root.rglob("*") if p.is_file() and not any(a in p.parents for a in allowed)]
    found += [p for p in (Path("/tmp/cxr-fuzz-escape"), Path("/tmp/cxr-fuzz-absolute")) if p.exists()]
    return found


def run_case(case: Case, port: int, inputs: Path, sessions: object, tally: Tally, keep: Path) -> None:
    tally.inputs[case.family] += 1
    if case.family == "raw_pdu":
        started = time.perf_counter()
        raw(port, case.data)
        tally.ours_ms.append((time.perf_counter() - started) * 1000)
        tally.outcomes[case.family]["sent"] += 1
        return
    path = inputs / f"{case.number:06d}.dcm"
    path.write_bytes(case.data)
    tally.files += 1
    started = time.perf_counter()
    status = store(port, path)
    took = time.perf_counter() - started
    tally.ours_ms.append(took * 1000)
    if took > 25:
        tally.problems.append(f"HANG case {case.number} ({case.family}): {took:.0f} s")
    if status is None or status == -1:
        tally.outcomes[case.family]["no answer" if status is None else "sender gave up"] += 1
        tally.ours_refused += 1
    elif status in STATUS_OK:
        tally.outcomes[case.family]["stored"] += 1
        check_stored(case, path, sessions, tally, keep)
    else:
        tally.outcomes[case.family][f"refused 0x{status:04X}"] += 1
        tally.ours_refused += 1
    if tally.problems and not (keep / path.name).exists() and any(f"case {case.number} " in p for p in tally.problems):
        shutil.copy(path, keep / path.name)


def check_stored(case: Case, path: Path, sessions: object, tally: Tally, keep: Path) -> None:
    sop = str(read_file_meta_info(path).MediaStorageSOPInstanceUID)
    with sessions() as session:  # type: ignore[operator]
        spooled = session.scalar(select(Instance.spool_path).where(Instance.sop_instance_uid == sop))
    if spooled is None or not Path(spooled).is_file():
        tally.problems.append(f"LOST case {case.number} ({case.family}): acknowledged, no row or no file")
        return
    outcome = decode_outcome(Path(spooled))
    tally.outcomes[case.family][outcome if not outcome.startswith("DECODE CRASH") else "decode crash"] += 1
    if outcome.startswith("DECODE CRASH"):
        tally.problems.append(f"{outcome} in case {case.number} ({case.family})")


def peer(inputs: Path, tally: Tally) -> None:
    """DCMTK dcmdump on the same files: how many it cannot parse, and how long it takes per file."""
    dcmdump = shutil.which("dcmdump")
    if dcmdump is None:
        print("peer: dcmdump not installed; skipped")
        return
    for path in sorted(inputs.glob("*.dcm")):
        started = time.perf_counter()
        result = subprocess.run([dcmdump, "-q", "+E", str(path)], capture_output=True)
        tally.peer_ms.append((time.perf_counter() - started) * 1000)
        tally.peer_rejected += result.returncode != 0 or bool(result.stderr.strip())


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(tally: Tally, count: int, seed: int, seconds: float, rss: tuple[float, float]) -> None:
    print(
        f"fuzz: {count} inputs, seed {seed}, {seconds:.0f} s; peak RSS of this process (the SCP and the sender) "
        f"{rss[0]:.0f} MB before the first input, {rss[1]:.0f} MB after the last"
    )
    print(f"{'family':<18} {'inputs':>6}  outcomes")
    for family in FAMILIES:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(tally.outcomes[family].items()))
        print(f"{family:<18} {tally.inputs[family]:>6}  {outcomes}")
    crashes = sum(p.startswith(("DECODE CRASH", "HANDLER")) for p in tally.problems)
    hangs = sum(p.startswith("HANG") for p in tally.problems)
    lost = sum(p.startswith("LOST") for p in tally.problems)
    escapes = sum(p.startswith("ESCAPE") for p in tally.problems)
    print(f"crashes {crashes}, hangs {hangs}, lost {lost}, written outside the data directory {escapes}")
    ours = statistics.median(tally.ours_ms) if tally.ours_ms else 0.0
    if tally.peer_ms:
        theirs = statistics.median(tally.peer_ms)
        print(
            f"peer DCMTK dcmdump on the same {tally.files} files: cannot parse {tally.peer_rejected}; "
            f"we refused or dropped {tally.ours_refused}. Median per input: ours {ours:.1f} ms (a whole C-STORE over "
            f"an association), dcmdump {theirs:.1f} ms (a parse); ratio {ours / theirs:.2f}"
        )
    for problem in tally.problems[:50]:
        print("  " + problem)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--keep", type=Path, default=Path("fuzz-findings"))
    args = parser.parse_args()
    _config.STORE_SEND_CHUNKED_DATASET = True  # send each file's data set as it is, never parsed on our side
    warnings.simplefilter("ignore")  # pydicom warns about every broken value it reads; the tallies say what matters
    errors = HandlerErrors()
    logging.getLogger().addHandler(errors)
    root = Path(tempfile.mkdtemp(prefix="cxr-fuzz-"))
    inputs, data_dir = root / "inputs", root / "var"
    inputs.mkdir()
    data_dir.mkdir()
    args.keep.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{data_dir / 'cxr.sqlite'}"
    upgrade(database_url)
    sessions = make_session_factory(make_engine(database_url))
    scp = ScpSettings(
        host="127.0.0.1",
        port=0,
        completion_debounce_s=3600,
        completion_learn_senders=False,
        acse_timeout_s=2,
        dimse_timeout_s=20,
    )
    node = start_node(Settings(data_dir=data_dir, database_url=database_url, scp=scp), sessions, lambda _: None)
    sources, tally, rss_before = bases(), Tally(), rss_mb()
    started = time.monotonic()
    try:
        for number in range(args.count):
            run_case(make_case(number, args.seed, sources), node.port, inputs, sessions, tally, args.keep)
            if number % 100 == 99:
                if echo_seconds(node.port) is None:
                    tally.problems.append(f"HANG the node did not answer C-ECHO after case {number}")
                for path in escaped(root, [data_dir, inputs]):
                    tally.problems.append(f"ESCAPE {path} after case {number}")
    finally:
        node.stop()
    tally.problems += [f"HANDLER {record}" for record in errors.records]
    seconds = time.monotonic() - started
    if not args.no_peer:
        peer(inputs, tally)
    report(tally, args.count, args.seed, seconds, (rss_before, rss_mb()))
    shutil.rmtree(root, ignore_errors=True)
    return 1 if tally.problems else 0


if __name__ == "__main__":
    sys.exit(main())
