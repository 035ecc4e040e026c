"""dicom_node"""
