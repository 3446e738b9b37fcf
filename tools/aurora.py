"""Aurora, served by PostgreSQL: each DB cluster the emulator creates gets a real PostgreSQL server
made with the system's `initdb` and `postgres` (the same binaries the project's throwaway cluster
uses), so the functions the emulator runs talk to a real database.

How a function reaches it. A real cluster's endpoint is a DNS name on port 5432. Here each cluster
gets a loopback address of its own (127.x.y.z; all of 127.0.0.0/8 is loopback on Linux) and its
PostgreSQL listens there on 5432; DescribeDBClusters reports that address as the cluster's
`Endpoint`. So the deployer configures the host the emulator reports, and a function connects to
exactly that host: nothing in its environment is rewritten.

Its users. The server is made with the cluster's master user name; its password is the one in the
cluster's RDS-managed secret (`ManageMasterUserPassword`), or `MasterUserPassword`. Connections over
TCP authenticate with scram-sha-256, as Aurora does, and are TLS (a certificate for the address,
signed by a CA this emulator makes at start: `Server.ca_pem`), so a function's `sslmode=require`
works unchanged. The database named by `DatabaseName` exists from the start.

Rotation. `rotate_password` sets a new password on the server (ALTER ROLE), then the caller stores
it in the secret: what RDS's managed rotation does. Sessions already open stay open, as on Aurora.

Everything lives under one temporary directory per server, removed when the cluster is deleted or
the emulator stops; the server dies with the emulator (parent-death signal)."""

from __future__ import annotations

import atexit
import datetime
import ipaddress
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pg8000.native
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import processes

PORT = 5432
START_TIMEOUT = 60.0
INSTALL_HINT = "install the Debian package `postgresql` (apt-get install postgresql)"


def binaries() -> tuple[Path, Path]:
    """`initdb` and `postgres` of one installation: PG_BIN_DIR, PATH, then /usr/lib/postgresql/*/bin."""
    candidates = [Path(os.environ["PG_BIN_DIR"])] if os.environ.get("PG_BIN_DIR") else []
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        initdb = Path(entry) / "initdb"
        candidates.append(initdb.resolve().parent if initdb.exists() else Path(entry))
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    candidates.extend(reversed(versions))
    for folder in candidates:
        if os.access(folder / "initdb", os.X_OK) and os.access(folder / "postgres", os.X_OK):
            return folder / "initdb", folder / "postgres"
    raise RuntimeError(f"PostgreSQL server binaries (initdb, postgres) not found: {INSTALL_HINT}")


class CertificateAuthority:
    """A CA made once per emulator, which signs each server's certificate for its address."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "promo-codes emulator test CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def server(self, address: str) -> tuple[bytes, bytes]:
        """A certificate and key (PEM) for a server at `address`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem


CA = CertificateAuthority()


def free_address() -> str:
    """A loopback address whose port 5432 nobody holds (127.0.0.1 is left to a system server)."""
    for _ in range(100):
        address = f"127.{random.randint(100, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        with socket.socket() as probe:
            try:
                probe.bind((address, PORT))
                return address
            except OSError:
                continue
    raise RuntimeError("no free loopback address for a PostgreSQL server")


