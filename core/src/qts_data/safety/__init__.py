"""Safety states and the controller that propagates them."""

from qts_data.contracts import SafetyChange, SafetyState
from qts_data.safety.controller import SafetyController

__all__ = ["SafetyChange", "SafetyController", "SafetyState"]
