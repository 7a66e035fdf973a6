"""Fetch, format, start, probe and stop a single-node Apache Kafka broker without Docker.

The jars come from Maven Central (``mvn dependency:copy-dependencies`` over ``pom.xml`` beside
this file), so a machine with Java 17 and Maven needs nothing else. The broker runs detached
from the process that started it; its pid is kept in a file so ``stop`` and ``status`` work
from any later command.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from dealstream.broker.local.config import (
    LocalBrokerSettings,
    SaslListener,
    log4j2_properties,
    server_properties,
)
from dealstream.broker.settings import KafkaSettings

POM = Path(__file__).with_name("pom.xml")


class BrokerError(RuntimeError):
    """The local broker could not be fetched, started or stopped; the message says why."""


@dataclass(frozen=True)
class BrokerStatus:
    bootstrap: str
    reachable: bool
    managed_pid: int | None
    detail: str


def broker_reachable(kafka: KafkaSettings, *, timeout_s: float = 2.0) -> bool:
    """True when a broker answers a metadata request at the configured bootstrap address."""
    # log_level 0: a probe that finds no broker is an answer, not an error worth logging.
    admin = AdminClient(
        {**kafka.client_config(), "socket.connection.setup.timeout.ms": "2000", "log_level": 0}
    )
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except Exception:  # KafkaException on timeout or refused connection
        return False
    return bool(metadata.brokers)


def _host_port(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",", maxsplit=1)[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise BrokerError(
            f"cannot read host:port from DEALSTREAM_KAFKA_BOOTSTRAP={bootstrap!r}; "
            "use the form 127.0.0.1:9092"
        )
    return host, int(port)


def _is_local(host: str) -> bool:
    return host in {"127.0.0.1", "localhost", "::1"}


def fetch(settings: LocalBrokerSettings) -> Path:
    """Download the broker jars with Maven unless they are already there (or KAFKA_HOME is set)."""
    libs = settings.libs_dir
    if any(libs.glob("kafka_2.13-*.jar")):
        return libs
    if settings.kafka_home is not None:
        raise BrokerError(f"KAFKA_HOME={settings.kafka_home} has no libs/kafka_2.13-*.jar")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) is needed to fetch the Kafka jars: install it or set KAFKA_HOME"
        )
    libs.mkdir(parents=True, exist_ok=True)
    command = [
        mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        f"-Dkafka.version={settings.kafka_version}", f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        shutil.rmtree(libs, ignore_errors=True)
        raise BrokerError(f"mvn could not fetch Kafka {settings.kafka_version}:\n{result.stdout}")
    return libs


def _java(settings: LocalBrokerSettings, *args: str) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise BrokerError("Java 17+ is needed to run the local Kafka broker")
    return [java, f"-Xmx{settings.heap}", "-cp", f"{settings.libs_dir}/*", *args]


def _read_pid(settings: LocalBrokerSettings) -> int | None:
    try:
        pid = int(settings.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _sasl_listener(kafka: KafkaSettings) -> SaslListener | None:
    """The SASL user of the settings, when they ask for SASL_PLAINTEXT (the local broker has
    no TLS); the broker then accepts exactly that user."""
    if kafka.security_protocol == "PLAINTEXT":
        return None
    if kafka.security_protocol != "SASL_PLAINTEXT":
        raise BrokerError(
            f"the local broker serves PLAINTEXT or SASL_PLAINTEXT, not "
            f"{kafka.security_protocol}: change DEALSTREAM_KAFKA_SECURITY_PROTOCOL"
        )
    if not (kafka.sasl_mechanism and kafka.sasl_username and kafka.sasl_password):
        raise BrokerError(
            "SASL_PLAINTEXT needs DEALSTREAM_KAFKA_SASL_MECHANISM, _SASL_USERNAME and "
            "_SASL_PASSWORD: the local broker is started with that one user"
        )
    try:
        return SaslListener(
            kafka.sasl_mechanism, kafka.sasl_username, kafka.sasl_password.get_secret_value()
        )
    except ValueError as error:
        raise BrokerError(str(error)) from None


def _format_storage(
    settings: LocalBrokerSettings, config_file: Path, sasl: SaslListener | None
) -> None:
    if (settings.data_dir / "meta.properties").exists():
        return
    cluster_id = uuid.uuid4().hex[:22]
    command = _java(settings, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                    "-c", str(config_file), "--ignore-formatted")  # fmt: skip
    scram = sasl.scram_credential() if sasl is not None else None
    if scram is not None:  # SCRAM users live in the cluster metadata, created with the storage
        command += ["--add-scram", scram]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BrokerError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")


def start(kafka: KafkaSettings, settings: LocalBrokerSettings) -> BrokerStatus:
    """Start the local broker unless one already answers at the bootstrap address."""
    if broker_reachable(kafka):
        return status(kafka, settings)
    host, port = _host_port(kafka.bootstrap)
    if not _is_local(host):
        raise BrokerError(
            f"no broker answers at {kafka.bootstrap}, and dealstream only starts brokers on "
            "127.0.0.1: start that cluster, or unset DEALSTREAM_KAFKA_BOOTSTRAP"
        )
    sasl = _sasl_listener(kafka)
    fetch(settings)
    for folder in (settings.home, settings.data_dir, settings.log_dir):
        folder.mkdir(parents=True, exist_ok=True)
    config_file = settings.home / "server.properties"
    config_file.touch(mode=0o600)  # may hold the SASL user's password
    config_file.chmod(0o600)
    config_file.write_text(
        server_properties(host=host, port=port, data_dir=settings.data_dir, sasl=sasl)
    )
    log_config = settings.home / "log4j2.properties"
    log_config.write_text(log4j2_properties(log_dir=settings.log_dir))
    _format_storage(settings, config_file, sasl)
    command = _java(
        settings,
        f"-Dlog4j2.configurationFile={log_config}",
        f"-Dkafka.logs.dir={settings.log_dir}",
        "kafka.Kafka",
        str(config_file),
    )
    with (settings.log_dir / "stdout.log").open("ab") as out:
        process = subprocess.Popen(  # noqa: S603
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    settings.pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + settings.start_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(
                f"the broker exited with code {process.returncode}; see {settings.log_dir}"
            )
        if broker_reachable(kafka, timeout_s=1.0):
            return status(kafka, settings)
        time.sleep(0.5)
    raise BrokerError(f"the broker did not answer within {settings.start_timeout_s}s")


def stop(settings: LocalBrokerSettings, *, timeout_s: float = 30.0) -> bool:
    """Stop the broker this project started (SIGTERM, then SIGKILL); False if none ran."""
    pid = _read_pid(settings)
    if pid is None:
        settings.pid_file.unlink(missing_ok=True)
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(pid, signal.SIGKILL)
    settings.pid_file.unlink(missing_ok=True)
    return True


def status(kafka: KafkaSettings, settings: LocalBrokerSettings) -> BrokerStatus:
    pid = _read_pid(settings)
    reachable = broker_reachable(kafka)
    if reachable and pid is not None:
        detail = f"local broker (pid {pid}) answers at {kafka.bootstrap}"
    elif reachable:
        detail = f"an external broker answers at {kafka.bootstrap}"
    elif pid is not None:
        detail = f"local broker process {pid} is running but not answering yet"
    else:
        detail = f"no broker at {kafka.bootstrap}"
    return BrokerStatus(kafka.bootstrap, reachable, pid, detail)
