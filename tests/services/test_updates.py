"""What a channel asks of the services: after-send records, blocking, the role menu's facts."""

from __future__ import annotations

from bot.db.models import Broadcast, Role, User
from bot.runtime import Runtime
from bot.services.roles import Grant, RoleName
from bot.services.updates import menu_owner, record_sent, set_blocked

DAJAN_PEKEN = "51.02.05.2006"


async def progress_message_of(runtime: Runtime, broadcast_id: int) -> int | None:
    async with runtime.sessions() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        return broadcast.progress_message_id


async def test_a_progress_message_id_is_kept_only_from_the_chat_it_reports_to(
    runtime: Runtime,
) -> None:
    """The leader's chat names the progress message; another chat, or an unknown name, cannot."""
    async with runtime.sessions() as session, session.begin():
        broadcast = Broadcast(
            scope_kind="village", scope_code=DAJAN_PEKEN, template="benefits", progress_chat_id=6100
        )
        session.add(broadcast)

    await record_sent(runtime, f"broadcast:{broadcast.id}", 6199, 41)
    await record_sent(runtime, f"nothing:{broadcast.id}", 6100, 42)
    assert await progress_message_of(runtime, broadcast.id) is None

    await record_sent(runtime, f"broadcast:{broadcast.id}", 6100, 43)
    assert await progress_message_of(runtime, broadcast.id) == 43


async def test_the_menu_facts_of_a_perbekel_and_of_someone_who_never_wrote(
    runtime: Runtime,
) -> None:
    """A perbekel's menu knows their grant and language; a stranger has none, and blocking
    someone unknown changes nothing."""
    async with runtime.sessions() as session, session.begin():
        user = User(telegram_id=6200, language="en")
        session.add(user)
        await session.flush()
        session.add(Role(user_id=user.id, role="perbekel", village_code=DAJAN_PEKEN))

    owner = await menu_owner(runtime, 6200)
    assert owner is not None
    assert (owner.grants, owner.language) == ([Grant(RoleName.PERBEKEL, DAJAN_PEKEN)], "en")
    assert await menu_owner(runtime, 6299) is None
    await set_blocked(runtime, 6299, blocked=True)
    await set_blocked(runtime, 6200, blocked=True)
    async with runtime.sessions() as session:
        blocked = await session.get(User, user.id)
        assert blocked is not None and blocked.blocked_at is not None
