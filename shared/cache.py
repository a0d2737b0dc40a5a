"""A small process-wide cache for things that cannot change under their key: a run's meta (created
once), an upload's dataset info, a finished job's outputs (keyed by its attempt), an object read at
a known generation. Bounded, least recently used first out, safe across threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Memo:
    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The cached value for ``key``, or ``load()`` stored under it. A failing load, or one that
        finds nothing (None), stores nothing."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()  # outside the lock: two threads may both load, and both get the same value
        if value is None:
            return value
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


MEMO = Memo()
