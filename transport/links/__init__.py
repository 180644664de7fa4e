"""Datagram links: the one endpoint surface (DatagramEndpoint, Address),
real UDP sockets, the in-process network unit tests use, and the fault
injector that wraps any of them. The lowest layer of transport/: it
imports nothing of transport's but errors and logs."""
