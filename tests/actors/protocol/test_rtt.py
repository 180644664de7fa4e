"""The retransmission timeout (RFC 6298 with Karn's rule left to the caller)
and the round-trip histogram behind the statistics."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.protocol.rtt import RttEstimator, RttStats


def exact_percentile(samples: list[float], fraction: float) -> float:
    """Nearest rank: the smallest sample with at least ``fraction`` of all
    samples at or below it."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def within_one_bucket(estimate: float, exact: float) -> bool:
    """A bucket spans 1/8 of its power of two (1 microsecond below 8)."""
    return exact <= estimate <= exact * 1.125 + 1e-6


# -- the timeout ------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("floor", "ceiling"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_bad_bounds_are_refused(floor: float, ceiling: float) -> None:
    with pytest.raises(ValueError, match="need 0 < floor <= ceiling"):
        RttEstimator(1.0, floor, ceiling)


@pytest.mark.timeout(10)
def test_initial_rto_is_clamped() -> None:
    assert RttEstimator(1.0, 0.005, 1.0).rto == 1.0
    assert RttEstimator(9.0, 0.005, 2.0).rto == 2.0
    assert RttEstimator(0.001, 0.005, 2.0).rto == 0.005
    assert RttEstimator(0.5, 0.005, 2.0).srtt is None


@pytest.mark.timeout(10)
def test_first_sample_sets_srtt_and_half_of_it_as_variation() -> None:
    rtt = RttEstimator(1.0, 0.001, 10.0)
    rtt.sample(0.1)
    assert rtt.srtt == pytest.approx(0.1)
    assert rtt.rttvar == pytest.approx(0.05)
    assert rtt.rto == pytest.approx(0.1 + 4 * 0.05)


@pytest.mark.timeout(10)
def test_later_samples_follow_rfc_6298() -> None:
    rtt = RttEstimator(1.0, 0.0001, 100.0)
    rng = random.Random(3)
    srtt = rttvar = None
    for _ in range(200):
        sample = rng.uniform(0.001, 0.5)
        rtt.sample(sample)
        if srtt is None:
            srtt, rttvar = sample, sample / 2
        else:
            assert rttvar is not None
            rttvar = 0.75 * rttvar + 0.25 * abs(srtt - sample)
            srtt = 0.875 * srtt + 0.125 * sample
        assert rtt.srtt == pytest.approx(srtt)
        assert rtt.rttvar == pytest.approx(rttvar)
        assert rtt.rto == pytest.approx(srtt + 4 * rttvar)


@pytest.mark.timeout(10)
def test_steady_round_trips_bring_the_rto_down_to_them() -> None:
    rtt = RttEstimator(1.0, 0.001, 1.0)
    for _ in range(100):
        rtt.sample(0.02)
    assert rtt.rto == pytest.approx(0.02, rel=1e-6)


@pytest.mark.timeout(10)
@given(
    st.lists(st.floats(0.0, 100.0), min_size=1, max_size=50),
    st.floats(0.0001, 1.0),
    st.floats(1.0, 50.0),
)
@settings(max_examples=100, deadline=None, derandomize=True)
def test_rto_stays_between_floor_and_ceiling(
    samples: list[float], floor: float, ceiling: float
) -> None:
    rtt = RttEstimator(1.0, floor, ceiling)
    for index, sample in enumerate(samples):
        rtt.sample(sample)
        assert floor <= rtt.rto <= ceiling
        if index % 3 == 0:
            rtt.back_off()
            assert floor <= rtt.rto <= ceiling


@pytest.mark.timeout(10)
def test_back_off_doubles_up_to_the_ceiling() -> None:
    rtt = RttEstimator(0.1, 0.005, 1.0)
    seen = []
    for _ in range(6):
        rtt.back_off()
        seen.append(rtt.rto)
    assert seen == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    # A fresh sample ends the back-off.
    rtt.sample(0.01)
    assert rtt.rto == pytest.approx(0.03)


