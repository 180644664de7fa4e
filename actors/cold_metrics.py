"""The metric families of cold boards: each watched board's sensors (as its
BMP reads them, at the scrape) and this process's boots and power
commands. actors/metrics.py adds them to every scrape that has any.

Names (pinned: dashboards use them), each board labelled
``BMP-HOST:PORT/N``: ``spinnactors_board_voltage_volts{rail}``,
``spinnactors_board_temperature_celsius{sensor}`` (sensors that are
there), ``spinnactors_board_fan_rpm{fan}``,
``spinnactors_board_sensor_warning`` and ``_shutdown`` (the BMP's bits),
``spinnactors_bmp_up{bmp}``; counters ``spinnactors_boots{outcome}``
(booted, already_up, failed), ``spinnactors_boot_failures{stage}``,
``spinnactors_boot_passes`` (images sent) and
``spinnactors_power_switches{action}`` (boards switched on or off),
``spinnactors_recoveries{outcome}`` (recovered, failed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from actors.boot.sensors import BMPStatus
from messages.bmp import ADCInfo

#: The rails an ADCInfo reads, by the label /metrics gives them.
RAILS = {
    "1.2a": "voltage_1_2a",
    "1.2b": "voltage_1_2b",
    "1.2c": "voltage_1_2c",
    "1.8": "voltage_1_8",
    "3.3": "voltage_3_3",
    "supply": "voltage_supply",
}


def temperatures(sensors: ADCInfo) -> dict[str, float]:
    """Each temperature sensor that is there, by name: top and bottom
    (on the board), then ``internal_N`` and ``external_N`` for the rest."""
    names = ["top", "bottom", "internal_2", "internal_3"]
    found = {
        name: value
        for name, value in zip(names, sensors.temperatures_internal, strict=True)
        if value is not None
    }
    found.update(
        (f"external_{n}", value)
        for n, value in enumerate(sensors.temperatures_external)
        if value is not None
    )
    return found


def sensor_families(statuses: Sequence[BMPStatus]) -> list[Metric]:
    board = ["board"]
    up = GaugeMetricFamily(
        "spinnactors_bmp_up", "1 if the BMP answered the last scrape", labels=["bmp"]
    )
    volts = GaugeMetricFamily(
        "spinnactors_board_voltage_volts", "A rail's voltage", labels=["board", "rail"]
    )
    celsius = GaugeMetricFamily(
        "spinnactors_board_temperature_celsius",
        "A temperature sensor's reading",
        labels=["board", "sensor"],
    )
    fans = GaugeMetricFamily(
        "spinnactors_board_fan_rpm", "A fan's speed", labels=["board", "fan"]
    )
    warning = GaugeMetricFamily(
        "spinnactors_board_sensor_warning",
        "The BMP's warning bits for the board (0: none)",
        labels=board,
    )
    shutdown = GaugeMetricFamily(
        "spinnactors_board_sensor_shutdown",
        "The BMP's shutdown bits for the board (nonzero: it powered it off)",
        labels=board,
    )
    for status in statuses:
        up.add_metric([status.bmp], 1.0 if status.up else 0.0)
        for reading in status.readings:
            sensors, label = reading.sensors, reading.label
            if sensors is None:
                continue
            for rail, field in RAILS.items():
                volts.add_metric([label, rail], getattr(sensors, field))
            for name, value in temperatures(sensors).items():
                celsius.add_metric([label, name], value)
            for n, speed in enumerate(sensors.fans):
                if speed is not None:
                    fans.add_metric([label, str(n)], speed)
            warning.add_metric([label], sensors.warning)
            shutdown.add_metric([label], sensors.shutdown)
    return [up, volts, celsius, fans, warning, shutdown]


def boot_families(counts: Mapping[str, int]) -> list[Metric]:
    boots = CounterMetricFamily(
        "spinnactors_boots", "Boards brought up, by outcome", labels=["outcome"]
    )
    failures = CounterMetricFamily(
        "spinnactors_boot_failures", "Boots that failed, by stage", labels=["stage"]
    )
    passes = CounterMetricFamily(
        "spinnactors_boot_passes", "Boot images sent (every frame, once)"
    )
    switches = CounterMetricFamily(
        "spinnactors_power_switches",
        "Boards switched on or off through their BMPs",
        labels=["action"],
    )
    recoveries = CounterMetricFamily(
        "spinnactors_recoveries",
        "Lost boards power-cycled and booted again (opt-in), by outcome",
        labels=["outcome"],
    )
    failed = {
        name.partition(":")[2]: count
        for name, count in counts.items()
        if name.startswith("failed:")
    }
    for outcome in ("booted", "already_up"):
        boots.add_metric([outcome], counts.get(outcome, 0))
    boots.add_metric(["failed"], sum(failed.values()))
    for stage, count in sorted(failed.items()):
        failures.add_metric([stage], count)
    passes.add_metric([], counts.get("passes", 0))
    for action in ("on", "off"):
        switches.add_metric([action], counts.get(f"power_{action}", 0))
    recoveries.add_metric(["recovered"], counts.get("recovered", 0))
    recoveries.add_metric(["failed"], counts.get("recovery_failed", 0))
    return [boots, failures, passes, switches, recoveries]
