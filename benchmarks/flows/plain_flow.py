"""A three-step flow without ``@hitl``: the baseline for ``bench_cli_startup.py``."""

from metaflow import FlowSpec, step


class PlainFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.middle)

    @step
    def middle(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PlainFlow()
