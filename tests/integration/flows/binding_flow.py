import os

from metaflow import FlowSpec, hitl, retry, step


class BindingFlow(FlowSpec):
    @step
    def start(self):
        self.accuracy = float(os.environ.get("ACCURACY", "0.94"))
        self.next(self.gate)

    @retry(times=1, minutes_between_retries=0)
    @hitl(message="Accuracy {self.accuracy:.1%}: deploy?", timeout="1h")
    @step
    def gate(self):
        from metaflow import current

        print("GATE BODY RAN accuracy", self.accuracy, "gate", self.hitl_decision["gate_id"])
        if os.environ.get("FAIL_GATE_ONCE") and current.retry_count == 0:
            raise RuntimeError("flaky deploy")
        self.next(self.end)

    @step
    def end(self):
        if os.environ.get("FAIL_END"):
            raise RuntimeError("end failed")
        print("END ran")


if __name__ == "__main__":
    BindingFlow()
