"""Operating btar: the sync daemon (metrics, SIGTERM), `btar check` and `btar cost`."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.catalog import Catalog
from engine.cli import main
from engine.demo import create_demo, demo_producers

pytestmark = pytest.mark.integration


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_check_exit_codes_follow_the_monitoring_convention(tmp_path: Path) -> None:
    config = str(create_demo(tmp_path))
    code, out, _ = run("--config", config, "check")
    assert code == 2  # enabled but nothing copied yet: no restorable point
    assert out.count("CRITICAL") == 3
    assert run("--config", config, "sync", "--once")[0] == 0
    code, out, _ = run("--config", config, "check", "--json")
    assert code == 0
    assert json.loads(out) == {"status": "ok", "problems": []}
    with open(config, "a", encoding="utf-8") as handle:
        handle.write('\n[alerts]\nwindow_age_warning = "0s"\n'
                     '[alerts.services.orders]\nwindow_age_critical = "0s"\n')
    code, out, _ = run("--config", config, "check")
    assert code == 2
    lines = out.splitlines()
    assert lines[0].startswith("CRITICAL: orders:")
    assert sum(line.startswith("WARNING:") for line in lines) == 2


def test_bad_threshold_is_a_config_error(tmp_path: Path) -> None:
    config = create_demo(tmp_path)
    with open(config, "a", encoding="utf-8") as handle:
        handle.write('\n[alerts.services.orders]\nlag_warning = "soon"\n')
    code, _, err = run("--config", str(config), "check")
    assert code == 2
    assert "services.orders.lag_warning" in err


def test_cost_prices_bytes_stored_and_copied(tmp_path: Path) -> None:
    config = create_demo(tmp_path)
    with open(config, "a", encoding="utf-8") as handle:
        handle.write("\n[cost.aws]\nstorage_per_gb_month = 1000000.0\ntransfer_per_gb = 0\n")
    assert run("--config", str(config), "sync", "--once")[0] == 0
    code, out, _ = run("--config", str(config), "cost", "--json")
    assert code == 0
    regions = {(r["service"], r["region"]): r for r in json.loads(out)["regions"]}
    orders = regions[("orders", "aws-eu-central-1")]
    assert orders["bytes_stored"] > 0
    assert orders["bytes_transferred"] == orders["bytes_stored"]
    assert orders["storage_cost_month"] == pytest.approx(orders["bytes_stored"] / 1e9 * 1e6)
    billing = regions[("billing", "google-europe-north1")]
    assert billing["transfer_cost"] == pytest.approx(billing["bytes_transferred"] / 1e9 * 0.02)
    code, out, _ = run("--config", str(config), "cost")
    assert "per month" in out


def test_daemon_serves_metrics_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = create_demo(tmp_path)
    # A backlog large enough that SIGTERM lands while copies are in flight.
    start = datetime.now(UTC)
    for producer in demo_producers(tmp_path):
        producer.resume()
        for index in range(400):
            producer.segment(start + timedelta(milliseconds=index + 1))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "--config", str(config), "sync", "--interval",
         "0.2", "--log-format", "json", "--metrics-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        metrics = ""
        deadline = time.monotonic() + 30
        while "btar_objects_copied_total" not in metrics or \
                'btar_window_end_timestamp_seconds{region="aws-eu-central-1"' not in metrics:
            assert time.monotonic() < deadline, "no metrics within 30 s"
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                            timeout=2) as response:
                    metrics = response.read().decode()
            except OSError:
                continue
        assert "btar_replication_lag_seconds" in metrics
        assert "btar_region_paused" in metrics
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(entry["message"] == "sync stopped" for entry in logs)
    assert all({"time", "level", "message"} <= set(entry) for entry in logs)
    catalog_file = tmp_path / "btar.sqlite"
    with sqlite3.connect(catalog_file) as db:
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    catalog = Catalog.open(catalog_file)
    try:
        for service, region in (("orders", "aws-eu-central-1"),
                                ("billing", "google-europe-north1")):
            root = tmp_path / "regions" / region
            for item in catalog.items(service, region):
                if item.status != "available":
                    continue
                for ref in catalog.item_refs(service, region, item.item_id):
                    assert (root / service / ref.key).stat().st_size == ref.size
    finally:
        catalog.close()
    code, out, _ = run("--config", str(config), "sync", "--once", "--strict")
    assert code == 0, out
