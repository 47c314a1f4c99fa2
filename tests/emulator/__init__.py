"""The local cloud: moto, extended in-process so the module's whole flow runs without AWS."""
