"""worker.deliver.retry_window_s and the delivery defaults: the arithmetic that a 10-minute destination outage loses
nothing, and the backoff each retry actually waits staying inside it."""

from __future__ import annotations

import random

from config.settings import WorkerSettings
from worker.deliver import backoff_seconds, retry_window_s

TEN_MINUTES = 600.0


def test_the_defaults_ride_out_a_ten_minute_outage() -> None:
    defaults = WorkerSettings()
    # Ceilings 2, 4, 8, 16, 32, 64, 128, 256, then 300 four times (the cap): 1,710 s; full jitter waits at least half.
    assert (defaults.delivery_backoff_s, defaults.delivery_backoff_max_s, defaults.delivery_max_retries) == (2, 300, 12)
    assert retry_window_s(defaults) == (855.0, 1710.0)
    assert retry_window_s(defaults)[0] > TEN_MINUTES
    fewer = WorkerSettings(delivery_max_retries=defaults.delivery_max_retries - 2)
    assert retry_window_s(fewer)[0] < TEN_MINUTES, "two retries fewer would not be certain to"


def test_every_backoff_lies_between_half_its_ceiling_and_the_ceiling() -> None:
    settings = WorkerSettings()
    rng = random.Random(7)
    waits = [
        [backoff_seconds(a, settings, rng) for a in range(1, settings.delivery_max_retries + 1)] for _ in range(200)
    ]
    totals = [sum(w) for w in waits]
    shortest, longest = retry_window_s(settings)
    assert shortest <= min(totals) and max(totals) <= longest
