"""Plant configuration: one YAML file validated by pydantic."""

from mes_edge.config.loader import (
    ConfigError,
    format_validation_error,
    load_settings,
    parse_settings,
)
from mes_edge.config.settings import Settings

__all__ = ["ConfigError", "Settings", "format_validation_error", "load_settings", "parse_settings"]
