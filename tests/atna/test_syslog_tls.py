"""atna.syslog over TLS (RFC 5425) to a real rsyslogd with its gtls driver: a message reaches a collector whose
certificate chains to ``ca_file``; against a collector we must not trust nothing is sent, and the message waits in
the queue (the sender keeps retrying) instead of going out in the clear."""

from __future__ import annotations

import time
from pathlib import Path

from atna import events
from atna.messages import AuditSource
from atna.syslog import SyslogSender
from config.records import AtnaSettings
from tests.helpers.certificates import make_pki
from tests.helpers.rsyslog import audit_schema, rsyslog


def test_a_message_reaches_rsyslog_over_tls_and_an_untrusted_collector_gets_nothing(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    with rsyslog(tmp_path / "rsyslog", tls=pki) as collector:
        trusted = AtnaSettings(host="127.0.0.1", port=collector.port, transport="tls", ca_file=pki.ca)
        sender = SyslogSender(trusted, AuditSource("CXR_AI"), "cxr-scp")
        sender.emit(events.application_activity("CXR_AI", started=True))
        (message,) = collector.wait_for(1)
        sender.close()
        assert audit_schema().validate(message.xml) and message.app_name == "cxr-scp"

        untrusted = AtnaSettings(host="127.0.0.1", port=collector.port, transport="tls", ca_file=pki.other_ca)
        refused = SyslogSender(untrusted, AuditSource("CXR_AI"), "cxr-scp")
        refused.emit(events.application_activity("CXR_AI", started=False))
        time.sleep(3)
        assert len(collector.messages()) == 1, "nothing reaches a collector whose certificate we do not trust"
        assert refused.sent == 0
        refused.close(timeout_s=1)
