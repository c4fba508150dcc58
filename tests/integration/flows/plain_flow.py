from metaflow import FlowSpec, step


class PlainFlow(FlowSpec):
    """No gate: what every other team deploys beside the gated flows."""

    @step
    def start(self):
        self.value = 41
        self.next(self.end)

    @step
    def end(self):
        print("END plain", self.value + 1)


if __name__ == "__main__":
    PlainFlow()
