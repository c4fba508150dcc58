import os

from metaflow import FlowSpec, hitl, kubernetes, retry, step, timeout


class GpuFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

    @retry(times=2, minutes_between_retries=1)
    @timeout(minutes=30)
    @kubernetes(
        gpu=1,
        node_selector="cloud.google.com/gke-accelerator=nvidia-tesla-t4",
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        persistent_volume_claims={"training-cache": "/mnt/cache"},
        image_pull_secrets=["regcred"],
    )
    @hitl(message="Train on GPUs?", timeout=os.environ.get("GATE_TIMEOUT", "1h"))
    @step
    def train(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    GpuFlow()
