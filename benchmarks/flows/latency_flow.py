"""A minimal gated flow for ``bench_approval_latency.py``.

The gated step's first line records ``time.time()``: into the file named by
``HITL_BENCH_T1_FILE`` (if set) and as the artifact ``t1``. ``HITL_BENCH_POLL_INTERVAL``
sets the gate's ``poll_interval`` (unset: the decorator's default, 0.1 s).
"""

import os
import time

from metaflow import FlowSpec, hitl, step


class HitlLatencyFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.gate)

    @hitl(
        message="benchmark gate",
        timeout="10m",
        on_timeout="reject",
        poll_interval=os.environ.get("HITL_BENCH_POLL_INTERVAL") or None,
    )
    @step
    def gate(self):
        t1 = time.time()  # the first thing the step's code does
        path = os.environ.get("HITL_BENCH_T1_FILE")
        if path:
            with open(path, "w") as fh:
                fh.write(repr(t1))
        self.t1 = t1
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    HitlLatencyFlow()