def run_as() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: as root, run it as `postgres` (EPHEMERAL_PG_USER)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("EPHEMERAL_PG_USER", "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(f"running as root, but there is no unprivileged user {name!r} to run PostgreSQL as") from None


class Server:
    """One cluster's PostgreSQL. `start()` runs in the background; `ready` is set when it serves."""

    def __init__(self, user: str, password: str, database: str) -> None:
        self.user, self.database = user, database
        self._password = password
        self.address = free_address()
        self.dir = Path(tempfile.mkdtemp(prefix="emulator-aurora-"))
        self.ready = threading.Event()
        self.error: str | None = None
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()

    @property
    def socket_dir(self) -> Path:
        return self.dir / "socket"

    def start(self) -> None:
        try:
            self._start()
        except Exception as error:  # noqa: BLE001 - reported through DescribeDBClusters' status
            self.error = str(error)
            self.stop()
        finally:
            self.ready.set()

    def _start(self) -> None:
        initdb, postgres = binaries()
        owner = run_as()
        data = self.dir / "data"
        files = [self.dir, self.socket_dir]
        for folder in files:
            folder.mkdir(exist_ok=True)
        password_file = self.dir / "password"
        password_file.write_text(self._password)
        cert, key = CA.server(self.address)
        (self.dir / "server.crt").write_bytes(cert)
        (self.dir / "server.key").write_bytes(key)
        os.chmod(self.dir / "server.key", 0o600)
        if owner is not None:
            for path in [*files, password_file, self.dir / "server.crt", self.dir / "server.key"]:
                os.chown(path, owner.pw_uid, owner.pw_gid)
        user = owner.pw_name if owner else None
        done = subprocess.run(
            [str(initdb), "-D", str(data), "-U", self.user, f"--pwfile={password_file}", "--auth-local=trust",
             "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
            user=user, capture_output=True, text=True, check=False,
        )
        password_file.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
        # TLS only over TCP, as Aurora (rds.force_ssl) asks of its clients.
        hba = data / "pg_hba.conf"
        hba.write_text("local all all trust\nhostssl all all 127.0.0.0/8 scram-sha-256\n")
        log = open(self.dir / "postgres.log", "ab")
        self.process = processes.spawn(
            [str(postgres), "-D", str(data), "-p", str(PORT), "-c", f"listen_addresses={self.address}",
             "-c", f"unix_socket_directories={self.socket_dir}", "-c", "ssl=on",
             "-c", f"ssl_cert_file={self.dir / 'server.crt'}", "-c", f"ssl_key_file={self.dir / 'server.key'}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            user=user, stdout=log, stderr=log, death_signal=processes.SIGINT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_tail()}")
            try:
                with self.session() as session:
                    if self.database != "postgres":
                        session.run(f"CREATE DATABASE {pg8000.native.identifier(self.database)}")
                return
            except (pg8000.exceptions.InterfaceError, pg8000.exceptions.DatabaseError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not start within {START_TIMEOUT} s: {self.log_tail()}") from None
                time.sleep(0.1)

    def session(self) -> pg8000.native.Connection:
        """A superuser session over the server's own socket (trusted, as on the database host)."""
        return pg8000.native.Connection(self.user, unix_sock=str(self.socket_dir / f".s.PGSQL.{PORT}"), database="postgres")

    def rotate_password(self, password: str) -> None:
        """What RDS's managed rotation does to the database: the master user's new password."""
        self.ready.wait()
        with self.lock, self.session() as session:
            session.run(f"ALTER ROLE {pg8000.native.identifier(self.user)} PASSWORD {pg8000.native.literal(password)}")

    def log_tail(self) -> str:
        try:
            return (self.dir / "postgres.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(processes.SIGINT)  # fast shutdown: ends sessions, then exits
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# Cluster ARN -> its server.
SERVERS: dict[str, Server] = {}
SERVERS_LOCK = threading.Lock()


def create(cluster_arn: str, user: str, password: str, database: str) -> Server:
    server = Server(user, password, database)
    with SERVERS_LOCK:
        SERVERS[cluster_arn] = server
    threading.Thread(target=server.start, daemon=True, name=f"aurora {cluster_arn}").start()
    return server


def server(cluster_arn: str) -> Server | None:
    with SERVERS_LOCK:
        return SERVERS.get(cluster_arn)


def delete(cluster_arn: str) -> None:
    with SERVERS_LOCK:
        server = SERVERS.pop(cluster_arn, None)
    if server is not None:
        server.ready.wait()
        server.stop()


@atexit.register
def stop_all() -> None:
    with SERVERS_LOCK:
        servers = list(SERVERS.values())
        SERVERS.clear()
    for each in servers:
        each.stop()
