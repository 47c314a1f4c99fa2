"""Systems Manager in the emulator: the API layer (``models`` and ``responses``: instance information, SendCommand,
command invocations, cancellation), the command records (``commands``) and the SSM Agent (``agent``: registration,
command execution in a subprocess, output to CloudWatch Logs, status-change events)."""
