"""Counts every AWS API request the local cloud serves over HTTP, by service and operation (for the benchmark).

Everything the deployed system does reaches the cloud over HTTP: the Lambdas, the state machine's interpreter and
the SSM Agent's AWS CLI. The emulated CodePipeline service itself works on the backends directly and is not counted.
A request is named `service:Operation`, its signing service (SigV4 credential scope) and the operation as the
protocol carries it: the X-Amz-Target header (JSON protocols), the Action parameter (query protocols: EC2, STS) or
the REST route (Lambda's Invoke, S3's object calls).
"""

from __future__ import annotations

import io
import re
import threading
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

_lock = threading.Lock()
_requests: Counter[str] = Counter()
_scheduled: Counter[str] = Counter()  # of which made by invocations an EventBridge schedule started (sweep, reaper)
_throttled: Counter[str] = Counter()  # of which answered RequestLimitExceeded (emulator.ec2.throttling)
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
# The User-Agent app id of the tests' own clients (harness.deployment): their requests observe, they are not counted.
OBSERVER_APP_ID = "localcloud-observer"
_S3_OPERATIONS = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}


def _service(environ: dict[str, Any]) -> str:
    """The signing service of a request (its SigV4 credential scope), e.g. 'lambda', 'states', 's3'."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else "unsigned"


def _query_action(environ: dict[str, Any]) -> str:
    """The Action of a query-protocol request, from its query string or its form body (which is put back)."""
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if action:
        return action[0]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not length or "form-urlencoded" not in environ.get("CONTENT_TYPE", ""):
        return ""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]


def operation(environ: dict[str, Any]) -> str:
    """`service:Operation` of one request."""
    service = _service(environ)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
    if service == "lambda":
        return f"{service}:{'Invoke' if path.endswith('/invocations') else method + ' ' + path.split('/')[-1]}"
    if service == "s3":
        return f"{service}:{_S3_OPERATIONS.get(method, method)}"
    return f"{service}:{_query_action(environ) or method}"


def counting_requests(original: Any) -> Any:
    """moto's WSGI dispatcher, counting every request but those of its own /moto-api and of the tests' clients."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from emulator.awslambda import runtime

    def __call__(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
        user_agent = environ.get("HTTP_USER_AGENT", "")
        observer = is_observer(user_agent)
        if not (observer or environ.get("PATH_INFO", "").startswith("/moto-api")):
            name = operation(environ)
            caller = runtime.calling_worker(user_agent)
            with _lock:
                _requests[name] += 1
                if caller is not None and caller.scheduled:
                    _scheduled[name] += 1
        return original(self, environ, start_response)

    return __call__


def requests() -> Counter[str]:
    """Requests per `service:Operation` since the process started (take differences around what you measure)."""
    with _lock:
        return Counter(_requests)


def scheduled_requests() -> Counter[str]:
    """Of requests(), those made by Lambda invocations that an EventBridge schedule started (the sweep, the reaper):
    they cost per minute, whatever runs, not per job."""
    with _lock:
        return Counter(_scheduled)


def record_throttled(name: str) -> None:
    """One request `service:Operation` was refused by a token bucket."""
    with _lock:
        _throttled[name] += 1


def throttled_requests() -> Counter[str]:
    """Of requests(), those refused with RequestLimitExceeded, per `service:Operation` (observers' never are)."""
    with _lock:
        return Counter(_throttled)


def is_observer(user_agent: str) -> bool:
    """Is this a request of the tests' own clients (which observe the system and are neither counted nor throttled)?"""
    return f"app/{OBSERVER_APP_ID}" in user_agent


def by_service(counts: Counter[str]) -> Counter[str]:
    """Requests per service from per-operation counts."""
    services: Counter[str] = Counter()
    for name, count in counts.items():
        services[name.split(":", 1)[0]] += count
    return services
