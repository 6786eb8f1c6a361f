"""Forecasts and anomalies on synthetic histories whose answers are known."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tenancy_fixtures.monitoring.forecast import find_anomalies, forecast_limit, forecast_tenant
from tenancy_fixtures.monitoring.statistics import robust_z_scores, theil_sen
from tenancy_fixtures.store.usage_ledger import RunPerformance, UsageSnapshot

START = datetime(2026, 1, 1, tzinfo=UTC)


def days(n: int) -> list[datetime]:
    return [START + timedelta(days=i) for i in range(n)]


def test_theil_sen_recovers_an_exact_line() -> None:
    """On y = 10 + 2x the slope, intercept and band are exact."""
    trend = theil_sen([float(x) for x in range(10)], [10.0 + 2 * x for x in range(10)])
    assert trend is not None
    assert (trend.slope, trend.intercept) == (2.0, 10.0)
    assert trend.slope_low == trend.slope_high == 2.0


def test_theil_sen_ignores_a_few_wild_points() -> None:
    """Three wild points among 30 barely move the slope (least squares would)."""
    ys = [5.0 + 3 * x for x in range(30)]
    ys[7], ys[15], ys[22] = 900.0, -400.0, 1200.0
    trend = theil_sen([float(x) for x in range(30)], ys)
    assert trend is not None
    assert trend.slope == pytest.approx(3.0, abs=0.01)


def test_sens_band_holds_the_true_slope_under_noise() -> None:
    """Noisy growth of 4 a day: the 90 % band contains 4 and the estimate is close."""
    rng = random.Random(7)
    xs = [float(x) for x in range(60)]
    trend = theil_sen(xs, [100 + 4 * x + rng.gauss(0, 10) for x in xs])
    assert trend is not None
    assert trend.slope_low <= 4.0 <= trend.slope_high
    assert trend.slope == pytest.approx(4.0, abs=0.5)


def test_too_few_points_give_no_trend() -> None:
    assert theil_sen([0.0, 1.0], [1.0, 2.0]) is None
    assert theil_sen([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None


def test_linear_growth_reaches_the_limit_on_the_known_day() -> None:
    """Users 10 + 2/day observed for 30 days (20 users... 68), limit 100: reached on day
    45, 16 days after the last snapshot; the tolerance is 0.01 day."""
    times = days(30)
    values = [10 + 2 * i for i in range(30)]
    forecast = forecast_limit("acme", "users", 100, times, values)
    assert forecast.days_to_limit == pytest.approx(16.0, abs=0.01)
    assert forecast.days_earliest == pytest.approx(16.0, abs=0.01)
    assert forecast.days_latest == pytest.approx(16.0, abs=0.01)


def test_noisy_linear_growth_is_reached_within_its_band() -> None:
    """Storage growing 1000 B/day with noise, limit 200,000 B: the true day is 141 days
    after the last of 60 daily snapshots. Over 50 histories the estimate is within 5 %
    every time and the 90 % band holds the true day in at least 80 % of them (it is a
    90 % band: it may miss now and then, and must not miss often)."""
    held = 0
    for seed in range(50):
        rng = random.Random(seed)
        values = [int(1000 * i + rng.gauss(0, 800)) for i in range(60)]
        forecast = forecast_limit("acme", "storage", 200_000, days(60), values)
        assert forecast.days_to_limit == pytest.approx(141.0, rel=0.05)
        assert forecast.days_earliest is not None
        assert forecast.days_latest is not None
        held += forecast.days_earliest <= 141.0 <= forecast.days_latest
    assert held >= 40


def test_a_limit_not_growing_is_never_reached_and_one_passed_is_reached_now() -> None:
    flat = forecast_limit("acme", "users", 5, days(10), [3] * 10)
    assert flat.days_to_limit is None
    assert flat.slope_per_day == 0.0
    over = forecast_limit("acme", "users", 5, days(5), [2, 4, 6, 8, 9])
    assert over.days_to_limit == 0.0


def test_a_limit_already_passed_is_reached_now_even_before_there_is_a_trend() -> None:
    """With one or two snapshots it read as "not growing" (``None``; gauge ``+Inf``)."""
    for points in (1, 2):
        over = forecast_limit("acme", "users", 2, days(points), [3] * points)

        assert (None, 0.0, 0.0, 0.0) == (
            over.slope_per_day,
            over.days_to_limit,
            over.days_earliest,
            over.days_latest,
        )


def test_usage_below_a_limit_its_trend_line_passes_is_not_reached_yet() -> None:
    """Usage dropped (a cleanup) below a limit the fitted line is past: it said 0 days."""
    forecast = forecast_limit("acme", "users", 55, days(6), [10, 20, 30, 40, 50, 10])

    assert forecast.level is not None
    assert forecast.level >= 55
    assert forecast.days_to_limit == pytest.approx(4.5)
    assert forecast.days_latest is None  # the band's lower slope is not growing


def test_robust_z_scores_fall_back_when_most_values_are_equal() -> None:
    """MAD 0 (more than half equal): the mean absolute deviation stands in."""
    scores = robust_z_scores([5.0] * 9 + [50.0])
    assert scores[-1] > 3.5
    assert scores[:-1] == [0.0] * 9
    assert robust_z_scores([2.0] * 5) == [0.0] * 5


def test_one_extra_row_or_a_one_in_a_thousand_dip_is_no_anomaly() -> None:
    """Nine equal values and one a unit off (MAD 0): no alarm, neither for growth of
    one row after nine of none nor for 999 rows/s after nine loads at 1,000."""
    assert find_anomalies("acme", "growth", days(10), [0.0] * 9 + [1.0]) == []
    assert find_anomalies("acme", "throughput", days(10), [1000.0] * 9 + [999.0]) == []
    assert find_anomalies("acme", "growth", days(10), [0.0] * 5 + [1.0] * 4 + [3.0]) == []


def test_a_real_jump_is_still_an_anomaly() -> None:
    """The spread's floor does not hide a jump: 50 rows after nine of none, a load at
    half the usual rate, and a slow load among sub-second ones are flagged as latest."""
    for metric, values in (
        ("growth", [0.0] * 9 + [50.0]),
        ("throughput", [1000.0] * 9 + [500.0]),
        ("duration", [0.10, 0.11, 0.09, 0.10, 0.12, 0.10, 0.11, 0.09, 0.10, 0.5]),
    ):
        [found] = find_anomalies("acme", metric, days(10), values)
        assert found.latest
        assert abs(found.score) > 3.5


def test_a_planted_throughput_anomaly_is_found() -> None:
    """40 loads at ~10,000 rows/s and one at 1,500: that one, and only it, is flagged."""
    rng = random.Random(11)
    values = [10_000 + rng.gauss(0, 400) for _ in range(40)]
    values[25] = 1_500.0
    found = find_anomalies("acme", "throughput", days(40), values)
    assert [a.at for a in found] == [days(40)[25]]
    assert found[0].score < -3.5
    assert not found[0].latest


@pytest.mark.parametrize("seed", range(20))
def test_trendless_noise_raises_no_alarm(seed: int) -> None:
    """Gaussian noise around a constant: the alarm (the latest value flagged) stays off,
    at most 3 of 60 values are even listed (|z| > 3.5), and no limit is
    on its way (the slope's 90 % band holds 0)."""
    rng = random.Random(seed)
    values = [500 + rng.gauss(0, 20) for _ in range(60)]
    found = find_anomalies("acme", "duration", days(60), values)
    assert not any(a.latest for a in found)
    assert len(found) <= 3
    forecast = forecast_limit("acme", "users", 10_000, days(60), [int(v) for v in values])
    assert forecast.slope_low is not None
    assert forecast.slope_high is not None
    assert forecast.slope_low <= 0.0 <= forecast.slope_high


def test_a_short_history_calls_nothing_an_anomaly() -> None:
    assert find_anomalies("acme", "duration", days(5), [1.0, 1.0, 1.0, 1.0, 100.0]) == []


def test_tenant_forecast_joins_limits_runs_and_growth() -> None:
    """A tenant's forecast: each counted limit, and the latest load flagged slow."""
    snapshots = [
        UsageSnapshot("acme", t, 1000 * i, {"users": 2 * i}, {"users": 2 * i, "storage": 1000 * i})
        for i, t in enumerate(days(12))
    ]
    runs = [
        RunPerformance("acme", f"r{i}", t, 1.0, 10_000, 10_000.0 + (i % 3) * 100)
        for i, t in enumerate(days(12))
    ]
    runs[-1] = RunPerformance("acme", "slow", days(12)[-1], 9.0, 10_000, 1_100.0)
    forecast = forecast_tenant("acme", snapshots, {"users": 40, "storage": 10**9, "api_calls": 9})
    assert [f.limit for f in forecast.limits] == ["storage", "users"]
    users = forecast.limits[1]
    assert users.days_to_limit == pytest.approx(9.0, abs=0.01)  # 22 now, +2/day, limit 40
    with_runs = forecast_tenant("acme", snapshots, {"users": 40}, runs)
    assert with_runs.latest == {"throughput": True, "duration": True, "growth": False}
    assert with_runs.as_dict()["latest_anomalous"]["throughput"] is True
