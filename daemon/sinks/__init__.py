"""Consumers of inspections: each takes finished inspections from the frame loop."""
