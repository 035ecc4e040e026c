"""The security audit trail sent out of the node: DICOM audit messages (PS3.15 A.5) over syslog to the site's ATNA
audit repository. A shared layer beneath the SCP, the workers and the dashboard; it imports only ``config``."""
