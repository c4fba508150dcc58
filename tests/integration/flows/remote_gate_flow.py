import os

from metaflow import FlowSpec, batch, hitl, kubernetes, retry, step


def _on_kubernetes(func):
    """@kubernetes on the gated step (@batch with GATE_COMPUTE=batch) unless the run adds it
    with --with."""
    if os.environ.get("GATE_COMPUTE") in ("with", "with-batch"):
        return func
    if os.environ.get("GATE_COMPUTE") == "batch":
        return batch(cpu=1, memory=512, image="python:3.11")(func)
    return kubernetes(cpu=1, image="python:3.11")(func)


class RemoteGateFlow(FlowSpec):
    @step
    def start(self):
        self.accuracy = float(os.environ.get("ACCURACY", "0.943"))
        self.next(self.gate, self.side)

    @retry(times=1, minutes_between_retries=0)
    @_on_kubernetes
    @hitl(
        message="Accuracy {self.accuracy:.1%}: train on a GPU?",
        timeout=os.environ.get("GATE_TIMEOUT", "1h"),
        on_reject=os.environ.get("GATE_ON_REJECT", "fail"),
    )
    @step
    def gate(self):
        print("GATE BODY RAN")
        self.next(self.join)

    @step
    def side(self):
        print("SIDE BRANCH RAN")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        print("END")


if __name__ == "__main__":
    RemoteGateFlow()
