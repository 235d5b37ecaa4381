"""Typed rejections: why an event was refused. A rejected event changes nothing."""

from __future__ import annotations

import enum


class RejectCode(enum.StrEnum):
    """Machine-readable reason classes; the message says the rest in words."""

    INVALID = "invalid"
    UNKNOWN_ORDER = "unknown_order"
    UNKNOWN_OPERATION = "unknown_operation"
    UNKNOWN_WORK_CENTER = "unknown_work_center"
    WRONG_WORK_CENTER = "wrong_work_center"
    STALE_REVISION = "stale_revision"
    ORDER_NOT_ACTIVE = "order_not_active"
    BAD_STATE = "bad_state"
    SEQUENCE = "sequence"
    OVER_PRODUCTION = "over_production"
    COUNTING_SOURCE = "counting_source"
    NO_RUNNING_OPERATION = "no_running_operation"
    WORK_CENTER_BUSY = "work_center_busy"
    UNKNOWN_REASON = "unknown_reason"
    ABSURD_QUANTITY = "absurd_quantity"
    NOT_REVERSIBLE = "not_reversible"
    BELOW_MADE = "below_made"
    NOT_ENOUGH_UNASSIGNED = "not_enough_unassigned"


class Rejection(Exception):
    """An event the WIP model refuses, with a code and a sentence for people."""

    def __init__(self, code: RejectCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"Rejection({self.code.value!r}, {self.message!r})"
