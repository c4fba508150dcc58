"""A flow whose gate options come from HITL_OPTS (JSON), to test step_init validation."""

import json
import os

from metaflow import FlowSpec, catch, hitl, step

OPTS = json.loads(os.environ.get("HITL_OPTS", '{"message": "ok?"}'))
SHAPE = os.environ.get("HITL_SHAPE", "plain")


def gated(func):
    func = hitl(**OPTS)(step(func))
    if SHAPE == "catch":
        func = catch(var="err")(func)
    return func


if SHAPE == "foreach":

    class ConfigFlow(FlowSpec):
        @step
        def start(self):
            self.items = [1, 2]
            self.next(self.gate, foreach="items")

        @gated
        def gate(self):
            self.next(self.join)

        @step
        def join(self, inputs):
            self.next(self.end)

        @step
        def end(self):
            pass

else:

    class ConfigFlow(FlowSpec):
        @step
        def start(self):
            self.next(self.gate)

        @gated
        def gate(self):
            print("GATE BODY RAN")
            self.next(self.end)

        @step
        def end(self):
            pass


if __name__ == "__main__":
    ConfigFlow()
