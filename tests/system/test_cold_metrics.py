"""/metrics for cold boards: the sensors of a watched BMP's boards, read at
each scrape over UDP, and this process's boots and power commands; and
``spinnactors board --bmp ... --metrics-port`` exporting its BMP's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors import connect
from actors.boot import BootError, BootOptions, set_power, watch_bmp
from actors.metrics import serve
from tests.system.cold import cold_board, cold_boards
from tests.system.conftest import ROOT
from tests.system.test_cli_cold import free_run
from tests.system.test_metrics import of, scrape
from transport import FaultPlan, VirtualBMP, VirtualBoard

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def frame() -> Iterator[tuple[VirtualBMP, list[VirtualBoard]]]:
    boards = cold_boards(140, 2)
    bmp = VirtualBMP(boards).start()
    try:
        yield bmp, boards
    finally:
        bmp.stop()
        for board in boards:
            board.stop()


def test_a_watched_bmps_boards_are_gauges_read_at_each_scrape(
    frame: tuple[VirtualBMP, list[VirtualBoard]],
) -> None:
    bmp, _ = frame
    name = "{}:{}".format(*bmp.address)
    with watch_bmp(*bmp.address), serve(0) as server:
        samples = scrape(server)
        assert of(samples, "spinnactors_bmp_up", bmp=name) == 1.0
        for board in ("0", "1"):
            label = f"{name}/{board}"
            celsius = "spinnactors_board_temperature_celsius"
            assert of(samples, celsius, board=label, sensor="top") == 40.0
            assert of(samples, celsius, board=label, sensor="bottom") == 38.0
            volts = "spinnactors_board_voltage_volts"
            assert of(samples, volts, board=label, rail="supply") == pytest.approx(
                12.0, abs=0.01
            )
            assert of(samples, volts, board=label, rail="1.2a") == pytest.approx(
                1.2, abs=0.01
            )
            assert of(samples, "spinnactors_board_sensor_warning", board=label) == 0
        # Sensors that are not there are not exported.
        assert not any(
            key[0] == "spinnactors_board_fan_rpm"
            or dict(key[1]).get("sensor", "").startswith("external")
            for key in samples
        )
        bmp.set_temperature(1, 95.0)  # too hot: shut down, rails at 0 V
        hot = scrape(server)
        label = f"{name}/1"
        assert (
            of(hot, "spinnactors_board_temperature_celsius", board=label, sensor="top")
            == 95.0
        )  # noqa: E501
        assert of(hot, "spinnactors_board_sensor_shutdown", board=label) == 256
        assert of(hot, "spinnactors_board_voltage_volts", board=label, rail="1.2a") == 0
        bmp.stop()
        gone = scrape(server)
        assert of(gone, "spinnactors_bmp_up", bmp=name) == 0.0
        assert (
            "spinnactors_board_temperature_celsius",
            (("board", label), ("sensor", "top")),
        ) not in gone  # noqa: E501
    with serve(0) as server:  # closed: no longer watched
        assert not any(key[0] == "spinnactors_bmp_up" for key in scrape(server))


def counts(samples: dict) -> dict[str, float]:  # type: ignore[type-arg]
    """The boot and power counters, by name and label."""
    return {
        f"{name}{dict(labels)}": value
        for (name, labels), value in samples.items()
        if name.startswith(("spinnactors_boot", "spinnactors_power"))
        and name.endswith("_total")
    }


def test_boots_failures_and_power_switches_are_counted(
    frame: tuple[VirtualBMP, list[VirtualBoard]],
) -> None:
    bmp, boards = frame
    quick = BootOptions(probe_timeout=0.3, pass_timeout=0.3, deadline=10)
    with serve(0) as server:
        before = counts(scrape(server))
        with connect(*boards[0].address, boot=quick) as client:
            client.boot(quick)  # up already
        with (
            cold_board(146, faults=FaultPlan(drop=1.0)) as deaf,
            connect(*deaf.address) as client,
            pytest.raises(BootError),
        ):
            client.boot(BootOptions(probe_timeout=0.3, deadline=1.0))
        set_power(bmp.address, [0, 1], False)
        set_power(bmp.address, [1], True)
        after = counts(scrape(server))
    delta = {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if after[key] != before.get(key, 0.0)
    }
    passes = delta.pop("spinnactors_boot_passes_total{}")
    assert passes >= 2  # one for the board booted, one or more for the deaf one
    assert delta == {
        "spinnactors_boots_total{'outcome': 'booted'}": 1,
        "spinnactors_boots_total{'outcome': 'already_up'}": 1,
        "spinnactors_boots_total{'outcome': 'failed'}": 1,
        "spinnactors_boot_failures_total{'stage': 'boot'}": 1,
        "spinnactors_power_switches_total{'action': 'off'}": 2,
        "spinnactors_power_switches_total{'action': 'on'}": 1,
    }


@pytest.mark.timeout(60)
def test_the_board_command_exports_its_bmps_sensors() -> None:
    first = free_run(150, 2)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "actors.app.cli", "board", "--unbooted"),
            *("--bmp", f"127.0.0.{first}:0", "--boards", "2", "--port", "0"),
            *("--hello", "127.0.0.1", "--metrics-port", "0"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        lines = [process.stdout.readline() for _ in range(5)]
        assert lines[4].startswith("BMP on "), (lines, process.stderr.read())
        bmp = re.findall(r"127\.0\.0\.\d+:\d+", lines[4])[0]
        url = process.stderr.readline().split()[-1]  # metrics on URL
        with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
    finally:
        process.terminate()
        process.wait(10)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    for board in (0, 1):
        label = f"{bmp}/{board}"
        celsius = "spinnactors_board_temperature_celsius"
        assert of(samples, celsius, board=label, sensor="top") == 40.0
    assert of(samples, "spinnactors_bmp_up", bmp=bmp) == 1.0
