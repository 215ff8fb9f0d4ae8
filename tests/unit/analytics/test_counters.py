import numpy as np
import pytest

from analytics.counters import count_resets, counter_delta, counter_increase, forward_fill

NAN = np.nan


def test_gap_loses_no_production():
    # 100 -> (lost, lost) -> 130: the 30 made during the gap lands on the next sample.
    d = counter_delta(np.array([100.0, NAN, NAN, 130.0, 135.0]))
    assert d.tolist() == [0.0, 0.0, 0.0, 30.0, 5.0]
    assert d.sum() == 135.0 - 100.0


def test_reset_counts_from_zero_never_negative():
    # 100, 110, then the controller restarts: 5 (counted since 0), 8 (+3).
    d = counter_delta(np.array([100.0, 110.0, 5.0, 8.0]))
    assert d.tolist() == [0.0, 10.0, 5.0, 3.0]
    assert (d >= 0).all()
    assert count_resets(np.array([100.0, 110.0, 5.0, 8.0])) == 1


def test_reset_across_a_gap():
    # 100, lost, 20: the last valid before 20 is 100, so a restart -> 20.
    assert counter_delta(np.array([100.0, NAN, 20.0])).tolist() == [0.0, 0.0, 20.0]
    assert count_resets(np.array([100.0, NAN, 20.0])) == 1


def test_leading_nans_have_no_baseline():
    assert counter_delta(np.array([NAN, 50.0, 60.0])).tolist() == [0.0, 0.0, 10.0]
    assert np.isnan(forward_fill(np.array([NAN, 1.0]))[0])


def test_rows_are_independent():
    v = np.array([[1.0, 2.0, 0.0], [5.0, NAN, 9.0], [NAN, NAN, NAN]])
    d = counter_delta(v)
    # row 0: +1, restart -> 0; row 1: gap then +4; row 2: nothing known.
    assert d.tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 4.0], [0.0, 0.0, 0.0]]
    assert count_resets(v).tolist() == [1, 0, 0]


def test_counter_increase_hand_case():
    # Bucket 0: 10 -> 12 -> 12: +2.
    # Bucket 1: first 15 (+3 since last 12), max 20 (+5), last 4 (restart: +4) = 12.
    # Bucket 2: empty (lost). Bucket 3: first 9 (+5 since 4, across the gap), last 11 (+2) = 7.
    first = np.array([[10.0, 15.0, NAN, 9.0]])
    maximum = np.array([[12.0, 20.0, NAN, 11.0]])
    last = np.array([[12.0, 4.0, NAN, 11.0]])
    assert counter_increase(first, maximum, last).tolist() == [[2.0, 12.0, 0.0, 7.0]]


def test_counter_increase_matches_raw_deltas():
    rng = np.random.default_rng(3)
    raw = np.cumsum(rng.integers(0, 14, size=(3, 600)), axis=1).astype(float) + 1000
    raw[1, 250:] -= raw[1, 249]  # restart at s 250 (inside bucket 4): counts from 0
    raw[2, 300:] -= raw[2, 299] - 1  # restart on a bucket boundary
    raw[0, 130:190] = NAN  # bucket 2 lost, plus parts of buckets 2-3
    buckets = raw.reshape(3, 10, 60)
    with np.errstate(all="ignore"):
        ok = ~np.isnan(buckets).all(axis=2)
        first = np.where(ok, buckets[..., 0], NAN)
        first[0, 2] = NAN
        first[0, 3] = buckets[0, 3, 10]  # first valid sample of bucket 3
        maximum = np.where(ok, np.nanmax(np.where(ok[..., None], buckets, 0), axis=2), NAN)
        last = np.where(ok, buckets[..., -1], NAN)
    maximum[0, 2] = NAN
    per_bucket = counter_increase(first, maximum, last)
    assert per_bucket.sum(axis=1) == pytest.approx(counter_delta(raw).sum(axis=1))
