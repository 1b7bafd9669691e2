"""A throw-away PostgreSQL cluster (Debian's postgresql package) on loopback, in one folder.

``PostgresServer.create()`` runs ``initdb`` from the newest ``/usr/lib/postgresql/<major>/bin``
into a new folder under /tmp, then starts ``postgres`` itself as a child process on a free
loopback port, with its unix socket inside that folder and ``fsync`` and ``full_page_writes``
off for speed. The superuser ``gateway`` has a random
password: TCP on 127.0.0.1 asks for it (``scram-sha-256``), the unix socket trusts any local
user (the harness uses it to create databases).

Who runs it: ``initdb`` and ``postgres`` refuse to run as root. As root (this project's machines
and CI) both run as the ``postgres`` system user that Debian's package creates, and the folder
is handed to that user; as any other user they run as that user, in a folder of its own, and
no ``postgres`` account is needed.

``stop`` is an immediate shutdown (SIGQUIT to the postmaster's own pid, as a crash would leave
the data: recovery replays the WAL on the next start); ``restart`` starts again on the same port
and data; ``destroy`` stops and removes the folder.

``synchronous_commit`` stays on: with fsync off a commit costs a write() into the page cache,
which outlives the killed server, so every commit a client saw acknowledged survives ``stop``.
With it off (``create(settings={"synchronous_commit": "off"})``) an immediate stop loses the
commits of the last few hundred milliseconds (here 65 of 200 rows), which a restart test would
report as the backend's fault; it saves little (2,000 single-row commits: 0.17 s instead of 0.2).
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.kafka import free_port

SUPERUSER = "gateway"
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "200",
}
DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def binaries() -> Path:
    """The bin folder of the newest PostgreSQL major version installed by Debian's packages."""
    majors = [
        initdb.parent.parent
        for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if initdb.parent.parent.name.isdigit()
    ]
    if not majors:
        raise RuntimeError("PostgreSQL not installed: scripts/setup --tests installs postgresql")
    return max(majors, key=lambda major: int(major.name)) / "bin"


def _clean_env() -> dict[str, str]:
    """The environment without PG* variables (PGHOST, PGDATA... would override our options)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


@dataclass
class PostgresServer:
    """One cluster in ``directory`` (``data/``, ``run/`` for the socket, ``server.log``)."""

    directory: Path
    port: int
    password: str
    bin: Path
    user: str = SUPERUSER
    settings: dict[str, str] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory / "run"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    @property
    def url(self) -> str:
        """The superuser's URL over TCP, to the ``postgres`` database."""
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return self._process.pid if self._process and self._process.poll() is None else None

    @classmethod
    def create(cls, settings: dict[str, str] | None = None) -> PostgresServer:
        """A new cluster, started and accepting connections; ``settings`` (``-c name=value``)
        are added to or replace ``SERVER_SETTINGS``."""
        server = cls(
            directory=Path(tempfile.mkdtemp(prefix="postgres-")),
            port=free_port(),
            password=secrets.token_urlsafe(18),
            bin=binaries(),
            settings={**SERVER_SETTINGS, **(settings or {})},
        )
        try:
            server._init()
            server.start()
        except BaseException:
            server.destroy()
            raise
        return server

    def _as_owner(self) -> dict[str, Any]:
        """Popen options running a child as the cluster's owner: ``postgres`` when we are root."""
        if os.geteuid() != 0:
            return {}
        return {"user": "postgres", "group": "postgres", "extra_groups": []}

    def _init(self) -> None:
        self.socket_dir.mkdir()
        password_file = self.directory / "password"
        password_file.write_text(self.password + "\n")
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "as root, PostgreSQL runs as the 'postgres' system user, which is missing:"
                    " Debian's postgresql package creates it (scripts/setup --tests)"
                ) from None
            for path in (self.directory, self.socket_dir, password_file):
                shutil.chown(path, "postgres", "postgres")
        command = [
            str(self.bin / "initdb"),
            f"--pgdata={self.data}",
            f"--username={self.user}",
            f"--pwfile={password_file}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        ]
        with self.log.open("ab") as log:
            done = subprocess.run(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_clean_env(),
                cwd=self.directory,
                timeout=120,
                check=False,
                **self._as_owner(),
            )
        password_file.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {self._log_tail()}")

    def start(self, timeout: float = 60) -> None:
        """Starts the postmaster on ``port`` and waits until it accepts connections."""
        if self.pid is not None:
            return
        command = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        command += ["-k", str(self.socket_dir)]
        for name, value in self.settings.items():
            command += ["-c", f"{name}={value}"]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_clean_env(),
                cwd=self.directory,
                start_new_session=True,
                **self._as_owner(),
            )
        self._wait_ready(self._process, timeout)

    def _wait_ready(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        """Until ``postmaster.pid`` names this process and says ``ready`` (what ``pg_ctl -w``
        waits for): recovery after an immediate stop is finished, connections are accepted."""
        pid_file = self.data / "postmaster.pid"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited ({process.returncode}) on start: {self._log_tail()}"
                )
            try:
                lines = pid_file.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            if len(lines) > 7 and lines[0] == str(process.pid) and lines[7].strip() == "ready":
                return
            time.sleep(0.02)
        self._stop_process(process)
        raise RuntimeError(f"postgres not ready after {timeout}s: {self._log_tail()}")

    def stop(self) -> None:
        """Immediate shutdown of the postmaster by its own pid; the data stay."""
        if self._process is not None:
            self._stop_process(self._process)
            self._process = None

    @staticmethod
    def _stop_process(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            return
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self, timeout: float = 60) -> None:
        """Immediate stop, then a start on the same port and data (the WAL is replayed)."""
        self.stop()
        self.start(timeout)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.destroy()

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Runs SQL as the superuser over the unix socket (trusted, no password); its output."""
        options = "--no-psqlrc --quiet --tuples-only --no-align -v ON_ERROR_STOP=1"
        server = ["-h", str(self.socket_dir), "-p", str(self.port), "-U", self.user]
        done = subprocess.run(
            [str(self.bin / "psql"), *options.split(), *server, "-d", database, "-c", sql],
            capture_output=True,
            text=True,
            env=_clean_env(),
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}) on {sql!r}: {done.stderr}")
        return done.stdout

    def create_database(self, name: str) -> str:
        """A new empty database (a copy of ``template0``) owned by the superuser; its URL."""
        self._check_name(name)
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url_of(name)

    def drop_database(self, name: str) -> None:
        """Drops it even while clients are still connected (they are disconnected)."""
        self._check_name(name)
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @staticmethod
    def _check_name(name: str) -> None:
        if not DATABASE_NAME.fullmatch(name):
            raise ValueError(f"database name {name!r}: lower-case letters, digits and _ only")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return f"(no log at {self.log})"
        return "\n".join(text.splitlines()[-lines:])
