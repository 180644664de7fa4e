"""What a Board Management Processor's commands take, and its timings.

A BMP (one per SpiNN-5 board, its own IP address) answers SCP on the usual
port; the request names the board it is for in the SDP header's
destination CPU, and the BMPs of a frame (up to 24 boards) pass commands
for each other's boards over their CAN bus. Values follow the BMP's
``bmp_cmd.c`` and names follow SpiNNMan.
"""

from __future__ import annotations

from enum import Enum

#: What a BMP calls itself when asked its version (a board's monitor says
#: SC&MP).
BMP_NAME = "BC&MP"
#: Boards in a frame are numbered 0..23.
MAX_BOARD = 23
#: FPGAs on a SpiNN-5 board, numbered 0..2.
N_FPGAS = 3
#: LEDs a BMP drives, numbered 0..7.
N_LEDS = 8
#: Delays (per board, in ms) travel in the top 16 bits of argument 1.
MAX_DELAY_MS = 0xFFFF

#: Seconds to wait for most BMP replies, and for a power-on's, which comes
#: only once board 0's FPGAs are loaded (SpiNNMan's BMP_TIMEOUT and
#: BMP_POWER_ON_TIMEOUT).
BMP_TIMEOUT = 0.5
BMP_POWER_ON_TIMEOUT = 10.0
#: Seconds SpiNNMan leaves a board after powering it on before booting it,
#: and after powering it off before powering it on again.
BMP_POST_POWER_ON_SLEEP_TIME = 5.0
POWER_CYCLE_WAIT_TIME = 30.0

#: ADC counts to volts: 1.2 V and 1.8 V rails, the 3.3 V rail, the supply.
BMP_ADC_MAX = 1 << 12
BMP_V_SCALE_2_5 = 2.5 / BMP_ADC_MAX
BMP_V_SCALE_3_3 = 3.75 / BMP_ADC_MAX
BMP_V_SCALE_12 = 15.0 / BMP_ADC_MAX
#: Temperature counts to degrees Celsius, and what a missing sensor reads.
BMP_TEMP_SCALE = 1.0 / 256.0
BMP_MISSING_TEMP = -0x8000
#: What a missing fan reads (as a signed 16-bit number).
BMP_MISSING_FAN = -1


class BMPInfo(Enum):
    """What CMD_BMP_INFO returns, by its argument 1."""

    #: Hardware version, LPC1768 serial number, three addresses.
    SERIAL = 0
    #: One byte per board of the frame: nonzero if its BMP is there.
    CAN_STATUS = 2
    #: The board's voltages, temperatures and fans (board_stat_t).
    ADC = 3
    #: The BMP's and the SpiNNaker chip's network settings (2 ip_data_t).
    IP_ADDR = 4


class PowerCommand(Enum):
    POWER_OFF = 0
    POWER_ON = 1


class LEDAction(Enum):
    TOGGLE = 1
    OFF = 2
    ON = 3


class ResetAction(Enum):
    """What CMD_RESET does to a board's SpiNNaker chips (their POR line)."""

    #: Let them run (lower the reset line).
    RELEASE = 0
    #: Hold them in reset.
    HOLD = 1
    #: Reset them: they come back in their boot ROM.
    PULSE = 2
