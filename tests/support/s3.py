"""A throw-away SeaweedFS S3 server on loopback, for the S3 claim-check store's tests.

``weed mini`` runs the master, a volume server, the filer, the S3 gateway and an admin server in
one process, tuned for one node: it skips the filer's wait for peers and the master's hold on
the first volume, so a fresh server stores its first object about 4.5 s after launch (``weed
server`` took 10 s). Every port is a free loopback port given on the command line (mini would
otherwise move a busy one elsewhere). Its data, its S3 identities and two config files live in
one temp folder, which is also its working directory (SeaweedFS reads ``master.toml`` and
``security.toml`` from there):

- ``master.toml``: one volume per collection at a time instead of seven (each bucket is a
  collection: a fresh bucket per test would otherwise soon run out of volumes);
- ``security.toml``: a key for SSE-S3, so ``ServerSideEncryption=AES256`` is honoured as on AWS.

The binary is built by ``scripts/setup --tests`` from the version in ``seaweedfs.version``. The
server is stopped by its own process group (SIGTERM: about 1.5 s) and can be started again on the
same ports and data (the "object store down for a while" fault). After such a restart its master
refuses every write for 15 s (its warm-up: three pulses of 5 s, fixed in this version, while
volume servers report back), so ``start`` returns only once a write works again.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import AnyHttpUrl, SecretStr

from gateway.settings import S3Settings
from tests.support.kafka import free_port

VERSION = (Path(__file__).parent / "seaweedfs.version").read_text().strip()
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "intake-gateway" / "bin"
WEED = CACHE / f"weed-{VERSION}"
REGION = "us-east-1"
PROBE_BUCKET = "readiness-probe"

MASTER_TOML = """\
[master.volume_growth]
copy_1 = 1
"""
SECURITY_TOML = """\
[s3.sse]
key = "{key}"
"""


@dataclass(frozen=True)
class S3Bucket:
    """What a test needs to reach one bucket of the server."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = REGION

    @property
    def object_store_url(self) -> str:
        return f"s3://{self.bucket}"

    def settings(self) -> S3Settings:
        """The gateway's ``GATEWAY_S3_*`` settings for this server."""
        return S3Settings(
            endpoint_url=AnyHttpUrl(self.endpoint),
            region=self.region,
            access_key_id=self.access_key,
            secret_access_key=SecretStr(self.secret_key),
        )


@dataclass
class S3Server:
    """One ``weed server -s3`` in ``directory``; ``ports`` are master, volume, filer, S3 (HTTP)
    then their gRPC ports."""

    directory: Path
    ports: dict[str, int]
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @classmethod
    def create(cls) -> S3Server:
        if not WEED.is_file():
            raise RuntimeError(f"{WEED} missing: scripts/setup --tests builds it (minutes)")
        directory = Path(tempfile.mkdtemp(prefix="seaweedfs-"))
        names = ("master", "volume", "filer", "s3", "admin")
        ports = {name: free_port() for name in names} | {f"{n}.grpc": free_port() for n in names}
        server = cls(directory, ports, "gateway-" + secrets.token_hex(4), secrets.token_hex(20))
        (directory / "data").mkdir()
        (directory / "master.toml").write_text(MASTER_TOML)
        (directory / "security.toml").write_text(SECURITY_TOML.format(key=secrets.token_hex(32)))
        identities = {
            "identities": [
                {
                    "name": "gateway",
                    "credentials": [
                        {"accessKey": server.access_key, "secretKey": server.secret_key}
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (directory / "s3.json").write_text(json.dumps(identities))
        server.start()
        return server

    def _command(self) -> list[str]:
        p, d = self.ports, self.directory
        return [
            str(WEED),
            "-logtostderr",
            "mini",
            f"-dir={d / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master.grpc']}",
            "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume.grpc']}",
            "-volume.max=200",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer.grpc']}",
            f"-filer.localSocket={d / 'filer.sock'}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3.grpc']}",
            f"-s3.localSocket={d / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={d / 's3.json'}",
            "-s3.allowDeleteBucketNotEmpty",
            "-webdav=false",
            "-admin.ui=false",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin.grpc']}",
            "-admin.port.legacy=0",
        ]

    def start(self) -> None:
        """Launch the server (again, on the same ports and data) and wait until it stores."""
        with (self.directory / "weed.log").open("ab") as log:
            self.process = subprocess.Popen(
                self._command(),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends it whole
            )
        self._wait_until_it_stores()

    def _wait_until_it_stores(self, timeout_s: float = 60.0) -> None:
        """S3 answering is not enough after a restart: the volume server must have joined the
        master again before a put works, so a small object is written and deleted."""
        client = self.client()
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed exited ({self.process.returncode}): {self.log_tail()}")
            try:
                if PROBE_BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
                    client.create_bucket(Bucket=PROBE_BUCKET)
                client.put_object(Bucket=PROBE_BUCKET, Key="probe", Body=b"ready")
                client.delete_object(Bucket=PROBE_BUCKET, Key="probe")
            except (BotoCoreError, ClientError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"weed did not serve S3: {self.log_tail()}") from None
                time.sleep(0.1)
            else:
                return

    def log_tail(self) -> str:
        log = self.directory / "weed.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def client(self, secret_key: str | None = None) -> BaseClient:
        """A blocking botocore client of this server (for fixtures and checks behind the
        store's back)."""
        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(
                retries={"max_attempts": 1},
                connect_timeout=2,
                read_timeout=30,
                s3={"addressing_style": "path"},
            ),
        )

    def create_bucket(self, name: str | None = None) -> S3Bucket:
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return S3Bucket(self.endpoint, self.access_key, self.secret_key, name)

    def delete_bucket(self, name: str) -> None:
        """The bucket and everything in it (the server allows deleting a non-empty bucket);
        its volume is freed with it."""
        self.client().delete_bucket(Bucket=name)

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL if it is still there after 15 s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
