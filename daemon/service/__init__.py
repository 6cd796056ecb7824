"""The service: its lifecycle, the station that wires capture, model, sinks and transport, and
what it reports (stats) and checks before it starts (preflight)."""
