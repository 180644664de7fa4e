"""The system variables a boot image carries to every chip.

SC&MP's ``sv`` block is 256 little-endian bytes; the first 128 travel in the
boot image (bytes 384-511 of it), and that is how a host tells a board its
hardware version, the time, the boot signature, that the chip it booted is
the root, and how to drive its LEDs. Names, offsets and defaults are
SpiNNMan's (``SystemVariableDefinition``), so SpiNNMan's
``extra_boot_values`` carry over; unlike SpiNNMan's, ``bytestring`` places
the byte arrays at their offsets, so the whole 256 bytes are right, not only
the 128 that are booted.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from enum import Enum

from messages.errors import InvalidArgumentError, MalformedDatagramError

#: The whole system-variable block, and the part a boot image carries.
SYSTEM_VARIABLES_SIZE = 256
BOOT_BLOCK_SIZE = 128
#: A SpiNN-5 board, as SpiNNMan boots one (Version5Transceiver).
SPINN5_HARDWARE_VERSION = 5
SPINN5_LED_0 = 0x00000001

SystemValue = int | bytes


class SystemVariableDefinition(Enum):
    """Each variable's offset in the block, its layout and its default."""

    y = (0x00, "B")
    x = (0x01, "B")
    y_size = (0x02, "B")
    x_size = (0x03, "B")
    debug_y = (0x04, "B")
    debug_x = (0x05, "B")
    is_peer_to_peer_available = (0x06, "B")
    nearest_neighbour_last_id = (0x07, "B")
    nearest_ethernet_y = (0x08, "B")
    nearest_ethernet_x = (0x09, "B")
    hardware_version = (0x0A, "B")
    is_ethernet_available = (0x0B, "B")
    p2p_b_repeats = (0x0C, "B", 4)
    log_peer_to_peer_sequence_length = (0x0D, "B", 4)
    clock_divisor = (0x0E, "B", 0x33)
    time_phase_scale = (0x0F, "B")
    clock_milliseconds = (0x10, "Q")
    time_milliseconds = (0x18, "H")
    ltpc_period = (0x1A, "H")
    unix_timestamp = (0x1C, "I")
    router_time_phase_timer = (0x20, "I")
    cpu_clock_mhz = (0x24, "H", 200)
    sdram_clock_frequency_mhz = (0x26, "H", 130)
    nearest_neighbour_forward = (0x28, "B", 0x3F)
    nearest_neighbour_retry = (0x29, "B")
    link_peek_timeout_microseconds = (0x2A, "B", 200)
    led_half_period_10_ms = (0x2B, "B", 1)
    netinit_bc_wait_time = (0x2C, "B", 50)
    netinit_phase = (0x2D, "B")
    p2p_root_y = (0x2E, "B")
    p2p_root_x = (0x2F, "B")
    led_0 = (0x30, "I", 0x1)
    led_1 = (0x34, "I")
    clock_drift = (0x38, "I")
    random_seed = (0x3C, "I")
    is_root_chip = (0x40, "B")
    n_shared_message_buffers = (0x41, "B", 7)
    nearest_neighbour_delay_us = (0x42, "B", 20)
    software_watchdog_count = (0x43, "B")
    padding_2 = (0x44, "I")
    system_ram_heap_address = (0x48, "I", 1024)
    sdram_heap_address = (0x4C, "I")
    iobuf_size = (0x50, "I", 16384)
    system_sdram_bytes = (0x54, "I", 8388608)
    system_buffer_words = (0x58, "I", 32768)
    boot_signature = (0x5C, "I")
    nearest_neighbour_memory_pointer = (0x60, "I")
    lock = (0x64, "B")
    links_available = (0x65, "B", 0x3F)
    last_biff_id = (0x66, "B")
    board_test_flags = (0x67, "B")
    shared_message_first_free_address = (0x68, "I")
    shared_message_count_in_use = (0x6C, "H")
    shared_message_maximum_used = (0x6E, "H")
    user_temp_0 = (0x70, "I")
    user_temp_1 = (0x74, "I")
    user_temp_2 = (0x78, "I")
    user_temp_4 = (0x7C, "I")
    status_map = (0x80, "20s")
    physical_to_virtual_core_map = (0x94, "20s")
    virtual_to_physical_core_map = (0xA8, "20s")
    n_working_cores = (0xBC, "B")
    n_scamp_working_cores = (0xBD, "B")
    padding_3 = (0xBE, "H")
    sdram_base_address = (0xC0, "I")
    system_ram_base_address = (0xC4, "I")
    system_sdram_base_address = (0xC8, "I")
    cpu_information_base_address = (0xCC, "I")
    system_sdram_heap_address = (0xD0, "I")
    router_table_copy_address = (0xD4, "I")
    peer_to_peer_hop_table_address = (0xD8, "I")
    allocated_tag_table_address = (0xDC, "I")
    first_free_router_entry = (0xE0, "H")
    n_active_peer_to_peer_addresses = (0xE2, "H")
    app_data_table_address = (0xE4, "I")
    shared_message_buffer_address = (0xE8, "I")
    monitor_mailbox_flags = (0xEC, "I")
    ethernet_ip_address = (0xF0, "4s")
    fixed_route_copy = (0xF4, "I")
    board_info = (0xF8, "I")
    padding_4 = (0xFC, "I")

    def __init__(self, offset: int, layout: str, default: int = 0) -> None:
        self.offset = offset
        self.layout = struct.Struct("<" + layout)
        self.is_bytes = layout.endswith("s")
        self.default: SystemValue = (
            bytes(self.layout.size) if self.is_bytes else default
        )

    @property
    def size(self) -> int:
        return self.layout.size

    def check(self, value: object) -> SystemValue:
        """``value`` if it fits this variable, else InvalidArgumentError."""
        if self.is_bytes:
            if not isinstance(value, (bytes, bytearray)) or len(value) != self.size:
                raise InvalidArgumentError(
                    self.name, value, f"must be {self.size} bytes"
                )
            return bytes(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(self.name, value, "must be an integer")
        high = (1 << (8 * self.size)) - 1
        if not 0 <= value <= high:
            raise InvalidArgumentError(self.name, value, f"must be in 0..{high}")
        return value


class SystemVariableBootValues:
    """A value for every system variable, SpiNNMan's defaults unless set."""

    __slots__ = ("_values",)

    def __init__(
        self, values: Mapping[SystemVariableDefinition, SystemValue] | None = None
    ) -> None:
        self._values = {
            variable: variable.default for variable in SystemVariableDefinition
        }
        for variable, value in (values or {}).items():
            self.set_value(variable, value)

    def set_value(
        self, system_variable_definition: SystemVariableDefinition, value: object
    ) -> None:
        if not isinstance(system_variable_definition, SystemVariableDefinition):
            raise InvalidArgumentError(
                "system_variable_definition",
                system_variable_definition,
                "must be a SystemVariableDefinition",
            )
        self._values[system_variable_definition] = system_variable_definition.check(
            value
        )

    def get_value(self, variable: SystemVariableDefinition) -> SystemValue:
        return self._values[variable]

    def __getitem__(self, variable: SystemVariableDefinition) -> SystemValue:
        return self._values[variable]

    @property
    def bytestring(self) -> bytes:
        """The whole 256-byte block, little-endian."""
        block = bytearray(SYSTEM_VARIABLES_SIZE)
        for variable, value in self._values.items():
            variable.layout.pack_into(block, variable.offset, value)
        return bytes(block)

    @property
    def boot_block(self) -> bytes:
        """The 128 bytes that go into a boot image."""
        return self.bytestring[:BOOT_BLOCK_SIZE]

    @staticmethod
    def from_bytestring(
        data: bytes | bytearray | memoryview, offset: int = 0
    ) -> SystemVariableBootValues:
        """The values in a block: the 128 booted bytes or all 256.

        Variables past the end of ``data`` keep their defaults.
        """
        data = bytes(data)
        length = min(len(data) - offset, SYSTEM_VARIABLES_SIZE)
        if length < BOOT_BLOCK_SIZE:
            raise MalformedDatagramError(
                f"system variables need at least {BOOT_BLOCK_SIZE} bytes, "
                f"got {max(length, 0)}"
            )
        values = SystemVariableBootValues()
        for variable in SystemVariableDefinition:
            if variable.offset + variable.size <= length:
                values._values[variable] = variable.layout.unpack_from(
                    data, offset + variable.offset
                )[0]
        return values

    def as_dict(self) -> dict[str, SystemValue]:
        """Every variable by name, for stats and logs."""
        return {variable.name: value for variable, value in self._values.items()}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SystemVariableBootValues):
            return NotImplemented
        return self._values == other._values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        changed = {
            variable.name: value
            for variable, value in self._values.items()
            if value != variable.default
        }
        return f"SystemVariableBootValues({changed})"


def boot_values(
    unix_time: int,
    *,
    hardware_version: int = SPINN5_HARDWARE_VERSION,
    led_0: int = SPINN5_LED_0,
    extra_boot_values: Mapping[SystemVariableDefinition, SystemValue] | None = None,
) -> SystemVariableBootValues:
    """The values SpiNNMan boots a board with: its hardware version, the time
    (``unix_time``, also the boot signature), root chip 1, the LED setting,
    then ``extra_boot_values`` over them, as SpiNNMan applies its own.

    The time is an argument because this layer reads no clock.
    """
    values = SystemVariableBootValues()
    variable = SystemVariableDefinition
    values.set_value(variable.hardware_version, hardware_version)
    values.set_value(variable.unix_timestamp, unix_time)
    values.set_value(variable.boot_signature, unix_time)
    values.set_value(variable.is_root_chip, 1)
    values.set_value(variable.led_0, led_0)
    for name, value in (extra_boot_values or {}).items():
        values.set_value(name, value)
    return values
