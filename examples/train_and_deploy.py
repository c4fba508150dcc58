"""The README's example: train, ask a person whether to deploy, deploy where they say.

Run it, then approve from another terminal (the run prints the exact command):

    python examples/train_and_deploy.py run
    python examples/train_and_deploy.py hitl approve --latest --as reviewer \
        --input '{"deploy_target": "staging"}'
"""

from metaflow import FlowSpec, Parameter, hitl, step


class TrainAndDeploy(FlowSpec):
    learning_rate = Parameter("learning_rate", default=0.01, help="Learning rate.")

    @step
    def start(self):
        self.next(self.train)

    @step
    def train(self):
        self.accuracy = 0.943 if self.learning_rate <= 0.05 else 0.71
        self.next(self.gate)

    @hitl(
        message="Accuracy {self.accuracy:.1%} at lr={self.learning_rate}: deploy?",
        timeout="24h",
        on_timeout="reject",
        input_schema={"deploy_target": "str", "replicas": "int?"},
    )
    @step
    def gate(self):
        target = self.hitl_input["deploy_target"]
        approver = self.hitl_decision["decided_by"]
        print(f"deploying to {target} (approved by {approver})")
        self.deployed_to = target
        self.next(self.end)

    @step
    def end(self):
        print("done:", self.deployed_to)


if __name__ == "__main__":
    TrainAndDeploy()
