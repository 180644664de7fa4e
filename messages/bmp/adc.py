"""A board's sensors: voltages, temperatures and fans, as its BMP reads them.

The BMP answers CMD_BMP_INFO / ADC with its 48-byte ``board_stat_t``:
eight 12-bit ADC readings (channels V12d, V12c, V12b, V12a, V18, V25, V33,
Vpwr; 0 and 5 are unused on a SpiNN-5), four on-board and four off-board
temperatures in 1/256 °C (-0x8000: no sensor), four fan speeds (-1: no
fan), and the warning and shutdown bit sets. ``BoardStat`` is that block;
``ADCInfo`` is SpiNNMan's scaled view of it, field for field.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from messages.bmp.base import BMPRequest, BMPResponse, payload
from messages.bmp.enums import (
    BMP_MISSING_FAN,
    BMP_MISSING_TEMP,
    BMP_TEMP_SCALE,
    BMP_V_SCALE_2_5,
    BMP_V_SCALE_3_3,
    BMP_V_SCALE_12,
    BMPInfo,
)
from messages.errors import InvalidArgumentError
from messages.scp.enums import SCPCommand
from messages.scp.header import SCPRequestHeader

#: adc[8], t_int[4], t_ext[4], fan[4] (read signed, as SpiNNMan does),
#: warning, shutdown.
BOARD_STAT = struct.Struct("<8H4h4h4hII")


@dataclass(frozen=True)
class BoardStat:
    """The raw ``board_stat_t`` a BMP keeps for its board."""

    adc: tuple[int, ...]
    t_int: tuple[int, ...]
    t_ext: tuple[int, ...]
    fan: tuple[int, ...]
    warning: int = 0
    shutdown: int = 0

    def __post_init__(self) -> None:
        for name, count in (("adc", 8), ("t_int", 4), ("t_ext", 4), ("fan", 4)):
            if len(getattr(self, name)) != count:
                raise InvalidArgumentError(
                    name, getattr(self, name), f"must be {count} readings"
                )
        try:
            self.to_bytes()
        except struct.error as error:
            raise InvalidArgumentError("board_stat", self, str(error)) from None

    def to_bytes(self) -> bytes:
        return BOARD_STAT.pack(
            *self.adc, *self.t_int, *self.t_ext, *self.fan, self.warning, self.shutdown
        )

    @staticmethod
    def from_bytes(data: bytes | bytearray | memoryview, offset: int = 0) -> BoardStat:
        values = BOARD_STAT.unpack(payload(bytes(data), offset, BOARD_STAT.size, "ADC"))
        return BoardStat(
            values[0:8], values[8:12], values[12:16], values[16:20], *values[20:22]
        )


def _temperature(reading: int) -> float | None:
    return None if reading == BMP_MISSING_TEMP else reading * BMP_TEMP_SCALE


def _fan(reading: int) -> float | None:
    return None if reading == BMP_MISSING_FAN else float(reading)


class ADCInfo:
    """SpiNNMan's ``ADCInfo``: ``ADCInfo(adc_data, offset)``, the same
    fields with the same scaling (``temp_top`` and ``temp_btm`` scaled
    even when a sensor is missing, as SpiNNMan's are), and every reading
    besides."""

    __slots__ = ("board_stat",)

    def __init__(self, adc_data: bytes | BoardStat, offset: int = 0) -> None:
        self.board_stat = (
            adc_data
            if isinstance(adc_data, BoardStat)
            else BoardStat.from_bytes(adc_data, offset)
        )

    @property
    def voltage_1_2c(self) -> float:
        return self.board_stat.adc[1] * BMP_V_SCALE_2_5

    @property
    def voltage_1_2b(self) -> float:
        return self.board_stat.adc[2] * BMP_V_SCALE_2_5

    @property
    def voltage_1_2a(self) -> float:
        return self.board_stat.adc[3] * BMP_V_SCALE_2_5

    @property
    def voltage_1_8(self) -> float:
        return self.board_stat.adc[4] * BMP_V_SCALE_2_5

    @property
    def voltage_3_3(self) -> float:
        return self.board_stat.adc[6] * BMP_V_SCALE_3_3

    @property
    def voltage_supply(self) -> float:
        return self.board_stat.adc[7] * BMP_V_SCALE_12

    @property
    def temp_top(self) -> float:
        return float(self.board_stat.t_int[0]) * BMP_TEMP_SCALE

    @property
    def temp_btm(self) -> float:
        return float(self.board_stat.t_int[1]) * BMP_TEMP_SCALE

    @property
    def temp_ext_0(self) -> float | None:
        return _temperature(self.board_stat.t_ext[0])

    @property
    def temp_ext_1(self) -> float | None:
        return _temperature(self.board_stat.t_ext[1])

    @property
    def fan_0(self) -> float | None:
        return _fan(self.board_stat.fan[0])

    @property
    def fan_1(self) -> float | None:
        return _fan(self.board_stat.fan[1])

    # -- beyond SpiNNMan's fields --------------------------------------------

    @property
    def temperatures_internal(self) -> tuple[float | None, ...]:
        """The four on-board sensors in °C; None where there is none."""
        return tuple(_temperature(reading) for reading in self.board_stat.t_int)

    @property
    def temperatures_external(self) -> tuple[float | None, ...]:
        return tuple(_temperature(reading) for reading in self.board_stat.t_ext)

    @property
    def fans(self) -> tuple[float | None, ...]:
        return tuple(_fan(reading) for reading in self.board_stat.fan)

    @property
    def warning(self) -> int:
        return self.board_stat.warning

    @property
    def shutdown(self) -> int:
        return self.board_stat.shutdown

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ADCInfo):
            return NotImplemented
        return self.board_stat == other.board_stat

    def __hash__(self) -> int:
        return hash(self.board_stat)

    def __repr__(self) -> str:
        return f"ADCInfo({self.board_stat!r})"


class ReadADCResponse(BMPResponse[ADCInfo]):
    __slots__ = ()

    def _parse_payload(self, data: bytes, offset: int) -> ADCInfo:
        return ADCInfo(data, offset)

    @property
    def adc_info(self) -> ADCInfo:
        return self.value


class ReadADC(BMPRequest[ReadADCResponse]):
    """Read ``board``'s voltages, temperatures and fans."""

    __slots__ = ()

    def __init__(self, board: int) -> None:
        super().__init__(
            board,
            SCPRequestHeader(SCPCommand.CMD_BMP_INFO),
            argument_1=BMPInfo.ADC.value,
        )

    def get_scp_response(self) -> ReadADCResponse:
        return ReadADCResponse("Read ADC", SCPCommand.CMD_BMP_INFO, self.board)
