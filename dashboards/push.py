"""Upload the dashboards (and data sources) to a running Grafana over its HTTP API.

Idempotent by uid: pushing again overwrites the same data sources, folders and
dashboards instead of adding copies. Each factory gets a folder of its own (uid
``mw-<factory>``) holding copies of the factory dashboards pinned to its data source
(uid suffixed ``-<factory>``, ``$factory`` limited to that one data source), so folder
permissions can scope who sees which factory. The cluster benchmark and platform
health go to the folder ``mw-cluster``.

Uses ``grafana-client`` (the maintained successor of ``grafana-api``), with the token
sent as ``Authorization: Bearer <token>`` (a service account token).

Example
-------
>>> doc = {"uid": "mw-factory-overview", "title": "Factory overview", "templating": {
...     "list": [{"name": "factory", "type": "datasource", "regex": "/^mw-factory-.*/"}]}}
>>> pinned = for_factory(doc, "f01")
>>> pinned["uid"], pinned["templating"]["list"][0]["regex"]
('mw-factory-overview-f01', '/^mw-factory-f01$/')
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from dashboards.build import FACTORY_SCOPED, render_dashboards
from dashboards.provisioning import datasources, factory_datasource_uid

__all__ = ["CLUSTER_FOLDER", "PushReport", "folder_uid", "for_factory", "push"]

log = logging.getLogger("dashboards")

CLUSTER_FOLDER: Final = ("mw-cluster", "millwatch cluster")
#: Grafana's longest uid.
MAX_UID: Final = 40
_NOT_FOUND: Final = 404


@dataclass
class PushReport:
    """What a push created or overwrote, by uid."""

    datasources: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    dashboards: list[str] = field(default_factory=list)


def _uid(text: str) -> str:
    if len(text) <= MAX_UID:
        return text
    return f"{text[: MAX_UID - 9]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def folder_uid(factory: str) -> str:
    """Uid of a factory's folder.

    >>> folder_uid("f01")
    'mw-f01'
    """
    return _uid(f"mw-{factory}")


def for_factory(doc: dict[str, Any], factory: str) -> dict[str, Any]:
    """A copy of a factory dashboard bound to ``factory``'s data source."""
    pinned = copy.deepcopy(doc)
    pinned["uid"] = _uid(f"{doc['uid']}-{factory}")
    pinned["title"] = f"{doc['title']} · {factory}"
    ds = factory_datasource_uid(factory)
    for var in pinned.get("templating", {}).get("list", []):
        if var.get("name") == "factory" and var.get("type") == "datasource":
            var["regex"] = f"/^{ds}$/"
            var["current"] = {"selected": True, "text": ds, "value": ds}
    return pinned


def _ensure_folder(api: GrafanaApi, uid: str, title: str) -> None:
    try:
        api.folder.get_folder(uid)
    except GrafanaClientError as exc:
        if exc.status_code != _NOT_FOUND:
            raise
        api.folder.create_folder(title, uid=uid)


def _upsert_datasource(api: GrafanaApi, ds: dict[str, Any]) -> None:
    try:
        api.datasource.get_datasource_by_uid(ds["uid"])
    except GrafanaClientError as exc:
        if exc.status_code != _NOT_FOUND:
            raise
        api.datasource.create_datasource(ds)
    else:
        api.datasource.update_datasource_by_uid(ds["uid"], ds)


def _put_dashboard(api: GrafanaApi, doc: dict[str, Any], folder: str) -> None:
    body = {k: v for k, v in doc.items() if k != "id"}
    api.dashboard.update_dashboard(
        {
            "dashboard": body,
            "folderUid": folder,
            "overwrite": True,
            "message": "millwatch dashboards push",
        }
    )


def push(
    url: str,
    token: str | None,
    factories: Sequence[str],
    *,
    influx_url: str | None = None,
    timeout: float = 30.0,
) -> PushReport:
    """Upload to the Grafana at ``url``; with ``influx_url`` also the data sources."""
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    report = PushReport()
    if influx_url:
        for ds in datasources(factories, influx_url):
            _upsert_datasource(api, ds)
            report.datasources.append(ds["uid"])
    boards = render_dashboards()
    for factory in factories:
        folder = folder_uid(factory)
        _ensure_folder(api, folder, f"millwatch {factory}")
        report.folders.append(folder)
        for uid in sorted(FACTORY_SCOPED):
            doc = for_factory(boards[uid], factory)
            _put_dashboard(api, doc, folder)
            report.dashboards.append(doc["uid"])
    _ensure_folder(api, *CLUSTER_FOLDER)
    report.folders.append(CLUSTER_FOLDER[0])
    for uid in sorted(set(boards) - FACTORY_SCOPED):
        _put_dashboard(api, boards[uid], CLUSTER_FOLDER[0])
        report.dashboards.append(uid)
    log.info(
        "event=dashboards_pushed url=%s datasources=%d folders=%d dashboards=%d",
        url,
        len(report.datasources),
        len(report.folders),
        len(report.dashboards),
    )
    return report
