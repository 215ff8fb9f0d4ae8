"""Grafana dashboards as code: ``python -m dashboards build|push`` (``millwatch dashboards``).

One module per dashboard (``factory_overview``, ``machine_detail``, ``dyeing_batch``,
``cluster_benchmark``, ``platform_health``) built with grafana-foundation-sdk and an
InfluxQL target type of our own (``influx_query``); ``build`` renders the JSON and the
provisioning files committed under ``json/`` and ``provisioning/``; ``push`` uploads them
to a running Grafana.
"""

__all__: list[str] = []
