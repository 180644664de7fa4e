"""The virtual board: a board's monitor, boot ROM, BMP, SDRAM and IP-tag
traffic, served over UDP or in memory."""
