"""A sliding-window rate limit, in this process's memory.

At most `limit` accepted requests per key within any `window` seconds: unlike
a fixed per-minute window, a burst that straddles a minute boundary cannot get
twice the limit through. Refused requests do not count. Each uvicorn worker
process keeps its own windows, so N workers allow N x limit.
"""

import math
from collections import deque


class SlidingWindowLimiter:
    def __init__(self, limit, window_seconds, clock):
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._accepted = {}  # key -> deque of acceptance times, oldest first
        self._checks = 0

    def check(self, key):
        """0 when the request may go ahead (and is counted), else the whole
        seconds to wait before one will (for Retry-After)."""
        now = self.clock()
        self._forget_idle_keys(now)
        times = self._accepted.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) < self.limit:
            times.append(now)
            return 0
        return max(1, math.ceil(times[0] + self.window - now))

    def _forget_idle_keys(self, now):
        # Now and then, so memory follows the tokens seen in the last window,
        # not every token ever seen.
        self._checks += 1
        if self._checks % 1000:
            return
        idle = [key for key, times in self._accepted.items() if not times or times[-1] <= now - self.window]
        for key in idle:
            del self._accepted[key]
