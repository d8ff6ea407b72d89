"""The contribution calculator (/iuran): what JKK + JKM, with or without JHT, cost for an income."""

from __future__ import annotations

from bot.core.callbacks import CalculatorAmount, MenuAction, encode
from bot.core.contribution import PAYMENT_PERIODS, check_income
from bot.core.errors import InvalidInput
from bot.core.messages import Button, Reply, button_rows
from bot.core.money import format_rupiah, parse_rupiah
from bot.core.questions import package
from bot.core.states import UserMode
from bot.services.registration import active_application
from bot.services.turn import Turn


class Calculator:
    """Asks for an income and shows the contribution for every payment period."""

    async def cmd_calculator(self, turn: Turn, _args: str = "") -> None:
        """Ask for the income, with the usual amounts as buttons."""
        turn.user.mode = UserMode.IURAN
        buttons = [
            Button(format_rupiah(amount), encode(CalculatorAmount(amount)))
            for amount in turn.services.settings.income_options
        ]
        turn.say(Reply(turn.t("calculator.prompt"), buttons=button_rows(buttons, 2)))

    async def typed(self, turn: Turn, text: str) -> None:
        """A typed income."""
        try:
            income = parse_rupiah(text)
            check_income(income, turn.services.settings.rates)
        except InvalidInput as exc:
            turn.error(exc)
            await self.cmd_calculator(turn)
            return
        await self.result(turn, income)

    async def amount_button(self, turn: Turn, pick: CalculatorAmount) -> None:
        """One of the income buttons."""
        try:
            check_income(pick.amount, turn.services.settings.rates)
        except InvalidInput:
            # Not an amount the calculator offers: a forged or very old button.
            turn.outcome.stale_button = True
            turn.text("button.stale")
            return
        await self.result(turn, pick.amount)

    async def result(self, turn: Turn, income: int) -> None:
        """The contribution for `income`, then what to do next."""
        t = turn.t
        turn.user.mode = None
        rates = turn.services.settings.rates
        basic = package(income, rates, with_jht=False)
        full = package(income, rates, with_jht=True)
        periods = "\n".join(
            t(
                "calculator.period_line",
                months=months,
                basic=format_rupiah(basic.monthly * months),
                full=format_rupiah(full.monthly * months),
            )
            for months in PAYMENT_PERIODS
        )
        turn.text(
            "calculator.result",
            income=format_rupiah(income),
            jkk=format_rupiah(basic.jkk),
            jkm=format_rupiah(basic.jkm),
            jht=format_rupiah(full.jht),
            basic=format_rupiah(basic.monthly),
            full=format_rupiah(full.monthly),
            periods=periods,
        )
        again = Button(t("menu.calculator_again"), encode(MenuAction("iuran")))
        if turn.draft is None and await active_application(turn) is not None:
            # Nothing to register again: the calculator is just a calculator for her now.
            turn.say(Reply(t("calculator.next_registered"), buttons=((again,),)))
            return
        register = "menu.continue" if turn.draft is not None else "menu.register"
        turn.say(
            Reply(
                t("calculator.next"),
                buttons=((Button(t(register), encode(MenuAction("register"))), again),),
            )
        )
