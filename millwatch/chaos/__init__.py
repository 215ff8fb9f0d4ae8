"""Fault matrix (issue #7): real processes broken on purpose, reconciled per machine and seq.

``python -m millwatch.chaos`` runs every row with short durations (seconds), ``--full``
with minutes, and prints one table: fault, produced, landed, lost, duplicates, recovery s.
Rows live in :mod:`millwatch.chaos.rows`, the processes in :mod:`millwatch.chaos.rig`,
network namespaces and the latency relay in :mod:`millwatch.chaos.net`.

>>> from millwatch.chaos import ROWS, table
>>> len(ROWS) >= 10
True
"""

from millwatch.chaos.rows import FULL, ROWS, SHORT, Context, Durations, Result, Row
from millwatch.chaos.runner import run_rows, table

__all__ = ["FULL", "ROWS", "SHORT", "Context", "Durations", "Result", "Row", "run_rows", "table"]
