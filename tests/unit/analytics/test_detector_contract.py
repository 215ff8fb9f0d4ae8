"""Every registered detector, with each of its test parameter sets, through every check."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.checks import (
    check_fault_scores_higher,
    check_init_stores_params,
    check_seed,
    yield_checks,
)
from analytics.detectors import REGISTRY, Detector


def _cases() -> list:
    cases = []
    for name, cls in REGISTRY.items():
        for i, params in enumerate(cls._unit_test_params()):
            detector = cls(**params)
            label = name if i == 0 else f"{name}#{i}"
            cases += [
                pytest.param(detector, check, id=f"{label}:{check.__name__}")
                for check in yield_checks(detector)
            ]
    return cases


@pytest.mark.parametrize(("detector", "check"), _cases())
def test_contract(detector, check) -> None:
    check(detector)


def test_every_detector_is_checked() -> None:
    assert {"robust", "forest", "hall", "threshold_filter"} <= set(REGISTRY)


class _Noise(Detector):
    """Scores noise: a detector that ignores its data (must fail the fault check)."""

    def __init__(self, *, seed: int | None = 0) -> None:
        self.seed = seed
        self.scale_ = 1.0  # learned-looking attribute set in __init__: breaks the contract

    def _fit(self, panel: np.ndarray) -> None:
        self.rng_ = np.random.default_rng(self.seed)

    def _deviation(self, panel: np.ndarray) -> np.ndarray:
        return self.rng_.uniform(0.0, 6.0, size=panel.shape[:2])


def test_the_checks_catch_a_broken_detector() -> None:
    with pytest.raises(AssertionError, match="before fit"):
        check_init_stores_params(_Noise())
    with pytest.raises(AssertionError):
        check_fault_scores_higher(_Noise())
    with pytest.raises(AssertionError):
        check_seed(_Noise(seed=None))  # unseeded: two fits give different scores
