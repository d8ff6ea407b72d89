"""Tables of the bot; every change goes through an Alembic migration."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    and_,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Statuses that hold a NIK: a second application for the same NIK is refused while one exists.
ACTIVE_STATUSES = ("submitted", "verified", "registered")


def utcnow() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A moment stored in UTC and always read back timezone-aware.

    SQLite keeps only the wall-clock part of a timestamp, so without this a time given in
    WITA would be stored as if it were UTC, and values would come back naive.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base with stable constraint names for migrations."""

    metadata = MetaData(naming_convention=NAMING)


class Province(Base):
    __tablename__ = "provinces"
    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class Regency(Base):
    __tablename__ = "regencies"
    code: Mapped[str] = mapped_column(String(5), primary_key=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("provinces.code"), index=True)
    name: Mapped[str] = mapped_column(String(100))


class District(Base):
    __tablename__ = "districts"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    regency_code: Mapped[str] = mapped_column(ForeignKey("regencies.code"), index=True)
    name: Mapped[str] = mapped_column(String(100))


class Village(Base):
    __tablename__ = "villages"
    code: Mapped[str] = mapped_column(String(13), primary_key=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))


class DesaAdat(Base):
    __tablename__ = "desa_adat"
    __table_args__ = (UniqueConstraint("name", "village_code", name="uq_desa_adat_name_village"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    village_code: Mapped[str | None] = mapped_column(ForeignKey("villages.code"), index=True)
    district_code: Mapped[str | None] = mapped_column(ForeignKey("districts.code"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class User(Base):
    """A person who talks to the bot on some channel."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    language: Mapped[str | None] = mapped_column(String(5))
    # What a free-text answer outside the registration means, e.g. "iuran" for the calculator.
    mode: Mapped[str | None] = mapped_column(String(20))
    # Plain state of a multi-step non-registration dialogue (composing a broadcast, ...).
    mode_state: Mapped[str | None] = mapped_column(Text)
    # Set by /berhenti: no broadcasts until /mulai.
    opted_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Set when Telegram says the person blocked the bot; cleared when they write again.
    blocked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Set by /hapus: consent withdrawn and personal data erased; nothing more is processed or
    # sent to them (no broadcasts, reminders or notices) until they consent again.
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # The newest message the bot sent to this person: a button pressed on it may turn it
    # into the next question (an older one may be out of sight).
    last_message_id: Mapped[int | None] = mapped_column(BigInteger)


class Consent(Base):
    """Proof of a consent decision under UU PDP: who, when, which text, in which language."""

    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"), index=True)
    given: Mapped[bool] = mapped_column(Boolean)
    # "chat": the person in their own chat; "in_person": given to a leader, who witnessed it.
    method: Mapped[str] = mapped_column(String(20), default="chat", server_default="chat")
    witness_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text_version: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Application(Base):
    """One registration, from first answer (draft) to its final status.

    Answers live encrypted in one blob; the plain columns are what lookups and
    reports need and hold nothing sensitive (the NIK only as a keyed hash).
    """

    __tablename__ = "applications"
    __table_args__ = (
        Index(
            "uq_applications_active_nik",
            "nik_hash",
            unique=True,
            sqlite_where=text("status IN ('submitted', 'verified', 'registered')"),
            postgresql_where=text("status IN ('submitted', 'verified', 'registered')"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    reference: Mapped[str | None] = mapped_column(String(20), unique=True)
    step: Mapped[str | None] = mapped_column(String(30))
    # Plain, non-sensitive conversation state: list page, editing from the summary, and so on.
    flow_state: Mapped[str] = mapped_column(Text, default="{}")
    answers_enc: Mapped[str | None] = mapped_column(Text)
    nik_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    village_code: Mapped[str | None] = mapped_column(ForeignKey("villages.code"), index=True)
    desa_adat_id: Mapped[int | None] = mapped_column(ForeignKey("desa_adat.id"), index=True)
    occupation: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(5), default="id")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=utcnow, onupdate=utcnow, index=True
    )
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Assisted registration: the leader who filled the form for a resident without a phone,
    # and the keyed hash of the claim code with which the resident's own account takes it over.
    assisted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    claim_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The status workflow (issue 8): when the status last changed, the KPJ number and the day
    # cover starts once registered, and the note that goes with the status (a rejection's
    # reason). None of these is personal data.
    status_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    kpj_number: Mapped[str | None] = mapped_column(String(20))
    covered_from: Mapped[date | None] = mapped_column(Date)
    status_note: Mapped[str | None] = mapped_column(String(500))
    # /tinjau: the staff member whose card this is until the claim runs out, so that two
    # people reviewing at once never get the same application.
    review_claimed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    review_claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Personal data erased (/hapus, or the retention job): what stays is a tombstone (the
    # reference, the dates, the status) so staff know why it has no answers.
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # A CSV export's cells made from the answers ahead of time, encrypted, and the signature
    # of what made them (bot.services.export_ahead). A trigger forgets both whenever
    # answers_enc changes (migration 0014): they never outlive the answers.
    export_cells_enc: Mapped[str | None] = mapped_column(Text)
    export_cells_for: Mapped[str | None] = mapped_column(String(32))


def owned_by(user_id: int | Mapped[int]) -> ColumnElement[bool]:
    """A person's own applications: not those a leader filled for a resident who has not
    claimed them yet (they wait under the leader's account, but are not the leader's)."""
    return and_(Application.user_id == user_id, Application.claim_code_hash.is_(None))


class StatusChange(Base):
    """One step of an application's status: who, when, from, to, and why (never edited)."""

    __tablename__ = "status_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # The staff member, or the worker who withdrew; none for the command line.
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # "cli", "import" or "bot" when no person acted in the chat.
    actor_label: Mapped[str | None] = mapped_column(String(40))
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    kpj_number: Mapped[str | None] = mapped_column(String(20))
    covered_from: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(500))


class PaymentReminder(Base):
    """A payment reminder written for one due date: unique, so it goes out once."""

    __tablename__ = "payment_reminders"
    __table_args__ = (
        UniqueConstraint("application_id", "due_on", name="uq_payment_reminders_once"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    due_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Role(Base):
    """A role held by a user: admin/staff for the branch, or a leader of one village."""

    __tablename__ = "roles"
    __table_args__ = (
        UniqueConstraint("user_id", "role", "village_code", "desa_adat_id", name="uq_roles_grant"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # admin, staff, perbekel, lurah, bendesa_adat
    role: Mapped[str] = mapped_column(String(20))
    village_code: Mapped[str | None] = mapped_column(ForeignKey("villages.code"), index=True)
    desa_adat_id: Mapped[int | None] = mapped_column(ForeignKey("desa_adat.id"), index=True)
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Invitation(Base):
    """A one-time deep-link token that binds a role to whoever opens it first."""

    __tablename__ = "invitations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    village_code: Mapped[str | None] = mapped_column(ForeignKey("villages.code"))
    desa_adat_id: Mapped[int | None] = mapped_column(ForeignKey("desa_adat.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    used_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class StaffRequest(Base):
    """Something about an application that staff must look at in /tinjau, then close.

    "nik_dispute": someone tried a NIK this application holds (they were told only that it
    cannot be registered from their chat). "correction": the worker asks for a correction of
    an application already verified (`text_enc`: what they wrote, encrypted).
    """

    __tablename__ = "staff_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    # Who asked (the worker) or tried the NIK (someone else).
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    text_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class AuditEntry(Base):
    """Who did what to whom: grants, revocations, refused privileged actions, broadcasts.

    Rows are only ever added; on PostgreSQL a trigger refuses UPDATE and DELETE (migration 0009).
    """

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # "cli" for the command line, "bot" for the bot itself, otherwise empty.
    actor_label: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40), index=True)
    target: Mapped[str | None] = mapped_column(String(120))
    details: Mapped[str] = mapped_column(Text, default="{}")


class CoverageTarget(Base):
    """How many informal workers a village could register: the denominator of coverage.

    Imported by staff (`targets import`); an import replaces the whole table.
    """

    __tablename__ = "coverage_targets"
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), primary_key=True)
    potential_workers: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Follow(Base):
    """A resident following the news of a desa/kelurahan or a desa adat."""

    __tablename__ = "follows"
    __table_args__ = (
        UniqueConstraint("user_id", "village_code", "desa_adat_id", name="uq_follows_target"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    village_code: Mapped[str | None] = mapped_column(ForeignKey("villages.code"), index=True)
    desa_adat_id: Mapped[int | None] = mapped_column(ForeignKey("desa_adat.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Broadcast(Base):
    """A message from a leader or staff to an audience, sent through `Delivery` rows."""

    __tablename__ = "broadcasts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # village, desa_adat, regency, all
    scope_kind: Mapped[str] = mapped_column(String(20))
    scope_code: Mapped[str | None] = mapped_column(String(20))
    # followers, applicants, status, unfinished
    audience: Mapped[str] = mapped_column(String(20), default="followers")
    status_filter: Mapped[str | None] = mapped_column(String(20))
    template: Mapped[str | None] = mapped_column(String(40))
    # A leader's own text (or a photo's caption), encrypted: it may name people.
    text_enc: Mapped[str | None] = mapped_column(Text)
    # The photo, encrypted too (`Cipher.encrypt_bytes`): it may show people.
    photo_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # composing, scheduled, sending, paused, cancelled, done
    state: Mapped[str] = mapped_column(String(20), default="composing", index=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # In whose name it goes out (a role name, none for the command line) and that role's
    # place as residents know it ("Desa Dajan Peken"): recipients are told who sent it.
    sender_role: Mapped[str | None] = mapped_column(String(20))
    sender_place: Mapped[str | None] = mapped_column(String(120))
    # Where the live progress message is (the sender's chat), edited in place.
    progress_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger)


class Delivery(Base):
    """One recipient of one broadcast: unique, so nobody gets a broadcast twice."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "user_id", name="uq_deliveries_once"),
        Index("ix_deliveries_pending", "state", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # pending, sending, sent, blocked, failed, uncertain, skipped
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(60))
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    error: Mapped[str | None] = mapped_column(String(200))


class InboxUpdate(Base):
    """An update received from a channel, kept until it has been handled.

    It is written (and committed) before the channel is told it arrived, and deleted in the
    transaction that handles it, so an update is handled once, even across a crash.
    """

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "update_id", name="uq_inbox_update"),
        Index("ix_inbox_chat", "chat_id", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), default="telegram")
    update_id: Mapped[int] = mapped_column(BigInteger)
    # Updates of one chat are handled one at a time, in order; 0 for updates without a chat.
    chat_id: Mapped[int] = mapped_column(BigInteger)
    # The update as received, encrypted (it carries what people typed).
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # pending; failed once handling has failed `attempts` times (kept for the operator).
    state: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(UtcDateTime())
    error: Mapped[str | None] = mapped_column(String(200))


class OutboxMessage(Base):
    """A message (or edit, callback answer, command menu) waiting to be sent.

    Written in the transaction that decided it, sent by the one sender, deleted once sent.
    A reply stays "pending" while its request is out, so after a crash it is simply sent
    again; a notice is "sending" then, and becomes "uncertain" after a crash.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "state", "priority", "id"),
        Index("ix_outbox_chat", "chat_id", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    # 0: a reply to what someone just did; 1: a notice to someone else.
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # What to do and with what, encrypted: the text may carry personal data.
    payload: Mapped[str] = mapped_column(Text)
    # pending, failed, blocked; for a notice (never sent twice) also sending and uncertain.
    # Sent rows are deleted.
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # The inbox row (channel update id) whose handling wrote this row, if any.
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(200))


class ExportJob(Base):
    """An export too large to write while the person waits: written by the leader, then sent.

    `request` holds the export's filters as plain JSON (codes and flags, no personal data).
    The finished files are queued in the outbox in the transaction that marks the job done,
    so a crash before that runs the job again, and never sends its file twice.
    """

    __tablename__ = "export_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    request: Mapped[str] = mapped_column(Text)
    # pending, running, done, failed
    state: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    expected_rows: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int | None] = mapped_column(Integer)
    # The "preparing your file" message, edited with the progress once it is sent.
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class KeyCheck(Base):
    """One value encrypted under the data key when the database first met it.

    Start-up opens it before anything else: a different DATA_KEY (or a lost key file) is
    refused at once instead of failing on every person's data later. `keys rotate` moves it
    to the new key with everything else.
    """

    __tablename__ = "key_check"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
