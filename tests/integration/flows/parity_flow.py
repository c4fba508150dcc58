from metaflow import FlowSpec, Parameter, current, retry, step


class ParityFlow(FlowSpec):
    """No gate: foreach, join, a parameter, retries and tags, as other teams' flows have."""

    scale = Parameter("scale", default=3, type=int)

    @step
    def start(self):
        self.items = list(range(self.scale))
        self.config = {"name": "parity", "nested": [1, 2.5, None]}
        self.next(self.square, foreach="items")

    @retry(times=1, minutes_between_retries=0)
    @step
    def square(self):
        self.value = self.input**2
        print("square", self.input, "->", self.value)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.merge_artifacts(inputs, include=["config"])
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total, "tags", sorted(current.tags))


if __name__ == "__main__":
    ParityFlow()
