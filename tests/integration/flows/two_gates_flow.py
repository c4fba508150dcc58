from metaflow import FlowSpec, hitl, step


class TwoGatesFlow(FlowSpec):
    @hitl(message="start?", timeout="1h")
    @step
    def start(self):
        self.score = 0.9
        self.next(self.deploy_model)

    @hitl(message="deploy {self.score}?", timeout="2h", on_timeout="reject")
    @step
    def deploy_model(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TwoGatesFlow()
