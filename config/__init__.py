"""The lowest shared layer: the one typed Settings object, and the keyed digests that stand for UIDs in logs and pages.

It imports nothing of ours, so every role (``dicom_node``, ``worker``, ``dashboard``, ``cxr``, even ``db``) may
import it.
"""
