"""Counts every AWS API request the local cloud serves over HTTP, by service (for the benchmark).

Everything the deployed system does reaches the cloud over HTTP: the Lambdas, the state machine's interpreter and
the SSM Agent's AWS CLI. The emulated CodePipeline service itself works on the backends directly and is not counted.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

_lock = threading.Lock()
_requests: Counter[str] = Counter()
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def _service(environ: dict[str, Any]) -> str:
    """The signing service of a request (its SigV4 credential scope), e.g. 'lambda', 'states', 's3'."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else "unsigned"


def counting_requests(original: Any) -> Any:
    """moto's WSGI dispatcher, counting every request but those of its own /moto-api."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    def __call__(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            with _lock:
                _requests[_service(environ)] += 1
        return original(self, environ, start_response)

    return __call__


def requests() -> Counter[str]:
    """Requests per service since the process started (take differences around what you measure)."""
    with _lock:
        return Counter(_requests)
