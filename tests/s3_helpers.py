"""moto's S3-compatible server on loopback, for the tests of artifacts on s3:// (imported by name)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def free_port() -> int:
    """A loopback port nothing listens on (closed again on return)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """moto's S3 server on a loopback port, with a bucket (`roost-artifacts` unless named); stop() kills it."""

    def __init__(self, bucket: str = "roost-artifacts") -> None:
        exe = Path(sys.executable).parent / "moto_server"
        if not exe.exists():
            pytest.fail("moto_server missing from the venv: pip install 'moto[server]' (it is in roost[dev])")
        port = free_port()
        self.proc = subprocess.Popen(
            [str(exe), "-p", str(port), "-H", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.url, self.bucket = f"http://127.0.0.1:{port}", bucket
        deadline = time.time() + 30
        while True:
            try:
                self.client().create_bucket(Bucket=bucket)
                break
            except Exception:
                if time.time() > deadline:
                    self.stop()
                    pytest.fail("moto S3 server did not start")
                time.sleep(0.2)

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.url, aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1"
        )

    def keys(self, prefix: str = "") -> set[str]:
        """Every object key in the bucket (under `prefix`)."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
