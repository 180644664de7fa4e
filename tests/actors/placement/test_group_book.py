"""GroupBook and the plain data that crosses to a board group, without
processes: the book is driven by hand as a GroupActor would drive it
(take_incoming, complete, take_for_new_worker), and the batches it makes
are decoded to see what would cross."""

from __future__ import annotations

import pickle
import queue
import threading
from collections import Counter
from collections.abc import Hashable
from dataclasses import replace
from typing import Any

import pytest

from actors.errors import RequestError, RequestTimeout, ShutDown
from actors.placement.book import GroupBook
from actors.placement.wire import (
    BoardSpec,
    GetGroupStats,
    GroupFailed,
    GroupSpec,
    GroupStats,
    Heard,
    Heartbeat,
    Listen,
    Listening,
    Outcomes,
    Post,
    Ready,
    _merged,
    decode,
    encode,
    encode_outbound,
)
from actors.protocol.jobs import Job, Outcome, ReadJob, SCPJob, WriteJob
from messages.errors import InvalidArgumentError
from messages.scp import FillRequest, GetVersion, SDRAMAlloc, SDRAMDeAlloc

BASE = 0x6000_0000


class Sink:
    """An outcome sink that keeps every batch it is given."""

    def __init__(self) -> None:
        self.batches: list[list[Outcome]] = []
        self._lock = threading.Lock()

    def put(self, outcomes: list[Outcome], /) -> None:
        with self._lock:
            self.batches.append(list(outcomes))

    @property
    def outcomes(self) -> list[Outcome]:
        return [o for batch in self.batches for o in batch]

    def by_key(self) -> dict[Hashable, Outcome]:
        keys = Counter(o.key for o in self.outcomes)
        assert all(n == 1 for n in keys.values()), f"answered twice: {keys}"
        return {o.key: o for o in self.outcomes}


class VersionWithHook(GetVersion):
    """A request that carries a closure: it cannot cross a process."""

    def __init__(self) -> None:
        super().__init__(0, 0, 0)
        self.hook = lambda: None


def posted(blobs: list[bytes]) -> list[tuple[Hashable, Job]]:
    """The (board, job) pairs in batches the book made for a worker."""
    entries: list[tuple[Hashable, Job]] = []
    for blob in blobs:
        for message in decode(blob):
            assert isinstance(message, Post)
            entries += message.entries
    return entries


def answer_all(
    book: GroupBook, entries: list[tuple[Hashable, Job]], value: Any = b"reply"
) -> None:
    """What a worker would send back: one OK outcome per wire key."""
    book.complete([Outcome(job.key, value=(board, value)) for board, job in entries])


# -- each job one outcome, with the caller's key ----------------------------------


@pytest.mark.timeout(10)
def test_each_job_gets_one_outcome_under_the_callers_key() -> None:
    book = GroupBook()
    first, second = Sink(), Sink()
    jobs_a: list[tuple[Hashable, Job]] = [
        ("b0", SCPJob("same", GetVersion(0, 0, 0))),
        ("b1", ReadJob(("read", 1), 0, 0, 0, BASE, 1000)),
    ]
    jobs_b: list[tuple[Hashable, Job]] = [
        ("b0", SCPJob("same", GetVersion(1, 1, 0))),  # same key, other sink
        ("b1", WriteJob(7, 1, 0, 0, BASE, b"\x01" * 300)),
    ]
    book.put(jobs_a, first)
    book.put(jobs_b, second)
    assert book.open_jobs == 4

    wire = posted(book.take_incoming())
    # One batch per put, in order; the boards kept, the keys the book's own.
    assert [board for board, _ in wire] == ["b0", "b1", "b0", "b1"]
    wire_keys = [job.key for _, job in wire]
    assert len(set(wire_keys)) == 4
    assert "same" not in wire_keys and 7 not in wire_keys
    # Everything but the key crosses unchanged.
    for (_, sent), (_, original) in zip(wire, jobs_a + jobs_b, strict=True):
        assert type(sent) is type(original)
        if isinstance(sent, SCPJob):
            assert isinstance(original, SCPJob)
            assert pickle.dumps(sent.request) == pickle.dumps(original.request)
        elif isinstance(sent, WriteJob):
            assert sent.data == original.data  # type: ignore[union-attr]
    assert book.take_incoming() == []  # taken once

    # Outcomes come back in any order, in any batches.
    answer_all(book, wire[::-1][:1])
    answer_all(book, wire[::-1][1:])
    assert book.open_jobs == 0
    assert book.stale == 0
    a, b = first.by_key(), second.by_key()
    assert set(a) == {"same", ("read", 1)}
    assert set(b) == {"same", 7}
    assert a["same"].value == ("b0", b"reply")
    assert a[("read", 1)].value == ("b1", b"reply")
    assert b[7].value == ("b1", b"reply")


