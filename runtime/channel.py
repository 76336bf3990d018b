"""The hand-over between two stream stages: a bounded queue that either blocks the producer
(files: nothing is lost) or keeps only the newest item (live sources: stale frames dropped)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class Channel:
    """Hand-over between two stages: `latest` keeps only the newest item (counting the rest as
    dropped); otherwise the producer blocks while `capacity` items wait (nothing is lost)."""

    def __init__(self, capacity: int = 1, latest: bool = False) -> None:
        self.items: deque[Any] = deque()
        self.cond = threading.Condition()
        self.capacity, self.latest = capacity, latest
        self.closed = False
        self.dropped = 0

    def put(self, item: Any, stop: threading.Event) -> bool:
        with self.cond:
            if self.latest:
                while len(self.items) >= self.capacity:
                    self.items.popleft()
                    self.dropped += 1
            else:
                while len(self.items) >= self.capacity and not stop.is_set():
                    self.cond.wait(0.1)
                if stop.is_set():
                    return False
            self.items.append(item)
            self.cond.notify_all()
            return True

    def get(self, stop: threading.Event) -> Any | None:
        """The next item, or None once closed and drained (or stopped)."""
        with self.cond:
            while not self.items and not self.closed and not stop.is_set():
                self.cond.wait(0.1)
            if stop.is_set() or not self.items:
                return None
            item = self.items.popleft()
            self.cond.notify_all()
            return item

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
