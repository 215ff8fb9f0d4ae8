"""Anomaly detectors: one contract (``base``), scores in [0, 1] made by ``to_unit_score``.

``REGISTRY`` maps a detector's name to its class; the contract suite
(:mod:`analytics.checks`) runs every check over every registered detector.

>>> 'robust' in REGISTRY
True
"""

from analytics.detectors.base import Detector, as_panel, to_unit_score
from analytics.detectors.robust import RobustZ

__all__ = ["REGISTRY", "Detector", "RobustZ", "as_panel", "to_unit_score"]

REGISTRY: dict[str, type[Detector]] = {"robust": RobustZ}
