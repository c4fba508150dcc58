from metaflow import FlowSpec, hitl, step, timeout


class TimeoutFlow(FlowSpec):
    @timeout(minutes=5)
    @hitl(message="Go?", timeout="1h")
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TimeoutFlow()
