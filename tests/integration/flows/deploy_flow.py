import os

from metaflow import FlowSpec, Parameter, hitl, retry, step


class DeployFlow(FlowSpec):
    fail_first = Parameter("fail_first", default=False, type=bool)

    @step
    def start(self):
        self.accuracy = 0.943
        self.next(self.gate)

    @retry(times=1, minutes_between_retries=0)
    @hitl(
        message="Accuracy {self.accuracy:.1%}: deploy?",
        timeout=os.environ.get("GATE_TIMEOUT", "1h"),
        on_timeout=os.environ.get("GATE_ON_TIMEOUT", "reject"),
        on_reject=os.environ.get("GATE_ON_REJECT", "fail"),
        notifier=os.environ.get("GATE_NOTIFIER") or None,
        input_schema={
            "type": "object",
            "properties": {
                "deploy_target": {"type": "string", "default": "canary"},
                "replicas": {"type": "integer", "minimum": 1},
            },
            "required": ["deploy_target"],
            "additionalProperties": False,
        },
    )
    @step
    def gate(self):
        from metaflow import current

        print("GATE BODY RAN attempt", current.retry_count)
        if self.fail_first and current.retry_count == 0:
            raise RuntimeError("flaky deploy")
        self.target = self.hitl_input.get("deploy_target")
        self.outcome = self.hitl_decision["outcome"]
        self.next(self.end)

    @step
    def end(self):
        print("END target", self.target, "outcome", self.outcome)


if __name__ == "__main__":
    DeployFlow()
