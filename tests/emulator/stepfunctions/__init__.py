"""Step Functions in the emulator: the ASL interpreter's fixes (``interpreter``), task tokens, definition checks and
billed transitions (``models``), and the operations added to moto's responses (``responses``)."""

from __future__ import annotations

from emulator.stepfunctions.models import count_transitions, transitions, validate_definition

__all__ = ["count_transitions", "transitions", "validate_definition"]
