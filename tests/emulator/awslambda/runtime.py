"""Runs deployed Lambda zips without Docker: a warm pool of Python worker processes per function (the host side).

`invoke_lambda` replaces moto's `LambdaFunction._invoke_lambda` (which would start a Docker container) and `invoke`
its `LambdaFunction.invoke` (Unhandled errors, asynchronous `Event` invocations with Lambda's retries); the registry
in `emulator.patches` installs both. Each worker is a `python -I -u worker.py --worker ...` process
(`emulator.awslambda.worker`) that imports the handler once and serves invocations one at a time, like a Lambda
execution environment: module state persists between invocations, a timeout kills the worker.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import math
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.awslambda import worker as worker_process
from emulator.logs import emf

MAX_WORKERS_PER_FUNCTION = 8
CACHE_ROOT = Path(tempfile.gettempdir()) / f"localcloud-{os.getuid()}" / "lambda"
ASYNC_RETRY_DELAYS = (60.0, 120.0)  # AWS seconds between the attempts of an asynchronous invocation

_counts: Counter[str] = Counter()
_timeouts: Counter[str] = Counter()
_errors: Counter[str] = Counter()
_cold_starts: Counter[str] = Counter()
_counts_lock = threading.Lock()


def invocations() -> dict[str, int]:
    """Invocations per function name since the last reset (synchronous and asynchronous, retries included)."""
    with _counts_lock:
        return dict(_counts)


def timeouts() -> dict[str, int]:
    """Invocations per function name that ran out of time (Sandbox.Timedout) since the last reset."""
    with _counts_lock:
        return dict(_timeouts)


def errors() -> dict[str, int]:
    """Invocations per function name that ended in an error (Unhandled: raised, timed out, crashed)."""
    with _counts_lock:
        return dict(_errors)


def cold_starts() -> dict[str, int]:
    """Invocations per function name that started a new execution environment (a cold start)."""
    with _counts_lock:
        return dict(_cold_starts)


def _count(counter: Counter[str], function_name: str) -> None:
    with _counts_lock:
        counter[function_name] += 1


def _extract(code: bytes) -> Path:
    """Unzip `code` once into the cache, keyed by its sha256; returns the directory."""
    target = CACHE_ROOT / "code" / hashlib.sha256(code).hexdigest()
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent))
    with zipfile.ZipFile(io.BytesIO(code)) as archive:
        archive.extractall(staging)
    try:
        staging.rename(target)
    except OSError:  # another thread extracted it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _layer_paths(fn: Any) -> list[str]:
    """The sys.path entries Lambda adds for layers (/opt/python and its site-packages), in layer order."""
    from moto.awslambda.models import lambda_backends

    backend = lambda_backends[fn.account_id][fn.region]
    paths: list[str] = []
    for layer in fn.layers:
        root = _extract(backend.layers_versions_by_arn(layer["Arn"]).code_bytes)
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        paths += [str(root / "python" / "lib" / version / "site-packages"), str(root / "python")]
    return paths


@dataclass(frozen=True)
class _Spec:
    """Everything that makes two execution environments interchangeable."""

    function_name: str
    handler: str
    paths: tuple[str, ...]
    env: tuple[tuple[str, str], ...]

    @property
    def key(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()


def _spec(fn: Any) -> _Spec:
    from moto import settings

    region = fn.region
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "_HANDLER": fn.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
        "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "ASIALOCALCLOUDLAMBDA",
        "AWS_SECRET_ACCESS_KEY": "local-cloud-lambda-secret",
        "AWS_SESSION_TOKEN": "local-cloud-lambda-session",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{settings.moto_server_port()}",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        **{str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
    }
    code_dir = _extract(fn.code_bytes)
    env["LAMBDA_TASK_ROOT"] = str(code_dir)
    paths = (str(code_dir), *_layer_paths(fn))
    return _Spec(fn.function_name, fn.handler, paths, tuple(sorted(env.items())))


def _trace_id() -> str:
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=0;Lineage=1:{secrets.token_hex(4)}:0"


@dataclass
class _Outcome:
    payload: str
    errored: bool
    logs: list[str]


class _Worker:
    """One execution environment: a Python process that serves invocations one at a time.

    Its SDK calls carry `app/<worker id>` in their User-Agent (AWS_SDK_UA_APP_ID), so that the local cloud knows
    which execution environment made a call (faults.kill_lambda_after).
    """

    def __init__(self, spec: _Spec) -> None:
        self.marker = f"\x1e{secrets.token_hex(16)}:"
        self.worker_id = f"lw{secrets.token_hex(8)}"
        self.served = 0  # invocations; the first one is a cold start
        self.scheduled = False  # whether the invocation it serves now came from an EventBridge schedule
        self.function_name = spec.function_name
        self.log_stream = f"{dt.datetime.now(dt.UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        env = dict(spec.env, AWS_LAMBDA_LOG_STREAM_NAME=self.log_stream, AWS_SDK_UA_APP_ID=self.worker_id)
        command = [
            sys.executable,
            "-I",
            "-u",
            worker_process.__file__,
            "--worker",
            self.marker,
            spec.handler,
            *spec.paths,
        ]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        with _workers_lock:
            _workers[self.worker_id] = self

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def invoke(self, request: dict[str, Any], timeout: float) -> _Outcome:
        """Run one invocation; raises TimeoutError (the worker is then unusable) or EOFError if it died."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except OSError as exc:
            raise EOFError("the worker is gone") from exc
        logs: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(logs) from None
            if line is None:
                raise EOFError(logs)
            if line.startswith(self.marker):
                if logs and not logs[-1]:
                    logs.pop()
                response = json.loads(line[len(self.marker) :])
                return _Outcome(response["payload"], response["error"], logs)
            logs.append(line)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        with _workers_lock:
            _workers.pop(self.worker_id, None)


