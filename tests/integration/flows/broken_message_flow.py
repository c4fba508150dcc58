from metaflow import FlowSpec, hitl, step


class BrokenMessageFlow(FlowSpec):
    @step
    def start(self):
        self.accuracy = 0.5
        self.next(self.gate)

    @hitl(message="Accuracy {self.acurracy:.1%}: deploy?", timeout="10m")
    @step
    def gate(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BrokenMessageFlow()
