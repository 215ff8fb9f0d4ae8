"""Anomaly detectors: one contract (``base``), scores in [0, 1] made by ``to_unit_score``.

``REGISTRY`` maps a detector's name to its class; the contract suite
(:mod:`analytics.checks`) runs every check over every registered detector. The
instrument classifier labels windows instead of scoring samples, so it is not in the
registry.

>>> sorted(REGISTRY)
['forest', 'hall', 'quantile_filter', 'robust', 'threshold_filter']
"""

from analytics.detectors.alarms import Alarm, Episodes, episodes
from analytics.detectors.base import Detector, as_panel, to_unit_score
from analytics.detectors.filters import QuantileFilter, ThresholdFilter
from analytics.detectors.forest import ForestDetector
from analytics.detectors.hall import HallDetector
from analytics.detectors.instrument import InstrumentClassifier, counter_resets
from analytics.detectors.robust import RobustZ

__all__ = [
    "REGISTRY",
    "Alarm",
    "Detector",
    "Episodes",
    "ForestDetector",
    "HallDetector",
    "InstrumentClassifier",
    "QuantileFilter",
    "RobustZ",
    "ThresholdFilter",
    "as_panel",
    "counter_resets",
    "episodes",
    "to_unit_score",
]

REGISTRY: dict[str, type[Detector]] = {
    "robust": RobustZ,
    "forest": ForestDetector,
    "hall": HallDetector,
    "threshold_filter": ThresholdFilter,
    "quantile_filter": QuantileFilter,
}
