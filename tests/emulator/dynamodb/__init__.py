"""DynamoDB in the emulator: requests served one at a time, as DynamoDB's isolation requires (``responses``)."""
