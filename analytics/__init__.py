"""KPIs and anomaly detection over telemetry.

Package map: ``frame``/``events`` (the array inputs), ``counters``/``intervals``/``shifts``
and ``kpi/`` (pure KPI functions), ``detectors/`` (the generic detector library) and
``checks`` (its contract suite), ``monitor`` (the per-machine-type anomaly pipeline),
``simdata``/``evaluation`` (``millwatch eval``), and the service: ``store`` (InfluxDB),
``downsample``, ``kpi_job``, ``anomaly_job``, ``rollup``, ``points``, ``service``.
"""

__all__: list[str] = []
