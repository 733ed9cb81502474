"""A progress line on stderr for a fit: step and epsilon spent, public quantities only."""

from __future__ import annotations

import sys
import time as _time


class Progress:
    """A progress line on stderr: step and epsilon spent — public quantities only (the loss on the
    private batch is a statistic of the data: it stays in ``history_``, for the owner's eyes).

    Redrawn in place at most every 0.2 s on a terminal; in a log (not a TTY) one line per 10 %.
    """

    def __init__(self, total: int, epsilon_fn, enabled: bool, stream=None):
        self.total, self.epsilon_fn, self.enabled = total, epsilon_fn, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = self.last = _time.perf_counter()
        self.next_fraction = 0.1

    def __call__(self, state, info) -> None:
        if not self.enabled:
            return
        step = int(state.step)
        now = _time.perf_counter()
        done = step >= self.total
        if self.interactive:
            if not done and now - self.last < 0.2:
                return
        elif not done and step / self.total < self.next_fraction:
            return
        else:
            self.next_fraction = (int(10 * step / self.total) + 1) / 10
        self.last = now
        width = 24
        filled = int(width * step / max(self.total, 1))
        line = (f"[{'#' * filled}{'.' * (width - filled)}] step {step}/{self.total} "
                f"eps {self.epsilon_fn(step):.3f} {now - self.start:5.1f}s")
        self.stream.write(("\r" + line + ("\n" if done else "")) if self.interactive else line + "\n")
        self.stream.flush()
