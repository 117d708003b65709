"""Loopback fakes of the services the project talks to (used by tests and benchmarks)."""
