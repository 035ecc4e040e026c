"""Messages about a result beyond DICOM: the RIS (HL7 v2 over MLLP), the EHR (FHIR R4) and webhooks."""
