"""dashboard.model_page and dashboard.metrics: the drift watch on the Model page, in /api/model and in /metrics, and
the warning when the site's thresholds were set for another model. The real app over ASGI on a real database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from config.settings import Settings
from dashboard.app import create_app
from dashboard.auth import hash_password
from dashboard.services import DashboardServices
from db.engine import SessionFactory
from db.models import Job, utcnow
from tests.helpers.dashboard import CSRF_INPUT
from tests.helpers.validation import seed_study
from worker.celery_app import create_celery_app
from worker.queue import TaskQueue


def seed(sessions: SessionFactory) -> None:
    """Three weeks ago both devices scored alike; this week one device's Nodule scores rose by 0.3."""
    with sessions.begin() as session:
        for i in range(40):
            equipment = (("Acme", "X1"), ("Beta", "Y2"))[i % 2]
            score = 0.2 + 0.6 * ((i * 7) % 40) / 40
            seed_study(
                session, f"old-{i}", {"Nodule": score}, equipment=equipment, finished_at=utcnow() - dt.timedelta(days=3)
            )
            shifted = min(1.0, score + (0.3 if equipment == ("Beta", "Y2") else 0.0))
            seed_study(session, f"new-{i}", {"Nodule": shifted}, equipment=equipment)
    # The model's first days are its validation period (no truth imported): move the old ones back in time.
    with sessions.begin() as session:
        session.execute(
            update(Job)
            .where(Job.finished_at < utcnow() - dt.timedelta(days=2))
            .values(finished_at=utcnow() - dt.timedelta(days=20))
        )


@pytest.fixture
def client(tmp_path: Path, session_factory: SessionFactory) -> Iterator[TestClient]:
    seed(session_factory)
    settings = Settings(
        data_dir=tmp_path / "var",
        dashboard={"users": [{"name": "vera", "password_hash": hash_password("pw"), "role": "viewer"}]},  # type: ignore[arg-type]
        model={"thresholds": {"Nodule": 0.45}, "thresholds_for": "baseline:0.0.9:-"},  # type: ignore[arg-type]
        drift={"min_images": 10, "baseline_days": 7},  # type: ignore[arg-type]
    )
    services = DashboardServices.build(settings, session_factory, TaskQueue(create_celery_app(settings)))
    with TestClient(create_app(services)) as test_client:
        token = CSRF_INPUT.search(test_client.get("/login").text)
        assert token is not None
        test_client.post("/login", data={"username": "vera", "password": "pw", "csrf_token": token.group(1)})
        yield test_client


def test_the_model_page_and_metrics_show_the_drifted_device(client: TestClient) -> None:
    model = client.get("/api/model").json()
    assert model["thresholds_warning"].startswith("the site's thresholds were set for baseline:0.0.9:-")
    verdicts = {(d["label"], d["equipment"]): d["verdict"] for d in model["drift"]}
    assert verdicts == {("Nodule", "Acme X1"): "steady", ("Nodule", "Beta Y2"): "drift"}
    assert model["drift_period"] == "the model's first 7 days"
    page = client.get("/model").text
    assert page.count("Drift watch") == 1 and "<title>Model" in page, "once, in the page's body"
    assert "recalibrate" in page and page.count('<tr class="alert">') == 1
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
    }
    assert samples[("cxr_drift", (("equipment", "Beta Y2"), ("label", "Nodule")))] == 1.0
    assert samples[("cxr_drift", (("equipment", "Acme X1"), ("label", "Nodule")))] == 0.0
    assert samples[("cxr_drift_mean_score_change", (("equipment", "Beta Y2"), ("label", "Nodule")))] > 0.2
