"""Lambda in the emulator, without Docker: deployed zips run in warm worker processes (``runtime``, the host side;
``worker``, the execution environment's process)."""
