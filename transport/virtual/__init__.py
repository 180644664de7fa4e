"""The virtual board: a board's monitor, boot ROM, BMP, SDRAM, IP-tag
traffic, the SpiNN-5 shape and application stand-ins, served over UDP or
in memory."""
