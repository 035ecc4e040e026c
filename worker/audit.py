"""The workers' security audit messages (``atna``): each result object stored at a DICOM destination is a DICOM
Instances Transferred message (the node as the source), naming the study and its patient from the spooled header."""

from __future__ import annotations

from collections import Counter

from atna.events import instances_transferred
from config.outputs import Destination
from db.deliveries import DeliveryWork
from dicom_node.audit_events import study_transfer
from worker.context import WorkerContext


def audit_sent(context: WorkerContext, work: DeliveryWork, destination: Destination) -> None:
    if context.atna is None:
        return
    study = study_transfer(context.session_factory, work.study_id, Counter({work.sop_class_uid: 1}))
    if study is not None:
        source = (context.settings.scp.ae_title, None)
        destination_node = (destination.ae_title, destination.host)
        context.atna.emit(instances_transferred(source, destination_node, study, received=False))
