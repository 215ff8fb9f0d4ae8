"""Short-lived memoisation for answers every request asks for again.

Live status, credentials and registry lookups change slowly compared with how often
clients ask; remembering them for a second or two takes most of the work off a busy
API. Concurrent callers of one key wait for the computation under way instead of each
starting their own (no stampede when an entry expires).

Example
-------
>>> calls = []
>>> square = ttl_memo(lambda x: calls.append(x) or x * x, ttl_s=60)
>>> square(3), square(3), calls
(9, 9, [3])
>>> square.cache_clear()
>>> square(3), calls
(9, [3, 3])
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache, cached

__all__ = ["ttl_memo"]


def ttl_memo(function: Callable[..., Any], ttl_s: float, maxsize: int = 4096) -> Any:
    """``function`` remembered per arguments for ``ttl_s`` (``.cache_clear()`` forgets)."""
    condition = threading.Condition()
    return cached(TTLCache(maxsize=maxsize, ttl=ttl_s), lock=condition, condition=condition)(
        function
    )
