from metaflow import FlowSpec, hitl, step


class JoinFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train_a, self.train_b)

    @step
    def train_a(self):
        self.score = 0.91
        self.next(self.pick)

    @step
    def train_b(self):
        self.score = 0.87
        self.next(self.pick)

    @hitl(
        # inputs[i] order is not fixed by Metaflow; both scores round to 0.9
        message="a={inputs.train_a.score:.2f} b={inputs.train_b.score:.2f} "
        "n={inputs[0].score:.1f}: ship a?",
        allow_self_approval=True,
        timeout="10m",
    )
    @step
    def pick(self, inputs):
        self.best = max(i.score for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("best", self.best)


if __name__ == "__main__":
    JoinFlow()
