import os

from metaflow import FlowSpec, hitl, step


class TrustedFlow(FlowSpec):
    @step
    def start(self):
        self.accuracy = float(os.environ.get("ACCURACY", "0.94"))
        self.next(self.gate)

    @hitl(
        message="Accuracy {self.accuracy:.1%}: deploy?",
        timeout="1h",
        trusted_channels=["github"],
        input_schema={"target": "str?"},
    )
    @step
    def gate(self):
        print("GATE BODY RAN", self.hitl_decision["decided_by"], self.hitl_decision["channel"])
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TrustedFlow()
