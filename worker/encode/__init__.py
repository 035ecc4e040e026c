"""Encoding: findings become DICOM result objects (SR TID 1500, overlay SC, GSPS), all built with highdicom."""
