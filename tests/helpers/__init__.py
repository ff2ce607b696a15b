"""What several test modules (and the benchmarks) share that is not a fixture."""

from .message_reference import build_message_reference

__all__ = ["build_message_reference"]
