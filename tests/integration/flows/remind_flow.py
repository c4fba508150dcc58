import os

from metaflow import FlowSpec, hitl, step


class RemindFlow(FlowSpec):
    @step
    def start(self):
        self.model = "v3"
        self.next(self.gate)

    @hitl(
        message="Deploy model {self.model}?",
        timeout="60s",
        remind_every=os.environ.get("GATE_REMIND_EVERY", "1s"),
        approvers=["reviewer", "lead"],
        escalate_to=["lead"],
        notifier=os.environ.get("GATE_NOTIFIER") or None,
        review="none",
        poll_interval=float(os.environ.get("GATE_POLL_INTERVAL", "0")) or None,
    )
    @step
    def gate(self):
        self.outcome = self.hitl_decision["outcome"]
        self.next(self.end)

    @step
    def end(self):
        print("END outcome", self.outcome)


if __name__ == "__main__":
    RemindFlow()
