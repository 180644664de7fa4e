"""The virtual board: a board's monitor, SDRAM, IP-tag traffic and SpiNN-5 shape, served over UDP or in memory."""  # noqa: E501
