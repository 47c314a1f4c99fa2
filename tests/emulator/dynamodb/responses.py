"""DynamoDB's request handling in the emulator: one request at a time per process.

DynamoDB makes every single-item write and every TransactWriteItems serializable with one another, and never lets a
read see a transaction half applied. moto serves requests on many threads without a lock: a conditional write checks
its condition and writes in two steps (two writers can both pass `instances < :cap`), a TransactWriteItems applies
its actions one by one (a concurrent Query sees them half done), and a cancelled one restores a copy of the whole
table taken when it began, undoing every write other requests made meanwhile. Serializing the requests gives
DynamoDB's guarantees; moto's answers take milliseconds, so the cost is small. (DynamoDB may also cancel a transaction
with TransactionConflict when another one touches the same item; here the second one waits instead.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()


def serialized(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """moto's DynamoDB dispatch, one request at a time."""

    def call_action(self: Any) -> Any:
        with _lock:
            return original(self)

    return call_action