def said(error: BaseException | None) -> tuple[type, str]:
    """An error's type and message (errors compare by identity)."""
    return type(error), str(error)


@pytest.mark.timeout(10)
def test_outcome_fields_other_than_the_key_are_kept() -> None:
    book = GroupBook()
    sink = Sink()
    error = RequestError("board said no")
    book.put([("b", SCPJob("k", GetVersion(0, 0, 0)))], sink)
    ((_, job),) = posted(book.take_incoming())
    book.complete(
        [Outcome(job.key, error=error, resends=3, retry_code_resent=2, timeouts=1)]
    )
    (outcome,) = sink.outcomes
    assert replace(outcome, error=None) == Outcome("k", None, None, 3, 2, 1)
    # The error is the same kind, led by its board's name.
    assert type(outcome.error) is RequestError
    assert str(outcome.error) == "board 'b': board said no"


@pytest.mark.timeout(10)
def test_errors_name_the_board_and_its_address_once() -> None:
    book = GroupBook([BoardSpec("b", "10.0.0.1", 17893)])
    sink = Sink()
    book.put([("b", SCPJob("k", GetVersion(0, 0, 0)))], sink)
    book.put([("b", SCPJob("j", GetVersion(0, 0, 0)))], sink)
    ((_, job), (_, other)) = posted(book.take_incoming())
    book.complete(
        [
            Outcome(job.key, error=RequestError("no reply")),
            Outcome(other.key, error=RequestTimeout("no reply from 10.0.0.1:17893")),
        ]
    )
    first, second = sink.outcomes
    assert str(first.error) == "board 'b' at 10.0.0.1:17893: no reply"
    assert str(second.error) == "board 'b': no reply from 10.0.0.1:17893"
    assert type(second.error) is RequestTimeout


@pytest.mark.timeout(10)
def test_a_key_that_cannot_pickle_stays_here_and_is_restored() -> None:
    # The caller's key never crosses (the wire key does), so it need not
    # pickle: only what crosses is checked.
    book = GroupBook()
    sink = Sink()

    def key() -> None:
        return None

    book.put([("b", SCPJob(key, GetVersion(0, 0, 0)))], sink)
    ((_, job),) = posted(book.take_incoming())
    assert isinstance(job.key, int)
    book.complete([Outcome(job.key, value=b"v")])
    assert [o.key for o in sink.outcomes] == [key]


# -- late and duplicate outcomes --------------------------------------------------


@pytest.mark.timeout(10)
def test_duplicate_and_late_outcomes_are_counted_stale_not_delivered() -> None:
    book = GroupBook()
    sink = Sink()
    book.put([("b", SCPJob(("v", i), GetVersion(0, 0, 0))) for i in range(3)], sink)
    wire = posted(book.take_incoming())
    answer_all(book, wire)
    assert len(sink.outcomes) == 3
    # The same outcomes again (an old worker's, after the new one's).
    answer_all(book, wire)
    answer_all(book, wire[:1], value=b"other")
    # And one for a key the book never gave out.
    book.complete([Outcome(10_000, value=b"?")])
    assert book.stale == 3 + 1 + 1
    assert len(sink.outcomes) == 3
    assert all(o.value == ("b", b"reply") for o in sink.outcomes)


@pytest.mark.timeout(10)
def test_within_one_batch_a_duplicate_is_stale() -> None:
    book = GroupBook()
    sink = Sink()
    book.put([("b", SCPJob("k", GetVersion(0, 0, 0)))], sink)
    ((_, job),) = posted(book.take_incoming())
    book.complete([Outcome(job.key, value=1), Outcome(job.key, value=2)])
    assert [o.value for o in sink.outcomes] == [1]
    assert book.stale == 1


