"""What a SpiNNaker chip keeps at fixed addresses: its memory map, system
variables, VCPU blocks, IOBUF buffers and router, as SC&MP lays them out."""
