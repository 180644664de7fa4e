"""A Machine's boards booted and powered together (the Machine inherits
this): every board's boot at once, each on a thread of its own; power in
bulk, one command per BMP."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from actors.boot.bmp import power_boards
from actors.boot.driver import MAX_PARALLEL, BootReport, boot_boards
from actors.boot.options import BMPGiven, BoardBMP, BootOptions, board_bmp
from actors.errors import board_label
from messages.errors import InvalidArgumentError

Address = tuple[str, int]


def check_bmps(
    bmps: Mapping[Any, BMPGiven] | None, boards: Iterable[Hashable]
) -> dict[Hashable, BoardBMP]:
    """Each board's BMP, by name (given as BoardBMPs or
    ``"HOST[:PORT][/BOARD]"``); a name that is no board is refused."""
    known = set(boards)
    out: dict[Hashable, BoardBMP] = {}
    for name, given in (bmps or {}).items():
        if name not in known:
            raise InvalidArgumentError(
                "bmps", name, f"is not one of {sorted(known, key=str)}"
            )
        bmp = board_bmp(given)
        if bmp is not None:
            out[name] = bmp
    return out


class BootsBoards:
    """``boot()``, ``power_on()`` and ``power_off()`` of a Machine."""

    addresses: dict[Hashable, Address]
    #: Each board's BMP, by name (those known).
    bmps: dict[Hashable, BoardBMP]

    def board(self, name: Hashable) -> Any:
        raise NotImplementedError

    def boot(
        self,
        options: BootOptions | bool | Mapping[str, Any] = True,
        *,
        parallel: int = MAX_PARALLEL,
    ) -> dict[Hashable, BootReport]:
        """Bring every board up at once, as Client.boot() does one (the
        image checked once, before anything is sent; a board that answers
        is never booted again); each board's report by name. The BMPs are
        ``options.bmp`` (a mapping of names to them) or the Machine's
        ``bmps``. MachineBootError, once every board has ended, naming
        each board that did not come up and why (its ``errors``); the
        others are up. A board's client in this process records its boot
        in its capture (the boot frames, the BMP's exchanges)."""
        given = BootOptions.of(options)
        if given.bmp is None:
            given = replace(given, bmp=self.bmps)
        elif isinstance(given.bmp, BoardBMP) and len(self.addresses) > 1:
            raise InvalidArgumentError(
                "bmp",
                str(given.bmp),
                "a Machine's boards each have one: give a mapping of board "
                "names to BoardBMPs",
            )
        elif isinstance(given.bmp, Mapping):
            check_bmps(given.bmp, self.addresses)
        boards = {
            name: (self.board(name), address, board_label(name, address))
            for name, address in self.addresses.items()
        }
        captures = {name: board.boot_capture for name, (board, _, _) in boards.items()}
        return boot_boards(boards, given, parallel=parallel, captures=captures)

    def power_on(
        self, boards: Iterable[Hashable] | None = None, *, timeout: float | None = None
    ) -> dict[Address, tuple[int, ...]]:
        """Power ``boards`` (default: every board with a BMP) on through
        their BMPs, one command per BMP; the boards switched, by BMP. A
        board powered on is back in its boot ROM: boot() it. A board's
        client in this process records the BMP's exchanges in its capture,
        as boot() does."""
        return self._power(boards, True, timeout)

    def power_off(
        self, boards: Iterable[Hashable] | None = None, *, timeout: float | None = None
    ) -> dict[Address, tuple[int, ...]]:
        """Power ``boards`` (default: every board with a BMP) off, as
        power_on(); what they held is gone."""
        return self._power(boards, False, timeout)

    def _power(
        self, boards: Iterable[Hashable] | None, on: bool, timeout: float | None
    ) -> dict[Address, tuple[int, ...]]:
        bmps = self._bmps_of(boards)
        captures = {name: self.board(name).boot_capture for name in bmps}
        return power_boards(bmps, on, timeout=timeout, captures=captures)

    def _bmps_of(self, boards: Iterable[Hashable] | None) -> dict[Hashable, BoardBMP]:
        names = list(self.bmps) if boards is None else list(boards)
        missing = [name for name in names if name not in self.bmps]
        if missing:
            raise InvalidArgumentError(
                "boards", missing, "have no BMP: give the Machine bmps={name: ...}"
            )
        if not names:
            raise InvalidArgumentError(
                "bmps", {}, "no board has a BMP: give the Machine bmps={name: ...}"
            )
        return {name: self.bmps[name] for name in names}