# -- a new worker -------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_new_worker_gets_safe_jobs_again_and_sent_unsafe_ones_fail() -> None:
    book = GroupBook()
    sink = Sink()
    untagged = SDRAMAlloc(0, 0, app_id=3, size=4096)
    tagged = SDRAMAlloc(0, 0, app_id=3, size=4096, tag=9)
    free = SDRAMDeAlloc(0, 0, app_id=3)
    assert not untagged.may_resend
    assert tagged.may_resend
    assert not free.may_resend
    sent: list[tuple[Hashable, Job]] = [
        ("b0", SCPJob("alloc", untagged)),
        ("b0", SCPJob("tagged", tagged)),
        ("b1", SCPJob("free", free)),
        ("b1", SCPJob("version", GetVersion(1, 0, 2))),
        ("b0", ReadJob("read", 0, 0, 0, BASE, 5000)),
        ("b1", WriteJob("write", 0, 0, 0, BASE, b"w" * 700)),
    ]
    book.put(sent, sink)
    first = posted(book.take_incoming())
    wire_of = {
        job.key: wired.key for (_, job), (_, wired) in zip(sent, first, strict=True)
    }
    caller_of = {wire: key for key, wire in wire_of.items()}
    # The version was answered by the first worker before it died.
    book.complete([Outcome(wire_of["version"], value=b"version reply")])
    # Put after the last take: never sent, so sent even though unsafe.
    later = SDRAMAlloc(1, 1, app_id=4, size=64)
    book.put([("b1", SCPJob("alloc later", later))], sink)

    again = book.take_for_new_worker()
    # The two unsafe jobs that had been sent end now, with RequestError.
    refused = {o.key: o for o in sink.outcomes if o.key != "version"}
    assert set(refused) == {"alloc", "free"}
    for outcome in refused.values():
        assert isinstance(outcome.error, RequestError)
        assert "not sent again" in str(outcome.error)
    # The rest come back in one batch, under the same wire keys.
    assert len(again) == 1
    resent = posted(again)
    by_caller = {
        caller_of.get(job.key, "alloc later"): (board, job) for board, job in resent
    }
    assert set(by_caller) == {"tagged", "read", "write", "alloc later"}
    assert by_caller["read"][0] == "b0"
    assert by_caller["alloc later"][0] == "b1"
    assert isinstance(by_caller["write"][1], WriteJob)
    assert book.take_incoming() == []  # the later put went with the batch
    assert book.open_jobs == 4

    # The new worker answers; the old one's late outcomes are stale.
    answer_all(book, resent)
    answer_all(book, [entry for entry in first if caller_of[entry[1].key] != "version"])
    outcomes = sink.by_key()
    assert set(outcomes) == {
        "alloc",
        "free",
        "version",
        "tagged",
        "read",
        "write",
        "alloc later",
    }
    assert outcomes["version"].value == b"version reply"
    assert outcomes["read"].ok and outcomes["alloc later"].ok
    assert isinstance(outcomes["alloc"].error, RequestError)
    assert book.stale == 5  # tagged, alloc, free, read, write
    assert book.open_jobs == 0
    # A third worker finds nothing to do.
    assert book.take_for_new_worker() == []


@pytest.mark.timeout(10)
def test_a_job_resent_to_a_new_worker_counts_as_sent_for_the_next() -> None:
    # An unsafe job that was never sent goes to the new worker; if that one
    # dies too, it has been sent, and must not go a third time.
    book = GroupBook()
    sink = Sink()
    book.put([("b", SCPJob("alloc", SDRAMAlloc(0, 0, app_id=1, size=8)))], sink)
    ((_, job),) = posted(book.take_for_new_worker())
    assert job.key is not None and sink.outcomes == []
    assert book.take_for_new_worker() == []
    (outcome,) = sink.outcomes
    assert outcome.key == "alloc"
    assert isinstance(outcome.error, RequestError)


# -- what cannot cross is refused on the caller's thread --------------------------


