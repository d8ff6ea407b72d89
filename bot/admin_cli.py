"""Staff commands of the command line: invitations, revocations and broadcasts."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from sqlalchemy import select
from telegram import Bot
from telegram.error import TelegramError

from bot.core.errors import InvalidInput
from bot.db.models import Broadcast, DesaAdat, User
from bot.i18n import translator
from bot.runtime import Runtime
from bot.services.broadcasts import Target, create_broadcast
from bot.services.roles import RoleName, create_invitation, deep_link, revoke_role

CLI = "cli"


def _bot(runtime: Runtime) -> Bot:
    settings = runtime.settings
    assert settings.telegram_bot_token is not None
    base_url = settings.telegram_api_base_url or "https://api.telegram.org/bot"
    return Bot(settings.telegram_bot_token.get_secret_value(), base_url=base_url)


async def _bot_username(runtime: Runtime, given: str | None) -> str | None:
    settings = runtime.settings
    if given or settings.telegram_bot_username:
        return given or settings.telegram_bot_username
    if settings.telegram_bot_token is None:
        return None
    try:
        async with _bot(runtime) as bot:
            return bot.username
    except TelegramError:
        return None


async def _refresh_menu(runtime: Runtime, telegram_id: int) -> None:
    """Show the person the command menu of the roles they still hold (needs the token)."""
    from bot.channels.telegram import refresh_role_menu

    settings = runtime.settings
    if settings.telegram_bot_token is None:
        print(
            "(TELEGRAM_BOT_TOKEN is not set, so their Telegram command menu still lists the "
            "removed commands; the bot refuses them all the same)",
            file=sys.stderr,
        )
        return
    try:
        async with _bot(runtime) as bot:
            await refresh_role_menu(bot, runtime, telegram_id)
    except TelegramError as exc:
        print(f"Could not update their command menu: {exc.message}", file=sys.stderr)


def _village_code(runtime: Runtime, text: str) -> str | None:
    """The code of the village `text` names (a code or a name); None after saying why not."""
    found = runtime.areas.find_village(text)
    if len(found) == 1:
        village = found[0]
        if village.code != text.strip():
            print(f"Village: {runtime.areas.label(village)}", file=sys.stderr)
        return village.code
    if not found:
        looks_like_code = text.strip().replace(".", "").isdigit()
        what = "has the code" if looks_like_code else "is called"
        print(f"No village of the branch {what} {text.strip()!r}.", file=sys.stderr)
        return None
    print(
        f"{text!r} matches {len(found)} villages; give --village one of these codes:",
        file=sys.stderr,
    )
    for village in found:
        print(f"  {runtime.areas.label(village)}", file=sys.stderr)
    return None


async def run_admin_command(runtime: Runtime, args: argparse.Namespace) -> int:
    """Run invite, revoke, broadcast or broadcast-status."""
    t = translator("en")
    if args.command == "invite":
        village_code = None
        if args.village is not None:
            village_code = _village_code(runtime, args.village)
            if village_code is None:
                return 1
        async with runtime.sessions() as session, session.begin():
            try:
                payload = await create_invitation(
                    session,
                    runtime.areas,
                    role=RoleName(args.role),
                    village_code=village_code,
                    desa_adat_id=args.desa_adat,
                    actor_label=CLI,
                    days=runtime.settings.invitation_days,
                )
            except InvalidInput as exc:
                print(t(exc.key, **exc.params), file=sys.stderr)
                return 1
        username = await _bot_username(runtime, args.bot_username)
        if username:
            print(deep_link(username, payload))
            return 0
        # The payload alone on standard output, so a script can take it; the note apart.
        print(payload, flush=True)
        print(
            "This is the start payload: set TELEGRAM_BOT_USERNAME (or --bot-username) "
            "to print the t.me link.",
            file=sys.stderr,
        )
        print(
            f"In `make chat`, as another user (:pengguna 2), type:  :buka {payload}",
            file=sys.stderr,
        )
        return 0
    if args.command == "revoke":
        async with runtime.sessions() as session, session.begin():
            user = await session.scalar(select(User).where(User.telegram_id == args.telegram_id))
            if user is None:
                print("No such user.", file=sys.stderr)
                return 1
            removed = await revoke_role(session, user, RoleName(args.role), actor_label=CLI)
        print(f"Removed {removed} role(s).")
        if removed:
            await _refresh_menu(runtime, args.telegram_id)
        return 0 if removed else 1
    if args.command == "broadcast":
        return await _broadcast(runtime, args)
    return await _broadcast_status(runtime, args.id)


async def desa_adat_exists(runtime: Runtime, number: int) -> bool:
    """Whether the desa adat list holds this id; if not, says so in one line."""
    async with runtime.sessions() as session:
        if await session.get(DesaAdat, number) is not None:
            return True
    print(
        f"--desa-adat: no desa adat has the id {number} (see `desa-adat import`).",
        file=sys.stderr,
    )
    return False


async def _broadcast(runtime: Runtime, args: argparse.Namespace) -> int:
    try:
        text = args.text_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"Cannot read {args.text_file}: {exc}", file=sys.stderr)
        return 1
    if not text:
        print(f"{args.text_file} is empty.", file=sys.stderr)
        return 1
    when = None
    if args.at:
        try:
            when = datetime.strptime(args.at, "%Y-%m-%d %H:%M").replace(tzinfo=runtime.settings.tz)
        except ValueError:
            print('--at needs a WITA time like "2026-12-01 09:00"', file=sys.stderr)
            return 2
    if args.village:
        target = Target("village", args.village, args.audience)
        if args.village not in runtime.areas.village_by_code:
            print(f"Unknown village code {args.village}.", file=sys.stderr)
            return 1
    elif args.desa_adat is not None:
        if not await desa_adat_exists(runtime, args.desa_adat):
            return 1
        target = Target("desa_adat", str(args.desa_adat), args.audience)
    elif args.regency:
        if args.regency not in runtime.areas.regency_by_code:
            print(f"{args.regency} is not a regency of the branch.", file=sys.stderr)
            return 1
        target = Target("regency", args.regency, args.audience)
    else:
        target = Target("all", None, args.audience)
    async with runtime.sessions() as session, session.begin():
        broadcast = await create_broadcast(
            session,
            target,
            settings=runtime.settings,
            cipher=runtime.cipher,
            text=text,
            actor_label=CLI,
            scheduled_at=when,
        )
    print(broadcast.id)
    return 0


async def _broadcast_status(runtime: Runtime, number: int) -> int:
    from bot.services.delivery import broadcast_counts

    async with runtime.sessions() as session:
        broadcast = await session.get(Broadcast, number)
        if broadcast is None:
            print(f"No broadcast {number}.", file=sys.stderr)
            return 1
        counts = await broadcast_counts(session, number)
    print(f"broadcast {number}: {broadcast.state}")
    for name in (
        "total",
        "pending",
        "sending",
        "sent",
        "blocked",
        "failed",
        "uncertain",
        "skipped",
    ):
        print(f"{name:>10}: {getattr(counts, name)}")
    return 0
