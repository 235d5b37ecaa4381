"""Fault injection: real processes broken for real, each scenario reconciled exactly."""