@pytest.mark.timeout(10)
def test_a_request_holding_a_lambda_is_refused_and_nothing_is_kept() -> None:
    book = GroupBook()
    sink = Sink()
    with pytest.raises(InvalidArgumentError) as raised:
        book.put(
            [
                ("b0", SCPJob("good", GetVersion(0, 0, 0))),
                ("b1", SCPJob("bad", VersionWithHook())),
                ("b0", ReadJob("also good", 0, 0, 0, BASE, 10)),
            ],
            sink,
        )
    text = str(raised.value)
    assert "cross" in text
    assert "'b1'" in text  # names the job that cannot cross
    assert book.open_jobs == 0
    assert book.take_incoming() == []
    assert book.take_for_new_worker() == []
    assert sink.outcomes == []
    # The book goes on taking what can cross.
    book.put([("b0", SCPJob("fine", GetVersion(0, 0, 0)))], sink)
    wire = posted(book.take_incoming())
    answer_all(book, wire)
    assert [o.key for o in sink.outcomes] == ["fine"]


@pytest.mark.timeout(10)
def test_a_board_name_that_cannot_pickle_is_refused() -> None:
    book = GroupBook()

    def board() -> None:
        return None

    with pytest.raises(InvalidArgumentError):
        book.put([(board, SCPJob("k", GetVersion(0, 0, 0)))], Sink())
    assert book.open_jobs == 0


@pytest.mark.timeout(10)
def test_refusal_happens_on_the_callers_thread() -> None:
    book = GroupBook()
    seen: list[BaseException] = []

    def caller() -> None:
        try:
            book.put([("b", SCPJob("bad", VersionWithHook()))], Sink())
        except InvalidArgumentError as error:
            seen.append(error)

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join(5)
    assert len(seen) == 1


# -- failing everything -------------------------------------------------------------


@pytest.mark.timeout(10)
def test_fail_all_ends_every_open_job_once_with_the_error() -> None:
    book = GroupBook()
    first, second = Sink(), Sink()
    book.put([("b", SCPJob(("a", i), GetVersion(0, 0, 0))) for i in range(3)], first)
    wire = posted(book.take_incoming())
    book.put([("c", ReadJob("r", 0, 0, 0, BASE, 100))], second)  # not taken
    answer_all(book, wire[:1])
    error = ShutDown("gave up")
    book.fail_all(error)
    assert book.open_jobs == 0
    assert book.take_incoming() == []
    assert book.take_for_new_worker() == []
    a = first.by_key()
    assert a[("a", 0)].ok
    # Each ends with the error, named for its board.
    assert {said(a[("a", i)].error) for i in (1, 2)} == {
        (ShutDown, "board 'b': gave up")
    }
    assert [(o.key, said(o.error)) for o in second.outcomes] == [
        ("r", (ShutDown, "board 'c': gave up"))
    ]
    # One batch per sink, not one per job.
    assert len(second.batches) == 1 and len(first.batches) == 2
    # Late outcomes after that are stale.
    answer_all(book, wire)
    assert book.stale == 3
    assert len(first.outcomes) == 3
    book.fail_all(error)  # nothing left: nothing happens
    assert len(first.outcomes) == 3


@pytest.mark.timeout(10)
def test_a_closed_book_ends_its_jobs_and_every_later_one_at_once() -> None:
    """A group given up for good: what it holds ends with the error, and a
    job put later gets it at once instead of waiting for a worker."""
    book = GroupBook()
    early, late = Sink(), Sink()
    book.put([("b", SCPJob("v", GetVersion(0, 0, 0)))], early)
    error = ShutDown("given up")
    book.close(error)
    assert book.closed_by is error
    named = (ShutDown, "board 'b': given up")
    assert [(o.key, said(o.error)) for o in early.outcomes] == [("v", named)]
    book.put([("b", ReadJob(i, 0, 0, 0, BASE, 100)) for i in range(3)], late)
    assert [(o.key, said(o.error)) for o in late.outcomes] == [
        (0, named),
        (1, named),
        (2, named),
    ]
    assert len(late.batches) == 1
    assert book.open_jobs == 0
    assert book.take_incoming() == []
    assert book.take_for_new_worker() == []


# -- tickets and listeners ----------------------------------------------------------


