"""dashboard.charts, dashboard.render and dashboard.site_status without a node: axes, ticks and units of every chart,
times in the configured zone, and the storage gauge's warning."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.problems import ConfigurationError
from config.settings import Settings
from dashboard.charts import HEIGHT, TOP, bar_chart, nice_ceiling
from dashboard.render import set_time_zone, size, when
from dashboard.site_status import StorageGauge, listener_status
from db.engine import make_engine, make_session_factory
from db.models import Base
from tests.helpers.peers import free_port


def test_bars_scale_to_a_round_axis_and_every_chart_names_its_axes() -> None:
    chart = bar_chart(
        "studies per 5 min", [0, 3, None, 7], ["15", "10", "5", "0"], "studies / 5 min", "minutes ago", "s"
    )
    assert [t.text for t in chart.y_ticks] == ["0", "5", "10"], "7 rounds up to 10"
    assert len(chart.bars) == 3, "a bucket without data has no bar"
    tallest = max(chart.bars, key=lambda b: b.height)
    assert tallest.height == pytest.approx((HEIGHT - TOP - (HEIGHT - chart.bottom)) * 0.7)
    assert tallest.tooltip == "0: 7 s"
    assert (chart.y_title, chart.x_title) == ("studies / 5 min", "minutes ago")
    assert [t.text for t in chart.x_ticks] == ["15", "10", "5", "0"]
    sparse = bar_chart("t", [1.0] * 24, [str(24 - i) for i in range(24)], "y", "hours ago", "", label_every=4)
    assert [t.text for t in sparse.x_ticks] == ["24", "20", "16", "12", "8", "4", "1"], "every fourth, and the last"
    assert [nice_ceiling(v) for v in (0, 1, 1.5, 3, 7, 12, 450)] == [1, 1, 2, 5, 10, 20, 500]


def test_times_are_shown_in_the_configured_zone_with_its_name(tmp_path: Path) -> None:
    moment = datetime(2026, 12, 3, 20, 0, 5, tzinfo=UTC)
    try:
        set_time_zone("Europe/Berlin")
        assert when(moment) == "2026-12-03 21:00:05 CET"
        set_time_zone("UTC")
        assert when(moment) == "2026-12-03 20:00:05 UTC"
    finally:
        set_time_zone("")
    config = tmp_path / "cxr.toml"
    config.write_text('[dashboard]\ntime_zone = "Mars/Olympus"\n')
    with pytest.raises(ConfigurationError, match="unknown time zone 'Mars/Olympus'"):
        Settings.load(config)
    assert [size(v) for v in (512, 10_800_000, 3 * 1024**3)] == ["512 B", "10.3 MB", "3.0 GB"]


def test_the_storage_gauge_measures_spool_early_analysis_and_results_and_warns_on_low_space(tmp_path: Path) -> None:
    roomy = Settings(data_dir=tmp_path, dashboard={"free_space_warning_gb": 0})
    (roomy.spool_dir / "1.2.3").mkdir(parents=True)
    (roomy.spool_dir / "1.2.3" / "a.dcm").write_bytes(b"\0" * 4096)
    roomy.early_analysis_dir.mkdir()
    (roomy.early_analysis_dir / "entry.npz").write_bytes(b"\0" * 300)
    roomy.results_dir.mkdir(parents=True)
    (roomy.results_dir / "sr.dcm").write_bytes(b"\0" * 1000)
    status = StorageGauge(roomy).get()
    assert (status.spool_bytes, status.early_analysis_bytes, status.results_bytes) == (4096, 300, 1000)
    assert 0 < status.free_bytes <= status.total_bytes and not status.warning
    assert StorageGauge(Settings(data_dir=tmp_path, dashboard={"free_space_warning_gb": 1e9})).get().warning


def test_the_listener_is_not_probed_from_a_host_its_allowed_networks_exclude(tmp_path: Path) -> None:
    """A probe the SCP would refuse, and audit, on every page view is not made; a free port reads as not accepting."""
    closed = free_port()
    refused = Settings(data_dir=tmp_path, scp={"port": closed, "allowed_networks": ["10.0.0.0/8"]})
    with make_session_factory(make_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}"))() as session:
        Base.metadata.create_all(session.get_bind())
        skipped = listener_status(session, refused)
        probed = listener_status(session, Settings(data_dir=tmp_path, scp={"port": closed, "host": "127.0.0.1"}))
    assert skipped.accepting is None and "allowed_networks" in skipped.detail
    assert probed.accepting is False and probed.detail.startswith("not accepting connections")
    assert probed.last_instance_at is None and probed.last_study_at is None
