"""SpiNNMan's connections, one class per kind of board socket, over the
endpoints of links/; their protocols (abstract.py); any object driven
through its own methods (driven.py); and a blocking ``call`` for probes."""
