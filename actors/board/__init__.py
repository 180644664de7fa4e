"""actors.board (its public face is named in the next commit)."""