@pytest.mark.timeout(10)
def test_tickets_are_answered_once_and_forgotten_ones_ignored() -> None:
    book = GroupBook()
    one, answer_one = book.new_ticket()
    two, answer_two = book.new_ticket()
    assert one != two
    book.answer(one, "stats")
    book.answer(one, "again")  # ignored
    book.forget(two)
    book.answer(two, "late")  # ignored
    assert answer_one.get_nowait() == "stats"
    with pytest.raises(queue.Empty):
        answer_one.get_nowait()
    with pytest.raises(queue.Empty):
        answer_two.get_nowait()


@pytest.mark.timeout(10)
def test_listening_remembers_the_port_for_the_next_worker() -> None:
    book = GroupBook()
    ticket, answer = book.new_ticket()
    heard: list[list[Any]] = []
    book.listeners[ticket] = (Listen(ticket, "sdp", None, None), heard.append)
    message = Listening(ticket, ("127.0.0.1", 43210))
    book.listening(message)
    assert answer.get_nowait() == message
    listen, callback = book.listeners[ticket]
    assert (listen.local_host, listen.local_port) == ("127.0.0.1", 43210)
    assert (listen.listen_id, listen.kind) == (ticket, "sdp")
    # A failed open changes nothing but is still answered.
    other, other_answer = book.new_ticket()
    book.listeners[other] = (Listen(other, "eieio", None, 5), heard.append)
    failed = Listening(other, None, "in use")
    book.listening(failed)
    assert other_answer.get_nowait() == failed
    assert book.listeners[other][0].local_port == 5


# -- encoding --------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_group_messages_round_trip() -> None:
    spec = GroupSpec("g", (), {"window": 4})
    messages = [
        Ready(12),
        Heartbeat(),
        GetGroupStats(3),
        GroupFailed("why"),
        GroupStats(3, {"b": "no stats"}),
        Outcomes([Outcome(1, b"x")]),
        Heard(2, [b"a", b"b"]),
    ]
    assert decode(encode(messages)) == messages
    assert pickle.loads(pickle.dumps(spec)) == spec
    with pytest.raises(InvalidArgumentError):
        GroupSpec("g", (), {"limiter": object()})
    with pytest.raises(TypeError):
        decode(pickle.dumps({"not": "a list"}))


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.hook = lambda: None


@pytest.mark.timeout(10)
def test_encode_outbound_turns_an_unpicklable_error_into_a_request_error() -> None:
    good = Outcome("good", value=b"data", resends=2)
    failed = Outcome("failed", error=RequestError("timeout"))
    bad = Outcome("bad", error=Unpicklable("lost the plot"))
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever pickle raises
        encode([Outcomes([good, bad])])
    batch = [
        Heartbeat(),
        Outcomes([good, bad, failed]),
        Listening(1, ("127.0.0.1", 1)),
        Heard(1, [b"m"]),
    ]
    back = decode(encode_outbound(batch))
    assert [type(m) for m in back] == [Heartbeat, Outcomes, Listening, Heard]
    outcomes = back[1].outcomes
    assert [o.key for o in outcomes] == ["good", "bad", "failed"]
    assert outcomes[0] == good
    assert isinstance(outcomes[1].error, RequestError)
    assert "could not cross" in str(outcomes[1].error)
    assert "lost the plot" in str(outcomes[1].error)
    assert isinstance(outcomes[2].error, RequestError)
    assert str(outcomes[2].error) == "timeout"
    assert back[2:] == batch[2:]


@pytest.mark.timeout(10)
def test_encode_outbound_drops_heard_messages_that_cannot_pickle() -> None:
    """A listener's message that will not pickle is left out (and logged);
    the rest of its batch, and the other messages, still cross."""
    batch = [
        Heard(1, [b"a", Unpicklable("x"), b"b"]),
        Heartbeat(),
        GroupStats(3, {0: "text"}),
    ]
    back = decode(encode_outbound(batch))
    assert back == [Heard(1, [b"a", b"b"]), Heartbeat(), GroupStats(3, {0: "text"})]


@pytest.mark.timeout(10)
def test_encode_outbound_of_a_clean_batch_is_encode() -> None:
    batch = [Outcomes([Outcome(1, value=bytearray(b"xyz"))]), Heartbeat()]
    assert encode_outbound(batch) == encode(batch)


