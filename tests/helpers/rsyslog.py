"""A real Debian rsyslogd receiving syslog over TCP on a free port, writing each message's PRI, APP-NAME, MSGID and
MSG on one line; and the DICOM audit schema (docs/schemas) to validate what arrives."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from tests.helpers.certificates import Pki
from tests.helpers.peers import free_port, require_tool, wait_for_port

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "dicom-audit-message.rng"
BOM = "\ufeff"


def audit_schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SCHEMA)))


@dataclass(frozen=True)
class Received:
    pri: int
    app_name: str
    msgid: str
    xml: etree._Element


@dataclass(frozen=True)
class Collector:
    port: int
    output: Path

    def messages(self) -> list[Received]:
        if not self.output.exists():
            return []
        found = []
        for line in self.output.read_text(encoding="utf-8").splitlines():
            pri, app_name, msgid, msg = line.split("|", 3)
            found.append(Received(int(pri), app_name, msgid, etree.fromstring(msg.lstrip(BOM + " ").encode())))
        return found

    def wait_for(self, count: int, timeout_s: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(found := self.messages()) >= count:
                return found
            time.sleep(0.2)
        raise AssertionError(f"rsyslog received {len(self.messages())} audit messages, expected {count}")


CONFIG = """global(workDirectory="{work}"{tls_global})
module(load="imtcp"{tls_module})
template(name="atna" type="string" string="%pri%|%app-name%|%msgid%|%msg%\\n")
ruleset(name="atna") {{ action(type="omfile" file="{output}" template="atna") }}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="atna")
"""


TLS_GLOBAL = (
    ' DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="{ca}"'
    ' DefaultNetstreamDriverCertFile="{certificate}" DefaultNetstreamDriverKeyFile="{key}"'
)
TLS_MODULE = ' StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon"'


@contextmanager
def rsyslog(directory: Path, tls: Pki | None = None) -> Iterator[Collector]:
    """rsyslogd in the foreground with only our TCP input (TLS per RFC 5425 with ``tls``: its server certificate,
    rsyslog's gtls driver); stopped (and waited for) on exit."""
    binary = require_tool("rsyslogd")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    output = directory / "audit.log"
    config = directory / "rsyslog.conf"
    tls_global = TLS_GLOBAL.format(ca=tls.ca, certificate=tls.server_certificate, key=tls.server_key) if tls else ""
    tls_module = TLS_MODULE if tls else ""
    config.write_text(
        CONFIG.format(work=directory, output=output, port=port, tls_global=tls_global, tls_module=tls_module)
    )
    process = subprocess.Popen(
        [binary, "-n", "-f", str(config), "-i", str(directory / "rsyslogd.pid")],
        stdout=subprocess.DEVNULL,
        stderr=(directory / "rsyslogd.err").open("wb"),
    )
    try:
        wait_for_port(port)
        yield Collector(port, output)
    finally:
        process.terminate()
        process.wait(timeout=10)
