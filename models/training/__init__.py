"""``cxr train``: fine-tune classifiers and detectors on local datasets through the serving preprocessing."""
