"""Stacks: configured components, opened and wired together."""

from qts_data.stack.health import ComponentHealth, StackHealth
from qts_data.stack.stack import Stack, open_stack

__all__ = ["ComponentHealth", "Stack", "StackHealth", "open_stack"]