@pytest.mark.timeout(10)
def test_negative_round_trip_counts_as_zero() -> None:
    rtt = RttEstimator(1.0, 0.005, 1.0)
    rtt.sample(-0.5)
    stats = rtt.stats()
    assert stats.minimum == 0.0 and stats.maximum == 0.0
    assert rtt.srtt == 0.0
    assert rtt.rto == 0.005


# -- the statistics ---------------------------------------------------------------


@pytest.mark.timeout(10)
def test_stats_before_any_sample_are_zeros_and_the_rto() -> None:
    rtt = RttEstimator(0.7, 0.005, 1.0)
    assert rtt.stats() == RttStats(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.7)


@pytest.mark.timeout(10)
def test_one_sample_is_every_statistic() -> None:
    rtt = RttEstimator()
    rtt.sample(0.000123)
    stats = rtt.stats()
    assert stats.count == 1
    assert (
        stats.minimum
        == stats.mean
        == stats.p50
        == stats.p90
        == stats.p99
        == stats.maximum
        == 0.000123
    )


@pytest.mark.timeout(10)
def test_stats_on_known_samples() -> None:
    rtt = RttEstimator()
    samples = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    for sample in samples:
        rtt.sample(sample)
    stats = rtt.stats()
    assert stats.count == 100
    assert stats.minimum == 0.001 and stats.maximum == 0.1
    assert stats.mean == pytest.approx(sum(samples) / 100)
    assert within_one_bucket(stats.p50, 0.050)
    assert within_one_bucket(stats.p90, 0.090)
    assert within_one_bucket(stats.p99, 0.099)
    assert stats.rto == rtt.rto


@pytest.mark.timeout(10)
@pytest.mark.parametrize("seed", range(8))
def test_percentiles_within_one_bucket_on_random_samples(seed: int) -> None:
    rng = random.Random(seed)
    # Round trips from microseconds to seconds, with a long tail.
    samples = [
        rng.lognormvariate(math.log(200e-6), 1.5) for _ in range(rng.randint(1, 5000))
    ]
    rtt = RttEstimator()
    for sample in samples:
        rtt.sample(sample)
    stats = rtt.stats()
    assert stats.count == len(samples)
    assert stats.minimum == min(samples)
    assert stats.maximum == max(samples)
    assert stats.mean == pytest.approx(sum(samples) / len(samples))
    for fraction, value in ((0.5, stats.p50), (0.9, stats.p90), (0.99, stats.p99)):
        exact = exact_percentile(samples, fraction)
        assert within_one_bucket(value, exact), (fraction, value, exact)
    assert stats.minimum <= stats.p50 <= stats.p90 <= stats.p99 <= stats.maximum


@pytest.mark.timeout(10)
@given(st.lists(st.floats(0.0, 600.0, allow_nan=False), min_size=1, max_size=400))
@settings(max_examples=150, deadline=None, derandomize=True)
def test_percentiles_within_one_bucket_for_any_samples(samples: list[float]) -> None:
    rtt = RttEstimator()
    for sample in samples:
        rtt.sample(sample)
    stats = rtt.stats()
    assert stats.minimum == min(samples)
    assert stats.maximum == max(samples)
    assert stats.mean == pytest.approx(sum(samples) / len(samples))
    for fraction, value in ((0.5, stats.p50), (0.9, stats.p90), (0.99, stats.p99)):
        exact = exact_percentile(samples, fraction)
        assert within_one_bucket(value, exact), (fraction, value, exact)


@pytest.mark.timeout(10)
def test_sub_microsecond_and_tiny_round_trips() -> None:
    rtt = RttEstimator()
    samples = [0.0, 1e-7, 2e-6, 3.5e-6, 7e-6, 9e-6]
    for sample in samples:
        rtt.sample(sample)
    stats = rtt.stats()
    assert stats.minimum == 0.0 and stats.maximum == 9e-6
    assert within_one_bucket(stats.p50, exact_percentile(samples, 0.5))
    assert within_one_bucket(stats.p99, 9e-6)
