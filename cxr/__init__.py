"""The ``cxr`` command: the composition root that wires ``dicom_node``, ``worker``, ``models`` and ``db`` together."""
