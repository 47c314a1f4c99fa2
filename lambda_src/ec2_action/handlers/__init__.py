"""One module per Lambda function; each exposes ``handler(event, context)``."""