# -- merging what goes back ---------------------------------------------------


@pytest.mark.timeout(10)
def test_merged_puts_listening_before_heard_and_keeps_message_order() -> None:
    o1, o2, o3 = (Outcome(i, value=i) for i in range(3))
    stats = GroupStats(9, {})
    batch = [
        Heard(1, ["a"]),
        Listening(2, ("h", 2)),
        Outcomes([o1]),
        Heard(2, ["x"]),
        Heard(1, ["b", "c"]),
        stats,
        Outcomes([o2, o3]),
        Heard(2, ["y"]),
        Heard(1, ["d"]),
    ]
    merged = _merged(batch)
    kinds = [type(m).__name__ for m in merged]
    # A Listening always comes before any Heard (the parent must know the
    # port before messages from it), whatever order they were put in.
    assert kinds.index("Listening") < kinds.index("Heard")
    assert merged[:2] == [Listening(2, ("h", 2)), stats]
    assert merged[2] == Outcomes([o1, o2, o3])
    heard = {m.listen_id: m.messages for m in merged if isinstance(m, Heard)}
    assert heard == {1: ["a", "b", "c", "d"], 2: ["x", "y"]}
    assert len(merged) == 5


@pytest.mark.timeout(10)
def test_merged_leaves_short_batches_alone() -> None:
    assert _merged([]) == []
    one = [Heard(1, ["a"])]
    assert _merged(one) is one
    assert _merged([Heartbeat(), Heartbeat()]) == [Heartbeat(), Heartbeat()]


@pytest.mark.timeout(10)
def test_a_new_worker_fences_the_writes_the_lost_one_had_sent() -> None:
    # Copies the lost worker sent may still land: the new worker's
    # connection fences their ranges before writing anything over them.
    book = GroupBook()
    sink = Sink()
    book.put(
        [
            ("b1", WriteJob("sent", 1, 2, 0, 0x6000_0000, b"x" * 300)),
            ("b1", SCPJob("fill", FillRequest(1, 2, 0x7000_0000, 7, 64))),
            ("b2", ReadJob("read", 0, 0, 0, 0x6000_0000, 64)),
        ],
        sink,
    )
    book.take_incoming()
    book.put([("b2", WriteJob("not sent", 0, 0, 0, 0x6000_0000, b"y"))], sink)
    (blob,) = book.take_for_new_worker()
    (message,) = decode(blob)
    assert isinstance(message, Post)
    assert len(message.entries) == 4
    assert sorted(message.fenced) == [
        ("b1", ((1, 2), 0x6000_0000, 0x6000_0000 + 300)),
        ("b1", ((1, 2), 0x7000_0000, 0x7000_0000 + 64)),
    ]


def test_a_cancel_crosses_after_its_jobs_and_a_new_worker_does_not_run_it() -> None:
    from actors.errors import Cancelled
    from actors.placement.wire import Cancel

    book, sink, other = GroupBook(), Sink(), Sink()
    book.put([("a", ReadJob("r", 0, 0, 0, BASE, 8))], sink)
    book.put([("a", ReadJob("r", 0, 0, 0, BASE, 8))], other)  # same key, other sink
    assert book.cancel(sink, ["r"])
    assert not book.cancel(sink, ["r"])  # once is enough
    assert not book.cancel(sink, ["unknown"])
    messages = [message for blob in book.take_incoming() for message in decode(blob)]
    assert [type(m) for m in messages] == [Post, Post, Cancel]
    (cancel,) = [m for m in messages if isinstance(m, Cancel)]
    (posted,) = messages[0].entries
    assert cancel.entries == [("a", posted[1].key)]  # the wire key, not "r"
    # The worker is lost before answering: the cancelled job ends here,
    # the other goes to the new worker.
    (again,) = [m for blob in book.take_for_new_worker() for m in decode(blob)]
    assert isinstance(again, Post) and len(again.entries) == 1
    (outcome,) = sink.outcomes
    assert outcome.key == "r" and isinstance(outcome.error, Cancelled)
    assert not other.outcomes and book.open_jobs == 1
