"""The same three steps as ``plain_flow.py``, with ``@hitl`` on the middle one."""

from metaflow import FlowSpec, hitl, step


class GatedFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.middle)

    @hitl(message="Proceed?", timeout="1h", input_schema={"target": "str"})
    @step
    def middle(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    GatedFlow()
