"""Each protocol fact has one home: messages/scp/layout.py.

The padding, the offsets of a reply's result code, sequence number and
data, and the board's port are spelled out there and imported everywhere
else; a copy elsewhere goes stale the day the home changes. The sources
are read as text (tests are left out: they check the wire bytes on their
own, on purpose), and the second half shows each pattern catching the
copies this rule removed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOME = Path("messages/scp/layout.py")
SCANNED = ("actors", "bench", "messages", "transport")

_OFFSET = r"(?:2|10|12|14)"
#: What a copy of a layout fact looks like, by the fact it copies.
COPIES = {
    "the padding as a literal": re.compile(r"\bb(['\"])(?:\\0|\\x00){2}\1"),
    "padding and SDP header in a struct format": re.compile(r"['\"]<2x8B"),
    "the board's port": re.compile(r"\b17893\b"),
    "an offset named and given a number": re.compile(
        r"^\s*\w*(?:OFFSET|REPLY|RESPONSE|HEAD)\w*\s*(?::[^=]*)?=\s*"
        rf"{_OFFSET}\b",
        re.IGNORECASE | re.MULTILINE,
    ),
    "a field read or written at a numbered offset": re.compile(
        rf"\b(?:unpack_from|pack_into)\([^,()]+,\s*{_OFFSET}\s*[,)]"
    ),
    "a reply's data at a numbered offset": re.compile(
        r"\b14\s*\+\s*(?:256|MAX_SCP_DATA)\b"
    ),
    "a reply parsed from a numbered offset": re.compile(
        rf"\bread_bytestring\([^,()]+,\s*{_OFFSET}\)"
    ),
}


def copies(text: str) -> list[tuple[int, str]]:
    """(line, fact) of every copy of a layout fact in one source."""
    return sorted(
        (text.count("\n", 0, match.start()) + 1, fact)
        for fact, pattern in COPIES.items()
        for match in pattern.finditer(text)
    )


def sources() -> list[Path]:
    return [
        path
        for package in SCANNED
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.relative_to(ROOT) != HOME
    ]


@pytest.mark.timeout(30)
def test_layout_facts_live_only_in_their_home() -> None:
    assert (ROOT / HOME).exists()
    scanned = sources()
    assert len(scanned) > 100  # the packages were found
    found = [
        f"{path.relative_to(ROOT)}:{line}: {fact}"
        for path in scanned
        for line, fact in copies(path.read_text(encoding="utf-8"))
    ]
    assert found == [], f"import these from {HOME} instead:\n" + "\n".join(found)


@pytest.mark.timeout(10)
def test_the_home_holds_what_the_patterns_look_for() -> None:
    """The patterns find the home's own statements, so they are not blind."""
    facts = {fact for _, fact in copies((ROOT / HOME).read_text(encoding="utf-8"))}
    assert {"the padding as a literal", "the board's port"} <= facts


# Lines as they were before the layout had one home: each must be caught.
BEFORE = {
    'SDP_PADDING = b"\\0\\0"': "the padding as a literal",
    'self._datagram = b"\\x00\\x00" + request.bytestring': "the padding as a literal",
    '_HEAD = struct.Struct("<2x8BHH")': "padding and SDP header in a struct format",
    "DEFAULT_PORT = 17893": "the board's port",
    "_RESULT_OFFSET = 10": "an offset named and given a number",
    "MIN_REPLY = 14": "an offset named and given a number",
    "MIN_RESPONSE_LENGTH = 14": "an offset named and given a number",
    "    SEQUENCE_OFFSET: int = 12": "an offset named and given a number",
    "code, sequence = _RESULT_AND_SEQUENCE.unpack_from(data, 10)": (
        "a field read or written at a numbered offset"
    ),
    "sequence_of.pack_into(datagram, 12, seq)": (
        "a field read or written at a numbered offset"
    ),
    "if seq in outstanding and len(reply) == 14 + 256:": (
        "a reply's data at a numbered offset"
    ),
    "response.read_bytestring(reply, 2)": "a reply parsed from a numbered offset",
}
#: Lines that state nothing about the layout (other bytes, other numbers).
UNRELATED = [
    'if word == b"\\0\\0\\0\\0" and key not in self._pages:',
    'else b"\\x7f\\0\\0\\1"',
    "ASK_TIMEOUT = 10.0",
    "retries: int = 10,",
    'ip = ip[:10] + struct.pack("!H", ipv4_checksum(ip)) + ip[12:]',
    "seq = SEQUENCE.unpack_from(reply, SEQUENCE_OFFSET)[0]",
    "response.read_bytestring(data, offset)",
    "CMD_IPTAG = 26",
    "PORT = 178930",
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("line", sorted(BEFORE))
def test_each_kind_of_copy_is_caught(line: str) -> None:
    assert copies(line) == [(1, BEFORE[line])]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("line", UNRELATED)
def test_other_numbers_are_left_alone(line: str) -> None:
    assert copies(line) == []
