"""What the RIS and EHR outputs add per study: HL7 ORU over MLLP and the FHIR Bundle over HTTP, next to the DICOM
delivery of the same study's three objects to DCMTK storescp, in the same run.

For each of N one-image RG1 studies (own UIDs), the pipeline functions are called directly (no Celery): analyse once,
then time ``deliver_result`` per delivery, summed per channel: DICOM (SR + SC + GSPS, one association each), HL7
(build, send, ACK from python-hl7's MLLP server), FHIR (build, validate with fhir.resources, POST to an HTTP server)
and the webhook. Prints p50/p95 per channel and HL7 + FHIR as a ratio of the DICOM delivery.

    .venv/bin/python bench/clinical.py [--studies 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from config.outputs import Destination, FhirEndpoint, Hl7Endpoint, UrgencySettings, WebhookEndpoint
from config.settings import Settings
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import Channel, Delivery
from tests.helpers.clinical_peers import http_peer, mllp_peer
from tests.helpers.flow import write_copies
from tests.helpers.peers import storescp
from tests.helpers.pipeline import context_for, record
from worker.analyze import analyze_job
from worker.deliver import DeliveryOutcome, deliver_result


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=30)
    args = parser.parse_args()
    per_channel: dict[Channel, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with storescp(root / "pacs") as pacs, mllp_peer() as ris, http_peer() as ehr, http_peer() as pager:
            settings = Settings(
                data_dir=root / "var",
                destinations=[Destination(name="pacs", ae_title="PACS", host="127.0.0.1", port=pacs)],
                hl7=[Hl7Endpoint(name="ris", host="127.0.0.1", port=ris.port)],
                fhir=[FhirEndpoint(name="ehr", url=ehr.url)],
                webhooks=[WebhookEndpoint(name="pager", url=pager.url, secret="bench-secret-0123456789")],
                urgency=UrgencySettings(critical_thresholds={"Nodule": 0.8}),
            )
            url = f"sqlite:///{root / 'bench.sqlite'}"
            upgrade(url)
            engine = make_engine(url)
            sessions = make_session_factory(engine)
            context = context_for(settings, sessions)
            rg1 = pydicom.dcmread(str(get_testdata_file("RG1_UNCR.dcm")))
            for source in write_copies(rg1, root / "in", args.studies, "bench-clinical"):
                outcome = analyze_job(context, record(sessions, settings, source))
                spent: dict[Channel, float] = defaultdict(float)
                for delivery_id in outcome.delivery_ids:
                    with sessions() as s:
                        channel = s.get(Delivery, delivery_id).channel  # type: ignore[union-attr]
                    start = time.perf_counter()
                    assert deliver_result(context, delivery_id) is DeliveryOutcome.SENT
                    spent[channel] += time.perf_counter() - start
                for channel, seconds in spent.items():
                    per_channel[channel].append(seconds)
            engine.dispose()
    dicom = statistics.median(per_channel[Channel.DICOM])
    print(f"{args.studies} studies, per study (ms): channel  p50  p95  ratio to DICOM p50")
    for channel in (Channel.DICOM, Channel.HL7, Channel.FHIR, Channel.WEBHOOK):
        values = per_channel[channel]
        median = statistics.median(values)
        print(f"  {channel.value:8} {median * 1000:7.1f} {p(values, 95) * 1000:7.1f}  {median / dicom:5.2f}")
    both = [h + f for h, f in zip(per_channel[Channel.HL7], per_channel[Channel.FHIR], strict=True)]
    median = statistics.median(both)
    print(f"  HL7+FHIR {median * 1000:7.1f} {p(both, 95) * 1000:7.1f}  {median / dicom:5.2f}")


if __name__ == "__main__":
    main()
