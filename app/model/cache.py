"""A small, bounded, thread-safe least-recently-used cache."""

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class Lru(Generic[V]):
    """Up to `size` values by a string key (a digest), the least recently used dropped first.

    Not functools.lru_cache: the key is the digest of what the value is made from (megabytes
    that must not be kept as a key), and the callers hold a cache each. Two threads missing
    the same key at once both make the value; the last one made is kept."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()  # requests run on the event loop and the compute lane

    def get(self, key: str, make: Callable[[], V]) -> V:
        """The value kept for `key`, or make()'s (kept; an exception is not)."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = make()  # outside the lock: it may take milliseconds
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value
