"""Textile KPIs as pure, vectorised array functions (domain spec §4).

- :mod:`analytics.kpi.oee`: availability, performance, quality, OEE.
- :mod:`analytics.kpi.loom`: efficiency, stops per 10^5 picks, MTTR, MTBF.
- :mod:`analytics.kpi.knit`: knitting efficiency, kg/h.
- :mod:`analytics.kpi.dye`: batches, right first time, cycle time, ramps, L/kg.
- :mod:`analytics.kpi.stenter`: exhaust-humidity compliance.
- :mod:`analytics.kpi.shift`: :func:`shift_kpis`, every KPI of a machine type per shift.

Example
-------
>>> import numpy as np
>>> from analytics.kpi import oee
>>> oee.oee(np.array([0.9]), np.array([0.9]), np.array([1.0])).round(2).tolist()
[0.81]
"""

__all__: list[str] = []
