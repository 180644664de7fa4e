"""Command numbers, result codes and the small enums SCP arguments use.

Values are the board's (and SpiNNMan's); names follow SpiNNMan so that code
moving over keeps working.
"""

from __future__ import annotations

from enum import Enum


class SCPCommand(Enum):
    CMD_VER = 0
    CMD_RUN = 1
    CMD_READ = 2
    CMD_WRITE = 3
    CMD_APLX = 4
    CMD_FILL = 5
    CMD_COUNT = 15
    CMD_REMAP = 16
    CMD_LINK_READ = 17
    CMD_LINK_WRITE = 18
    CMD_AR = 19
    CMD_NNP = 20
    CMD_APP_COPY_RUN = 21
    CMD_SIG = 22
    CMD_FFD = 23
    CMD_AS = 24
    CMD_LED = 25
    CMD_IPTAG = 26
    CMD_SROM = 27
    CMD_ALLOC = 28
    CMD_RTR = 29
    CMD_DPRI = 30
    CMD_INFO = 31
    CMD_SYNC = 32
    CMD_BMP_INFO = 48
    CMD_FLASH_COPY = 49
    CMD_FLASH_ERASE = 50
    CMD_FLASH_WRITE = 51
    CMD_RESET = 55
    CMD_BMP_POWER = 57
    CMD_TUBE = 64


class SCPResult(Enum):
    RC_OK = 0x80
    RC_LEN = 0x81
    RC_SUM = 0x82
    RC_CMD = 0x83
    RC_ARG = 0x84
    RC_PORT = 0x85
    RC_TIMEOUT = 0x86
    RC_ROUTE = 0x87
    RC_CPU = 0x88
    RC_DEAD = 0x89
    RC_BUF = 0x8A
    RC_P2P_NOREPLY = 0x8B
    RC_P2P_REJECT = 0x8C
    RC_P2P_BUSY = 0x8D
    RC_P2P_TIMEOUT = 0x8E
    RC_PKT_TX = 0x8F

    @property
    def meaning(self) -> str:
        """What the code says, in a plain sentence (SCP specification)."""
        return RESULT_MEANINGS[self]


RESULT_MEANINGS: dict[SCPResult, str] = {
    SCPResult.RC_OK: "the command succeeded",
    SCPResult.RC_LEN: "the packet's length was wrong for the command",
    SCPResult.RC_SUM: "the packet's checksum was wrong",
    SCPResult.RC_CMD: "the board does not know that command",
    SCPResult.RC_ARG: "an argument was out of range (address, length or type)",
    SCPResult.RC_PORT: "no application listens on that SDP port",
    SCPResult.RC_TIMEOUT: "the core's mailbox stayed busy (worth trying again)",
    SCPResult.RC_ROUTE: "no route to that chip: is it on this board?",
    SCPResult.RC_CPU: "no such core on that chip",
    SCPResult.RC_DEAD: "the destination core is not running",
    SCPResult.RC_BUF: "the board had no free buffer for the packet",
    SCPResult.RC_P2P_NOREPLY: "the chip did not answer over the P2P network",
    SCPResult.RC_P2P_REJECT: "the chip refused the P2P connection",
    SCPResult.RC_P2P_BUSY: "the chip's P2P link was busy (worth trying again)",
    SCPResult.RC_P2P_TIMEOUT: "the chip stopped answering over the P2P network",
    SCPResult.RC_PKT_TX: "the board could not send the packet on",
}


#: Codes that mean "the board was busy, send it again".
RETRY_CODES = frozenset(
    {
        SCPResult.RC_TIMEOUT,
        SCPResult.RC_P2P_TIMEOUT,
        SCPResult.RC_LEN,
        SCPResult.RC_P2P_NOREPLY,
        SCPResult.RC_P2P_BUSY,
    }
)


class ReadType(Enum):
    """How the monitor moves the data: by byte, half-word or word."""

    BYTE = 0
    HALF_WORD = 1
    WORD = 2


def read_type(address: int, size: int) -> ReadType:
    """The widest access both the address and the size are aligned to."""
    alignment = (address | size) & 3
    if alignment == 0:
        return ReadType.WORD
    if alignment == 2:
        return ReadType.HALF_WORD
    return ReadType.BYTE


class IPTagCommand(Enum):
    NEW = 0
    SET = 1
    GET = 2
    CLR = 3
    TTO = 4


class AllocFree(Enum):
    ALLOC_SDRAM = 0
    FREE_SDRAM_BY_POINTER = 1
    FREE_SDRAM_BY_APP_ID = 2
    ALLOC_ROUTING = 3
    FREE_ROUTING_BY_POINTER = 4
    FREE_ROUTING_BY_APP_ID = 5
    #: Free bytes of the SDRAM heap, and its largest free block.
    SDRAM_SPACE = 6
    #: The block an app id allocated with a tag (0 if none).
    HEAP_TAG_POINTER = 7


class SignalType(Enum):
    MULTICAST = 0
    POINT_TO_POINT = 1
    NEAREST_NEIGHBOUR = 2


class Signal(Enum):
    """Application signals; each knows how the monitor delivers it."""

    INITIALISE = (0, SignalType.NEAREST_NEIGHBOUR)
    POWER_DOWN = (1, SignalType.NEAREST_NEIGHBOUR)
    STOP = (2, SignalType.NEAREST_NEIGHBOUR)
    START = (3, SignalType.MULTICAST)
    SYNC0 = (4, SignalType.MULTICAST)
    SYNC1 = (5, SignalType.MULTICAST)
    PAUSE = (6, SignalType.MULTICAST)
    CONTINUE = (7, SignalType.MULTICAST)
    EXIT = (8, SignalType.MULTICAST)
    TIMER = (9, SignalType.MULTICAST)
    USER_0 = (10, SignalType.MULTICAST)
    USER_1 = (11, SignalType.MULTICAST)
    USER_2 = (12, SignalType.MULTICAST)
    USER_3 = (13, SignalType.MULTICAST)

    def __new__(cls, value: int, signal_type: SignalType) -> Signal:
        member = object.__new__(cls)
        member._value_ = value
        return member

    def __init__(self, value: int, signal_type: SignalType) -> None:
        self.signal_type = signal_type

    @classmethod
    def from_number(cls, number: int) -> Signal:
        """The signal with wire number ``number``; ValueError if none."""
        for signal in cls:
            if signal.value == number:
                return signal
        raise ValueError(f"no signal numbered {number}")


class CPUState(Enum):
    DEAD = 0
    POWERED_DOWN = 1
    RUN_TIME_EXCEPTION = 2
    WATCHDOG = 3
    INITIALISING = 4
    READY = 5
    C_MAIN = 6
    RUNNING = 7
    SYNC0 = 8
    SYNC1 = 9
    PAUSED = 10
    FINISHED = 11
    CPU_STATE_12 = 12
    CPU_STATE_13 = 13
    CPU_STATE_14 = 14
    IDLE = 15
