"""Stack configuration: loading, environment overrides, validation, secret masking."""

from qts_data.config.loader import RawConfig, load_raw_config
from qts_data.config.model import ComponentConfig, StackConfig, StackSection, validate_config
from qts_data.config.secrets import mask, mask_url

__all__ = [
    "ComponentConfig",
    "RawConfig",
    "StackConfig",
    "StackSection",
    "load_raw_config",
    "mask",
    "mask_url",
    "validate_config",
]
