"""The local cloud: moto in-process (ThreadedMotoServer) with every override of the registry (emulator.patches).

    cloud = start()            # installs the patches, serves http://127.0.0.1:<port>
    subprocess.run([...], env={**os.environ, **cloud.env()})
    cloud.reset()              # empty every backend, stop warm Lambdas and running commands, clear faults
    cloud.stop()

`python -m emulator.server [--port N]` runs it in the foreground and prints the endpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

DEFAULT_REGION = "us-east-1"


def install() -> None:
    """Everything the local cloud needs before moto serves its first request (idempotent): moto's overrides, AWS
    managed policies in IAM, the EventBridge scheduler."""
    from emulator import patches
    from emulator.events import scheduler

    patches.apply()
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    scheduler.start()


def _enable_state_machine_execution() -> None:
    """The in-process equivalent of POST /moto-api/config {"stepfunctions": {"execute_state_machine": true}}."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})


@dataclass
class LocalCloud:
    host: str
    port: int
    region: str
    _server: Any

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for subprocesses (AWS CLI, Terraform, scripts) that talk to this cloud."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_MAX_ATTEMPTS": "2",
        }

    def reset(self) -> None:
        """Forget every resource, stop warm Lambda workers, running commands and instance walks, clear faults and
        refill EC2's token buckets."""
        from moto.moto_api._internal.models import moto_api_backend

        from emulator import faults
        from emulator.awslambda import runtime
        from emulator.ec2 import instances, throttling
        from emulator.ssm import agent

        faults.clear()
        instances.reset()
        throttling.reset()
        agent.reset()
        runtime.reset()
        moto_api_backend.reset()
        _enable_state_machine_execution()

    def stop(self) -> None:
        from emulator import codepipeline
        from emulator.awslambda import runtime
        from emulator.ec2 import instances
        from emulator.events import scheduler
        from emulator.ssm import agent

        codepipeline.stop()
        scheduler.stop()
        self._server.stop()
        instances.reset()
        agent.reset()
        runtime.shutdown()


def start(port: int = 0, region: str = DEFAULT_REGION) -> LocalCloud:
    """Apply the overrides and serve an empty local cloud on 127.0.0.1:`port` (0: any free port).
    One at a time per process: moto's backends and MOTO_PORT are process-wide."""
    from moto.server import ThreadedMotoServer

    install()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound_port = server.get_host_and_port()
    # Lambdas, the SSM agent and the ASL interpreter (asl/utils/boto_client.py) reach moto through MOTO_PORT.
    os.environ["MOTO_PORT"] = str(bound_port)
    cloud = LocalCloud(host=host, port=bound_port, region=region, _server=server)
    cloud.reset()  # moto's backends are per process: a new cloud starts empty
    return cloud


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the local cloud in the foreground.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--region", default=DEFAULT_REGION)
    args = parser.parse_args()
    cloud = start(args.port, args.region)
    print(cloud.endpoint, flush=True)
    for name, value in cloud.env().items():
        print(f"export {name}={value}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    cloud.stop()


if __name__ == "__main__":
    main()
