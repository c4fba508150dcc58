"""How often a waiting task reads its gate's decision: fast at first, then gently.

A decision is most likely soon after the gate opens (the person who started the run is
often the one who asks a colleague). So a task polls fast for the first phase and backs
off to a bounded interval: on S3 each poll is a GET, and a fixed 0.1 s interval made
~36,000 requests per hour of waiting (~860,000 per gate per day). The phases are counted
from the gate's creation, so a retried or resumed task that rejoins an old gate polls
gently at once. ``poll_interval=`` on the decorator replaces the schedule with one fixed
interval.

``benchmarks/bench_poll.py`` measures requests per hour on S3 and approve -> continue
latency in each phase.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_SCHEDULE", "PollSchedule"]


@dataclass(frozen=True, kw_only=True)
class PollSchedule:
    """Seconds between reads as a function of the gate's age.

    Parameters
    ----------
    phases
        ``(until_age_seconds, interval_seconds)`` pairs in increasing age: while the gate is
        younger than ``until_age_seconds``, poll every ``interval_seconds``.
    ceiling
        The interval once every phase is over (the bound of the back-off).
    """

    phases: tuple[tuple[float, float], ...]
    ceiling: float

    def __post_init__(self) -> None:
        ages = [age for age, _ in self.phases]
        if ages != sorted(ages) or any(i <= 0 for _, i in self.phases) or self.ceiling <= 0:
            raise ValueError(f"not a poll schedule: {self!r}")

    def interval(self, age_seconds: float) -> float:
        """The pause before the next read, for a gate ``age_seconds`` old."""
        for until, interval in self.phases:
            if age_seconds < until:
                return interval
        return self.ceiling


#: 0.1 s for the first 30 s, 1 s until 5 minutes, then every 5 s (720 reads an hour).
DEFAULT_SCHEDULE = PollSchedule(phases=((30.0, 0.1), (300.0, 1.0)), ceiling=5.0)
