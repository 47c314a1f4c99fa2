"""EC2 in the emulator: fidelity fixes to moto's EC2 (``models``), the instance lifecycle moto skips (``instances``,
``responses``, ``exceptions``) and EC2's request throttling (``throttling``)."""
