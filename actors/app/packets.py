"""The command line's view of the wire: --capture, `dissector`, `replay`.

Kept apart from cli.py so that the packet tools are one module: the
option every board-talking command takes, and the two commands.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import TextIO

from actors.app import arguments
from actors.app.options import Command, option, seconds
from messages.errors import InvalidArgumentError, SpinnactorsError
from messages.scp.layout import SCP_SCAMP_PORT
from transport.capture.pcap import read_packets
from transport.capture.replay import Exchange, exchanges, replay
from transport.capture.writer import (
    CaptureTarget,
    PacketCapture,
    capture_path,
    names_each_board,
    open_capture,
)

#: The dissector's file name, inside transport/capture/.
DISSECTOR = "spinnaker.lua"


class NothingToReplay(SpinnactorsError):
    """A capture holds no SCP request: there is nothing to compare."""


def _capture_target(text: str) -> str:
    """--capture FILE: a name, whose {host} and {port} (if any) fill in."""
    if not text:
        raise argparse.ArgumentTypeError("an empty file name")
    try:
        capture_path(text, "127.0.0.1", 0)
    except InvalidArgumentError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error.reason}") from None
    return text


#: ``--capture FILE``: every datagram in and out, as pcap.
CAPTURE = option(
    "--capture",
    metavar="FILE",
    type=_capture_target,
    default=None,
    help="write every datagram sent and received to FILE as pcap "
    "(for Wireshark or tshark; see: spinnactors dissector)",
)


@contextlib.contextmanager
def capture_for(target: str | None, boards: int) -> Iterator[CaptureTarget | None]:
    """--capture for the clients of ``boards`` boards: as given when each
    opens its own (one board, or a template or directory naming each), else
    one file they share, opened here (a bad path fails now) and closed
    after them."""
    if target is None or boards == 1 or names_each_board(target):
        yield target
        return
    with PacketCapture(target) as shared:
        yield shared


@contextlib.contextmanager
def capture_of(
    target: str | None, host: str, port: int
) -> Iterator[PacketCapture | None]:
    """--capture of a command that asks ``host:port`` (a BMP) itself, as a
    client opens its own: {host} and {port} filled in, opened before
    anything is sent (a bad path fails now), closed when the command ends."""
    capture, owned = open_capture(target, host, port)
    try:
        yield capture
    finally:
        if owned and capture is not None:
            capture.close()


def dissector_path() -> Path:
    """Where the installed package keeps the Lua dissector."""
    return Path(str(files("transport.capture").joinpath(DISSECTOR)))


def plugin_folder() -> Path:
    """Wireshark's personal Lua plugin folder on this system."""
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home())) / "Wireshark" / "plugins"
    return Path.home() / ".local" / "lib" / "wireshark" / "plugins"


class _PluginFolder:
    """--plugin-dir's default, Wireshark's folder: found when --help shows
    it or --install uses it, not when the parser is built (so importing the
    CLI reads neither HOME nor APPDATA)."""

    def __fspath__(self) -> str:
        return str(plugin_folder())

    __str__ = __fspath__


#: `dissector`: where the Lua dissector is, or install it.
DISSECTOR_COMMAND = Command(
    "dissector",
    "where the Wireshark dissector is (or install it)",
    "Print the path of the Lua dissector for SDP, SCP and EIEIO that "
    "comes with spinnactors; with --install, copy it to Wireshark's "
    "personal plugin folder (Wireshark and tshark then load it on "
    "start). Without installing: tshark -X lua_script:PATH -r FILE.",
    (
        "spinnactors dissector",
        "spinnactors dissector --install",
        "tshark -X lua_script:$(spinnactors dissector) -r run.pcap -Y 'scp.cmd == \"CMD_READ\"'",  # noqa: E501
    ),
    (
        option(
            "--install",
            action="store_true",
            help="copy it to Wireshark's personal plugin folder",
        ),
        option(
            "--plugin-dir",
            metavar="DIR",
            type=arguments.folder,
            default=_PluginFolder(),
            help="install into DIR instead",
        ),
    ),
)

#: `replay`: a capture's requests, sent again, their answers compared.
REPLAY_COMMAND = Command(
    "replay",
    "send a capture's requests to a board again, compare the answers",
    "Send the SCP requests of a pcap capture (spinnactors --capture, "
    "tcpdump, Wireshark saved as pcap) to the board at --host:--port, "
    "one at a time and in order, and report each answer that differs "
    "from the one the capture holds (result code, length or data). A "
    "request the capture shows resent is sent once. Exit status 0 when "
    "every answer is the same, 1 when any differs or there is nothing to "
    "replay.",
    (
        "spinnactors replay run.pcap --host 192.168.240.253",
        f"spinnactors replay run.pcap --port {SCP_SCAMP_PORT}",
    ),
    (
        seconds("--timeout", 1.0, "longest wait for one answer, in seconds"),
        option(
            "--retries",
            type=arguments.retries,
            default=3,
            help="resends of an unanswered request",
        ),
        option("file", metavar="FILE.pcap", help="the capture to replay"),
    ),
)

#: The packet tools, in the order ``--help`` lists them.
COMMANDS = (DISSECTOR_COMMAND, REPLAY_COMMAND)


def run_dissector(args: argparse.Namespace, out: TextIO) -> int:
    path = dissector_path()
    if not path.is_file():
        raise OSError(f"the dissector is missing from the installation: {path}")
    if not args.install:
        print(path, file=out)
        return 0
    folder = Path(args.plugin_dir)
    target = folder / DISSECTOR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    except OSError as error:
        raise OSError(
            f"cannot install the dissector as {target}: {error.strerror or error}"
        ) from None
    print(f"installed {target}", file=out)
    return 0


def run_replay(args: argparse.Namespace, host: str, port: int, out: TextIO) -> int:
    found = _requests_in(args.file)
    resends = sum(exchange.resends for exchange in found)
    print(
        f"replaying {len(found)} requests from {args.file} to {host}:{port}"
        + (
            f" ({resends} resent copies in the capture not sent again)"
            if resends
            else ""
        ),
        file=out,
        flush=True,
    )
    differ = 0
    for done in replay(found, host, port, timeout=args.timeout, retries=args.retries):
        if done.difference is not None:
            differ += 1
            exchange = done.exchange
            print(
                f"frame {exchange.frame} {exchange.command} seq "
                f"{exchange.sequence}: {done.difference}",
                file=out,
                flush=True,
            )
    same = len(found) - differ
    print(
        f"{len(found)} requests: {same} answered the same, {differ} differently",
        file=out,
    )
    return 1 if differ else 0


def _requests_in(name: str) -> list[Exchange]:
    """The SCP requests of capture ``name``, read a record at a time (a
    damaged record length is an error, not a read that never ends)."""
    with open(name, "rb") as file:
        found = exchanges(read_packets(file))
    if not found:
        raise NothingToReplay(
            f"{name}: no SCP requests to replay (only UDP over IPv4 is read: "
            f"IPv6 and other frames are skipped)"
        )
    return found
