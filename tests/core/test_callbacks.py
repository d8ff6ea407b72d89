"""Button data: typed payloads through one codec, within Telegram's 64 bytes."""

from __future__ import annotations

import pytest

from bot.core.callbacks import (
    BroadcastControl,
    ComposeChoice,
    ComposeScope,
    FormAnswer,
    MenuAction,
    RevokePick,
    Stale,
    decode,
    encode,
)


@pytest.mark.parametrize(
    "payload",
    [
        FormAnswer("village", "page2"),
        MenuAction("register"),
        RevokePick(12, "perbekel"),
        ComposeScope("all", None),
        ComposeScope("village", "51.02.05.2006"),
        ComposeChoice(7, "content", "tpl", "benefits"),
        BroadcastControl("pause", 31),
    ],
)
def test_every_payload_survives_the_round_trip(payload: object) -> None:
    assert decode(encode(payload)) == payload  # type: ignore[arg-type]


def test_todays_grammar_is_kept_where_old_buttons_exist() -> None:
    assert encode(MenuAction("register")) == "menu:register"
    assert decode("bc:cancel:4") == BroadcastControl("cancel", 4)
    assert decode("sc:scope:all:") == ComposeScope("all", None)


def test_data_over_64_bytes_is_refused_when_the_button_is_built() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        encode(FormAnswer("village", "x" * 60))
    with pytest.raises(ValueError, match="may not contain"):
        encode(FormAnswer("village", "a:b"))


def test_old_or_forged_data_is_recognised_as_stale() -> None:
    # Compose buttons before the codec carried no broadcast or step: their tag is retired.
    assert decode("sc:tpl:benefits") == Stale("sc", "sc:tpl:benefits")
    assert decode("bc:pause:abc") == Stale("bc", "bc:pause:abc")
    assert decode("rv:1") == Stale("rv", "rv:1")
    assert decode("nonsense") == Stale(None, "nonsense")


@pytest.mark.parametrize(
    "data",
    [
        "bc:cancel:99999999999999999999",  # no database column holds it
        "bc:cancel:2147483648",  # one over the largest row id
        "rv:-1:perbekel",
        "iuran:²",  # a Unicode digit int() cannot read
        "iuran:١٠٠",  # Arabic-Indic digits
        "iuran: 5",
        "iuran:+5",
        "pp:1:1e3",
    ],
)
def test_numbers_out_of_range_or_not_ascii_digits_are_stale(data: str) -> None:
    assert isinstance(decode(data), Stale)
    assert decode(data).tag == data.split(":")[0]  # type: ignore[attr-defined]


def test_the_largest_row_id_and_zero_still_decode() -> None:
    assert decode("bc:cancel:2147483647") == BroadcastControl("cancel", 2**31 - 1)
    assert decode("rv:0:perbekel") == RevokePick(0, "perbekel")
