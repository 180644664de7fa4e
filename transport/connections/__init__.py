"""SpiNNMan's connections: one class per kind of board socket."""
