"""The admin dashboard: queue monitoring, studies, operator actions, upload and analyse, and /metrics."""
