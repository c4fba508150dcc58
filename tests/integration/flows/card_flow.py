import os

from metaflow import FlowSpec, card, hitl, step

HOSTILE = '<script>alert("x")</script> & <b>bold</b>'


class CardFlow(FlowSpec):
    @step
    def start(self):
        self.model = HOSTILE
        self.next(self.gate)

    @card(type="hitl")
    @hitl(
        message="Deploy {self.model}?",
        timeout="1h",
        on_reject=os.environ.get("GATE_ON_REJECT", "fail"),
        approvers=["reviewer", "carol"],
        input_schema={"target": "str?"},
    )
    @step
    def gate(self):
        self.outcome = self.hitl_decision["outcome"]
        self.next(self.end)

    @step
    def end(self):
        print("END outcome", self.outcome)


if __name__ == "__main__":
    CardFlow()
