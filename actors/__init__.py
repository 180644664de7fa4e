"""pykka actors, the sans-IO pipeline window, the supervisor and the CLI."""
