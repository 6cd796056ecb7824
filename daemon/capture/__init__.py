"""Capture: where frames come from (camera sources, image files) and when to inspect (triggers)."""
