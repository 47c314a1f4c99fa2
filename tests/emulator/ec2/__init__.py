"""EC2 in the emulator: fidelity fixes to moto's EC2 (``models``)."""
