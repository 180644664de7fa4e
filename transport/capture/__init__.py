"""Packet capture: the pcap format, the capture and its file writer, the
taps that feed it from an endpoint, replaying a capture against a board,
and the Wireshark dissector (spinnaker.lua). Above links/, below the
connections and the virtual board, which take a capture."""
