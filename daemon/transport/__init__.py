"""Transport: how results and commands travel (the broker link, the outbox, commands in)."""
