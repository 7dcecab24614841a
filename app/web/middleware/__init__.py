"""Pure-ASGI middleware: access log, body limits, compression, security headers."""
