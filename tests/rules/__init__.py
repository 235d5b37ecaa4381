"""Unit tests of the rules: signals and messages -> domain events."""
