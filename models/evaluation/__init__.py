"""``cxr evaluate``: metrics (scikit-learn, torchmetrics), plots and a report for any registered detector."""
