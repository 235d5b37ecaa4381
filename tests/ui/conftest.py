"""Fixtures of the UI tests: the running service of the API tests."""

from tests.api.conftest import running

__all__ = ["running"]
