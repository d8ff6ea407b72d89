"""The states of a broadcast, of one delivery, and of a person's non-registration dialogue.

The database columns hold these values as plain strings; the enums name them once. The
broadcast lifecycle is drawn in docs/broadcast.mmd, and a test checks the drawing against
`BROADCAST_TRANSITIONS`.
"""

from __future__ import annotations

from enum import StrEnum


class BroadcastState(StrEnum):
    """Where a broadcast is in its life."""

    COMPOSING = "composing"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class DeliveryState(StrEnum):
    """Where one recipient's copy of a broadcast is."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    BLOCKED = "blocked"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    SKIPPED = "skipped"


class ApplicationStatus(StrEnum):
    """Where an application stands (docs/registration.mmd draws the registration part)."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    VERIFIED = "verified"
    REGISTERED = "registered"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class UserMode(StrEnum):
    """A multi-step dialogue outside the registration form (`User.mode`)."""

    IURAN = "iuran"
    INVITE = "invite"
    COMPOSE = "compose"


B = BroadcastState
# Every change of state the code makes, from -> to; nothing else may happen.
BROADCAST_TRANSITIONS: dict[BroadcastState, frozenset[BroadcastState]] = {
    # The leader sends now or schedules, or gives up while composing.
    B.COMPOSING: frozenset({B.SENDING, B.SCHEDULED, B.CANCELLED}),
    # Its time comes (delivery engine), or staff pause it, or it is cancelled.
    B.SCHEDULED: frozenset({B.SENDING, B.PAUSED, B.CANCELLED}),
    # Every recipient handled (delivery engine), paused, or cancelled.
    B.SENDING: frozenset({B.DONE, B.PAUSED, B.CANCELLED}),
    # Resumed: sending again, or waiting for a scheduled time not yet come.
    B.PAUSED: frozenset({B.SENDING, B.SCHEDULED, B.CANCELLED}),
    B.CANCELLED: frozenset(),
    B.DONE: frozenset(),
}


def sources_of(target: BroadcastState) -> tuple[BroadcastState, ...]:
    """The states a broadcast may move to `target` from."""
    return tuple(s for s, targets in BROADCAST_TRANSITIONS.items() if target in targets)


# Delivery rows that have ended; "pending" and "sending" are the only ones still moving.
FINAL_DELIVERY_STATES = (
    DeliveryState.SENT,
    DeliveryState.BLOCKED,
    DeliveryState.FAILED,
    DeliveryState.UNCERTAIN,
    DeliveryState.SKIPPED,
)
