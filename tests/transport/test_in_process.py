"""The in-memory link's queue as a test sees it: how many datagrams wait
at an endpoint, and waiting (without sleeping) until enough have come."""

from __future__ import annotations

import threading

import pytest

from transport import MemoryNetwork


@pytest.mark.timeout(10)
def test_queued_counts_what_arrived_and_wait_queued_returns_when_it_has() -> None:
    network = MemoryNetwork()
    sender, receiver = network.endpoint(), network.endpoint()
    assert receiver.queued == 0
    assert not receiver.wait_queued(1, 0.01)  # nothing sent: it times out

    def send_three() -> None:
        for n in range(3):
            sender.send_to(b"%d" % n, receiver.address)

    sent = threading.Thread(target=send_three)
    sent.start()
    assert receiver.wait_queued(3, 10)
    sent.join()
    assert receiver.queued == 3
    assert receiver.receive_waiting(2) == [
        (b"0", sender.address),
        (b"1", sender.address),
    ]
    assert receiver.queued == 1


@pytest.mark.timeout(10)
def test_wait_queued_gives_up_when_the_endpoint_closes() -> None:
    network = MemoryNetwork()
    endpoint = network.endpoint()
    closing = threading.Thread(target=endpoint.close)
    closing.start()
    assert not endpoint.wait_queued(1, 10)
    closing.join()