_workers_lock = threading.Lock()
_workers: dict[str, _Worker] = {}
_APP_ID = re.compile(r"(?:^|\s)app/(lw[0-9a-f]+)")


def calling_worker(user_agent: str) -> _Worker | None:
    """The live execution environment that sent a request with this User-Agent, if any."""
    match = _APP_ID.search(user_agent)
    with _workers_lock:
        return _workers.get(match.group(1)) if match else None


@dataclass
class _Pool:
    idle: list[_Worker] = field(default_factory=list)
    size: int = 0


class _Pools:
    """Warm workers per execution-environment spec, at most MAX_WORKERS_PER_FUNCTION each."""

    def __init__(self) -> None:
        self._pools: dict[str, _Pool] = {}
        self._changed = threading.Condition()

    def acquire(self, spec: _Spec) -> _Worker:
        with self._changed:
            pool = self._pools.setdefault(spec.key, _Pool())
            while not pool.idle and pool.size >= MAX_WORKERS_PER_FUNCTION:
                self._changed.wait()
            if pool.idle:
                return pool.idle.pop()
            pool.size += 1
        try:
            return _Worker(spec)
        except Exception:
            self.discard(spec, None)
            raise

    def release(self, spec: _Spec, worker: _Worker) -> None:
        with self._changed:
            pool = self._pools.get(spec.key)
            if pool is None:  # shut down meanwhile
                worker.kill()
                return
            pool.idle.append(worker)
            self._changed.notify_all()

    def discard(self, spec: _Spec, worker: _Worker | None) -> None:
        if worker is not None:
            worker.kill()
        with self._changed:
            pool = self._pools.get(spec.key)
            if pool is not None:
                pool.size -= 1
            self._changed.notify_all()

    def shutdown(self) -> None:
        with self._changed:
            pools, self._pools = self._pools, {}
            self._changed.notify_all()
        for pool in pools.values():
            for worker in pool.idle:
                worker.kill()


_pools = _Pools()


def shutdown() -> None:
    """Stop every warm worker (busy ones are stopped when their invocation ends)."""
    _pools.shutdown()


def reset() -> None:
    shutdown()
    with _counts_lock:
        for counter in (_counts, _timeouts, _errors, _cold_starts):
            counter.clear()


def _error(error_type: str, message: str) -> str:
    return json.dumps({"errorMessage": message, "errorType": error_type})


def _is_scheduled(event: str) -> bool:
    """Whether an invocation's event is what an EventBridge schedule sends."""
    try:
        parsed = json.loads(event)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("detail-type") == "Scheduled Event"


