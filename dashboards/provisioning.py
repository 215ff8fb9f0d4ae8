"""Grafana provisioning files: InfluxDB data sources per factory and a dashboard provider.

One data source per factory database (``f_<id>``, uid/name ``mw-factory-<id>``), so a
Grafana org, folder or data source permission can be scoped to one factory; plus
``mw-internal`` (``millwatch_internal``) and ``mw-cluster`` (``cluster_kpi``). All use
InfluxQL over the v1 API, as millwatch's InfluxDB 1.x (and 2.x/3.x v1 compatibility).
The factories come from a scenario (the ``default`` one unless told), the InfluxDB URL
as seen from the Grafana server is a parameter.

Example
-------
>>> [d["uid"] for d in datasources(["f01"], "http://influx:8086")]
['mw-factory-f01', 'mw-internal', 'mw-cluster']
>>> datasources(["f01"], "http://influx:8086")[0]["jsonData"]["dbName"]
'f_f01'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from dashboards.common import CLUSTER_UID, FACTORY_DS_PREFIX, INTERNAL_UID
from millwatch.contract import INTERNAL_DATABASE, factory_database

__all__ = [
    "DEFAULT_DASHBOARDS_PATH",
    "DEFAULT_INFLUX_URL",
    "FOLDER",
    "dashboard_provider",
    "datasource",
    "datasources",
    "datasources_file",
    "factory_datasource_uid",
]

#: Where ``millwatch up`` serves InfluxDB.
DEFAULT_INFLUX_URL: Final = "http://127.0.0.1:18086"
#: Where the provider looks for the dashboard JSON on the Grafana host.
DEFAULT_DASHBOARDS_PATH: Final = "/var/lib/grafana/dashboards/millwatch"
FOLDER: Final = "millwatch"
CLUSTER_DATABASE: Final = "cluster_kpi"


def factory_datasource_uid(factory: str) -> str:
    """Uid (and name) of a factory's data source.

    >>> factory_datasource_uid("f03")
    'mw-factory-f03'
    """
    return f"{FACTORY_DS_PREFIX}{factory}"


def datasource(uid: str, database: str, url: str) -> dict[str, Any]:
    """One InfluxDB (InfluxQL) data source as the provisioning file and the HTTP API take it."""
    return {
        "name": uid,
        "uid": uid,
        "type": "influxdb",
        "access": "proxy",
        "url": url,
        "database": database,
        "isDefault": False,
        "editable": True,
        "jsonData": {"dbName": database, "httpMode": "GET", "version": "InfluxQL"},
    }


def datasources(factories: Sequence[str], url: str) -> list[dict[str, Any]]:
    """Every data source the dashboards use: one per factory, internal, cluster."""
    return [
        *(datasource(factory_datasource_uid(f), factory_database(f), url) for f in factories),
        datasource(INTERNAL_UID, INTERNAL_DATABASE, url),
        datasource(CLUSTER_UID, CLUSTER_DATABASE, url),
    ]


def datasources_file(factories: Sequence[str], url: str) -> dict[str, Any]:
    """``provisioning/datasources/millwatch.yaml`` content."""
    return {"apiVersion": 1, "datasources": datasources(factories, url)}


def dashboard_provider(path: str = DEFAULT_DASHBOARDS_PATH) -> dict[str, Any]:
    """``provisioning/dashboards/millwatch.yaml``: load the JSON files under ``path``."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "millwatch",
                "orgId": 1,
                "folder": FOLDER,
                "folderUid": "mw",
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": path},
            }
        ],
    }
