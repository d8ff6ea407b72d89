"""The states of a broadcast, of one delivery, of an application and of a person's dialogue.

The database columns hold these values as plain strings; the enums name them once. The
broadcast lifecycle is drawn in docs/broadcast.mmd and an application's after it is sent in
docs/application-status.mmd; a test checks each drawing against its transitions table.
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
    REVIEW = "review"
    # /hapus: between the first and the second confirmation (buttons only).
    ERASE = "erase"
    # Writing what to correct in an application already verified.
    CORRECTION = "correction"


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


# The buttons of a broadcast's progress message and the state each asks for ("cancel" asks
# to confirm first; "cancel_no" changes nothing).
CONTROL_TARGETS: dict[str, BroadcastState] = {
    "pause": B.PAUSED,
    "resume": B.SENDING,
    "cancel": B.CANCELLED,
    "cancel_yes": B.CANCELLED,
}


def control_sources(target: BroadcastState) -> tuple[BroadcastState, ...]:
    """The states a person (a button, the command line) may move a broadcast to `target` from.

    The state machine's own, except that resuming is from a pause only: a composed or
    scheduled broadcast starts on its own, at its time.
    """
    if target is B.SENDING:
        return (B.PAUSED,)
    return sources_of(target)


# Delivery rows that have ended; "pending" and "sending" are the only ones still moving.
FINAL_DELIVERY_STATES = (
    DeliveryState.SENT,
    DeliveryState.BLOCKED,
    DeliveryState.FAILED,
    DeliveryState.UNCERTAIN,
    DeliveryState.SKIPPED,
)


A = ApplicationStatus
# What staff (and the worker, for a withdrawal) may do to a sent application; nothing else.
APPLICATION_TRANSITIONS: dict[ApplicationStatus, frozenset[ApplicationStatus]] = {
    # Staff check the data, or refuse it; the worker may withdraw.
    A.SUBMITTED: frozenset({A.VERIFIED, A.REJECTED, A.CANCELLED}),
    # Staff register the worker (KPJ number, cover start), or refuse; the worker may withdraw.
    A.VERIFIED: frozenset({A.REGISTERED, A.REJECTED, A.CANCELLED}),
    # Final: a refused or withdrawn worker sends a new application instead.
    A.REGISTERED: frozenset(),
    A.REJECTED: frozenset(),
    A.CANCELLED: frozenset(),
}
