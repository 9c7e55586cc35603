"""Several grading hosts on one machine, for the queue's tests and benchmark.

A network namespace `<prefix>s` holds the broker (Redis, AOF on every write,
password) and the gradebook (PostgreSQL, scram passwords); each worker gets a
namespace of its own, joined to the servers' by a veth pair (10.231.<i>.2 ->
10.231.<i>.1). Every address is inside a namespace made here, so nothing else
on the machine or beyond is ever a target. The instructor's side (this process)
reaches the servers through their Unix sockets in a private folder. The servers
listen on the veth addresses and those sockets only.

    with LocalCluster(workers=2) as cluster:
        cluster.producer_env()   # for submit/watch in this process
        cluster.start_worker(1)  # "w1", in namespace 1

Root only (namespaces, the sandbox). `close()` removes every process, namespace,
link and folder it made, whatever happened before.
"""
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nopos.grading.distributed import settings

# Debian's PostgreSQL (the newest installed major version)
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), default=Path("/usr/lib/postgresql/15/bin"),
             key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
NET = "10.231"


def available():
    """None, or why this machine cannot run a cluster."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "ss", "redis-server", "redis-cli", "psql", "runuser"):
        if not shutil.which(tool):
            return f"{tool} is not installed (.ci/run installs it)"
    if not (PG_BIN / "postgres").exists():
        return "PostgreSQL is not installed (.ci/run installs it)"
    return None


def _run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def descendants(pid):
    """pid and every process below it (read from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def kill_tree(pid, sig=signal.SIGKILL):
    """Signal pid and every process below it; killed (SIGKILL), the sandbox cgroups
    its kernels had joined go too (a kernel killed from outside leaves them)."""
    pids = descendants(pid)
    groups = set()
    for p in pids:
        try:
            lines = Path(f"/proc/{p}/cgroup").read_text().splitlines()
        except OSError:
            continue
        groups.update(line.rsplit("/", 1)[1] for line in lines if ":/nopos/k" in line)
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    if sig == signal.SIGKILL and groups:
        from nopos.grading.sandbox_launcher import kill_cgroup

        for name in groups:
            kill_cgroup(name)


class LocalCluster:
    def __init__(self, workers=2, visibility_s=20):
        self.n = workers
        self.visibility_s = visibility_s
        self.prefix = f"nq{os.getpid() % 100000}"
        self.dir = Path(tempfile.mkdtemp(prefix="nopos-queue-"))
        os.chmod(self.dir, 0o711)  # postgres (its own user) reaches its folder below
        self.redis_pw, self.db_pw, self.su_pw = (secrets.token_hex(16) for _ in range(3))
        self.namespaces, self.workers, self.redis, self.postgres = [], {}, None, None

    # ---------------------------------------------------------------- set up
    def __enter__(self):
        try:
            self.network()
            self.keys()
            self.start_redis()
            self.start_postgres()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def servers(self):
        return f"{self.prefix}s"

    def network(self):
        _run("ip", "netns", "add", self.servers)
        self.namespaces.append(self.servers)
        _run("ip", "-n", self.servers, "link", "set", "lo", "up")
        for i in range(1, self.n + 1):
            ns = f"{self.prefix}w{i}"
            _run("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            outer, inner = f"{self.prefix}v{i}", f"{self.prefix}x{i}"
            _run("ip", "link", "add", outer, "netns", self.servers, "type", "veth",
                 "peer", "name", inner, "netns", ns)
            _run("ip", "-n", self.servers, "addr", "add", f"{NET}.{i}.1/24", "dev", outer)
            _run("ip", "-n", ns, "addr", "add", f"{NET}.{i}.2/24", "dev", inner)
            for where, dev in ((self.servers, outer), (ns, inner), (ns, "lo")):
                _run("ip", "-n", where, "link", "set", dev, "up")

    def keys(self):
        from nopos.grading.distributed.signing import make_key

        grader = self.dir / "keys-grader"
        make_key(grader, "grader")
        (grader / "trusted").mkdir()
        shutil.copy(grader / "grader.pem", grader / "trusted" / "grader.pem")
        for i in range(1, self.n + 1):
            folder = self.dir / f"keys-w{i}"
            make_key(folder, "worker")
            (folder / "trusted").mkdir()
            shutil.copy(grader / "grader.pem", folder / "trusted" / "grader.pem")

    @property
    def redis_socket(self):
        return self.dir / "redis" / "redis.sock"

    def start_redis(self):
        folder = self.dir / "redis"
        folder.mkdir(exist_ok=True)
        binds = " ".join(f"{NET}.{i}.1" for i in range(1, self.n + 1))
        (folder / "redis.conf").write_text(
            f"bind {binds}\nport 6379\nprotected-mode yes\nrequirepass {self.redis_pw}\n"
            f"unixsocket {self.redis_socket}\nunixsocketperm 700\ndir {folder}\n"
            "appendonly yes\nappendfsync always\nsave \"\"\ndaemonize no\n"
            f"proto-max-bulk-len {settings.MAX_MESSAGE_MB}mb\n"
            f"logfile {folder / 'redis.log'}\n")
        os.chmod(folder / "redis.conf", 0o600)
        self.redis = subprocess.Popen(["ip", "netns", "exec", self.servers, "redis-server",
                                       str(folder / "redis.conf")], start_new_session=True)
        self._wait(lambda: self.redis_cli("PING").strip() == "PONG", "redis")

    def redis_cli(self, *args, password=True):
        env = dict(os.environ, REDISCLI_AUTH=self.redis_pw) if password else None
        return subprocess.run(["redis-cli", "-s", str(self.redis_socket), *args], env=env,
                              capture_output=True, text=True).stdout

    def restart_redis(self):
        """A crash (SIGKILL) and a start: what was queued must come back from the AOF."""
        kill_tree(self.redis.pid)
        self.redis.wait()
        self.start_redis()

    def start_postgres(self):
        folder = self.dir / "pg"
        folder.mkdir()
        shutil.chown(folder, "postgres", "postgres")
        os.chmod(folder, 0o700)  # its socket: postgres's and root's only (review h31b, L3)
        pwfile = folder / "pw"
        pwfile.write_text(self.su_pw + "\n")
        shutil.chown(pwfile, "postgres", "postgres")
        os.chmod(pwfile, 0o600)
        data = folder / "data"
        _run("runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(data), "-U",
             "postgres", "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-sync")
        pwfile.unlink()
        with open(data / "pg_hba.conf", "a") as hba:  # the workers' veth addresses, by password
            hba.write(f"host gradebook grader {NET}.0.0/16 scram-sha-256\n")
        listen = ",".join(f"{NET}.{i}.1" for i in range(1, self.n + 1))
        self.postgres = subprocess.Popen(
            ["ip", "netns", "exec", self.servers, "runuser", "-u", "postgres", "--",
             str(PG_BIN / "postgres"), "-D", str(data), "-c", f"listen_addresses={listen}",
             "-c", f"unix_socket_directories={folder}", "-c", "unix_socket_permissions=0700",
             "-c", "fsync=off"],  # a test database: speed over surviving a power cut
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=open(folder / "log", "w"))
        env = dict(os.environ, PGPASSWORD=self.su_pw)
        psql = ["psql", "-h", str(folder), "-U", "postgres", "-d", "postgres", "-v",
                "ON_ERROR_STOP=1", "-c"]
        self._wait(lambda: subprocess.run(psql + ["SELECT 1"], env=env,
                                          capture_output=True).returncode == 0, "postgres")
        _run(*psql, f"CREATE ROLE grader LOGIN PASSWORD '{self.db_pw}'", env=env)
        _run(*psql, "CREATE DATABASE gradebook OWNER grader", env=env)

    def _wait(self, ready, what, seconds=30):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                if ready():
                    return
            except Exception:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{what} did not start in {seconds} s (logs in {self.dir})")

    # ---------------------------------------------------------------- use
    def producer_env(self):
        """The instructor's environment: the servers by their sockets."""
        return {"NOPOS_BROKER_URL": f"redis+socket://:{self.redis_pw}@{self.redis_socket}",
                "NOPOS_GRADEBOOK_URL": f"postgresql+psycopg://grader@/gradebook?host={self.dir / 'pg'}",
                "PGPASSWORD": self.db_pw, "NOPOS_QUEUE_KEYS": str(self.dir / "keys-grader"),
                "NOPOS_QUEUE_VISIBILITY_S": str(self.visibility_s)}

    def worker_env(self, i):
        """Worker i's environment: the servers over its veth pair, by password."""
        return {"NOPOS_BROKER_URL": f"redis://:{self.redis_pw}@{NET}.{i}.1:6379/0",
                "NOPOS_GRADEBOOK_URL": f"postgresql+psycopg://grader@{NET}.{i}.1:5432/gradebook",
                "PGPASSWORD": self.db_pw, "NOPOS_QUEUE_KEYS": str(self.dir / f"keys-w{i}"),
                "NOPOS_QUEUE_VISIBILITY_S": str(self.visibility_s),
                # these "hosts" share this machine's cores: a kernel's torch gets its share
                # (nopos.threads), not every core each, which would oversubscribe them
                "NOPOS_THREADS": str(max(1, len(os.sched_getaffinity(0)) // self.n))}

    def start_worker(self, i, name=None, prepare=None):
        """A worker in namespace i (several may share one: hosts with several workers)."""
        name = name or f"w{i}"
        env = dict(os.environ, **self.worker_env(i))
        log = open(self.dir / f"worker-{name}.log", "a")
        self.workers[name] = subprocess.Popen(
            ["ip", "netns", "exec", f"{self.prefix}w{i}", sys.executable, "-m",
             "nopos.grading.distributed.worker", "--name", name,
             *(["--prepare", prepare] if prepare else [])],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self.workers[name]

    def kill_worker(self, name):
        """The whole host gone: the worker, its grading process, nbgrader and the kernel."""
        from nopos.grading.distributed.worker import FOLDER_SAID

        proc = self.workers.pop(name)
        kill_tree(proc.pid)
        proc.wait()
        # its working folder (nopos.grading.distributed.worker.work): killed, it cannot
        for line in self.worker_log(name).splitlines():
            if line.startswith(FOLDER_SAID):  # its first line: nothing it graded wrote it
                shutil.rmtree(line[len(FOLDER_SAID):], ignore_errors=True)
                break

    def wait_ready(self, count, seconds=300):
        """Until `count` workers say they take tasks."""
        self._wait(lambda: sum(" ready." in self.worker_log(n) for n in self.workers) >= count,
                   "the workers", seconds)

    def worker_log(self, name):
        path = self.dir / f"worker-{name}.log"
        return path.read_text() if path.exists() else ""

    # ---------------------------------------------------------------- tear down
    def close(self):
        for name in list(self.workers):
            self.kill_worker(name)
        for proc in (self.redis, self.postgres):
            if proc and proc.poll() is None:
                kill_tree(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    kill_tree(proc.pid)
                    proc.wait()
        for ns in reversed(self.namespaces):  # its veth pairs go with it
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces = []
        shutil.rmtree(self.dir, ignore_errors=True)