def run(fn: Any, event: str) -> _Outcome:
    """Invoke moto LambdaFunction `fn` with the JSON text `event` in a warm worker."""
    from emulator import faults

    _count(_counts, fn.function_name)
    request_id = str(uuid.uuid4())
    if faults.take_lambda_crash(fn.function_name):
        _count(_errors, fn.function_name)
        message = f"RequestId: {request_id} Error: the local cloud crashed this invocation (faults.crash_lambda)"
        return _Outcome(_error(faults.CRASH_ERROR_TYPE, message), True, [message])
    spec = _spec(fn)
    worker = _pools.acquire(spec)
    if not worker.served:
        _count(_cold_starts, fn.function_name)
    worker.served += 1
    worker.scheduled = _is_scheduled(event)
    timeout = float(fn.timeout)
    request = {
        "request_id": request_id,
        "event": event,
        "deadline": time.time() + timeout,
        "function_arn": fn.function_arn,
        "trace_id": _trace_id(),
    }
    started = time.monotonic()
    try:
        outcome = worker.invoke(request, timeout)
    except TimeoutError as exc:
        _pools.discard(spec, worker)
        _count(_timeouts, fn.function_name)
        message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
        outcome = _Outcome(_error("Sandbox.Timedout", message), True, [*exc.args[0], message])
    except EOFError as exc:
        _pools.discard(spec, worker)
        message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {worker.process.returncode}"
        outcome = _Outcome(_error("Runtime.ExitError", message), True, [*(exc.args[0] if exc.args else []), message])
    else:
        _pools.release(spec, worker)
    if outcome.errored:
        _count(_errors, fn.function_name)
    outcome.logs = _framed(fn, request_id, outcome.logs, time.monotonic() - started)
    _save_logs(fn, worker.log_stream, outcome.logs)
    return outcome


def _framed(fn: Any, request_id: str, lines: list[str], seconds: float) -> list[str]:
    """An invocation's log lines between Lambda's START, END and REPORT lines."""
    millis = seconds * 1000
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {millis:.2f} ms\tBilled Duration: {math.ceil(millis)} ms\t"
        f"Memory Size: {fn.memory_size} MB\tMax Memory Used: {fn.memory_size} MB"
    )
    return [f"START RequestId: {request_id} Version: {fn.version}", *lines, f"END RequestId: {request_id}", report]


def _save_logs(fn: Any, stream: str, lines: list[str]) -> None:
    """The invocation's output in the function's log group; its EMF documents become metrics, as on Lambda."""
    now = int(time.time() * 1000)
    fn.logs_backend.ensure_log_group(fn.logs_group_name)
    fn.logs_backend.ensure_log_stream(fn.logs_group_name, stream)
    events = [{"timestamp": now, "message": line} for line in lines]
    fn.logs_backend.put_log_events(fn.logs_group_name, stream, events)
    emf.publish(fn.account_id, fn.region, fn.logs_group_name, lines)


def _async_retries(fn: Any) -> int:
    for config in fn.event_invoke_config:
        if "MaximumRetryAttempts" in config.config:
            return int(config.config["MaximumRetryAttempts"])
    return len(ASYNC_RETRY_DELAYS)


def _run_async(fn: Any, event: str) -> None:
    """An Event invocation: Lambda retries a failed one twice (or MaximumRetryAttempts), after 1 and 2 minutes."""
    from emulator import clock

    retries = _async_retries(fn)
    for attempt in range(retries + 1):
        try:
            if not run(fn, event).errored:
                return
        except Exception as exc:  # e.g. the function or its layer was deleted while the event waited for a retry
            logging.getLogger(__name__).warning("async invocation of %s dropped: %r", fn.function_name, exc)
            return
        if attempt < retries:
            clock.sleep(ASYNC_RETRY_DELAYS[min(attempt, len(ASYNC_RETRY_DELAYS) - 1)])


def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
    outcome = run(self, event if isinstance(event, str) else json.dumps(event if event is not None else {}))
    return outcome.payload, outcome.errored, "\n".join(outcome.logs)


def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
    event = body or "{}"
    invocation_type = request_headers.get("x-amz-invocation-type", "RequestResponse")
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        threading.Thread(target=_run_async, args=(self, event), daemon=True).start()
        return b""
    outcome = run(self, event)
    if outcome.errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    tail = "\n".join(outcome.logs).encode()[-4096:]
    response_headers["x-amz-log-result"] = base64.b64encode(tail).decode()
    return outcome.payload.encode()
