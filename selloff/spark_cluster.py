"""A Spark standalone cluster on this machine: one master and workers, each its own JVM.

dbt-spark's session method then connects to it with a `spark://` URL
(`Settings.spark_master`, passed to dbt as the var selloff_spark_master by
`dbt_runner.dbt_vars`), so
the models run on executors in the workers' JVMs, as on a real cluster, instead of inside
the driver (`local[N]`). Used by the Spark parity test and by `scripts/bench_spark.py`.

The JVMs come from pyspark's bundled jars (SPARK_HOME = the pyspark package folder). All
of them bind to 127.0.0.1; workers read the lake and write the Spark warehouse on the
local disk, which every JVM sees because they share the machine. Memory is kept small
(the machine has 2 cores): daemons 256 MB each, one 1-core executor per worker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

# Daemon heap (master, workers) and what each worker offers to executors.
DAEMON_MEMORY = "256m"
# The daemons only register workers and launch executors: C1 compiles that little code for
# less CPU than the C2 tier, and one GC thread is plenty for a 256 MB heap.
DAEMON_JAVA_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
WORKER_MEMORY = "1g"
WORKER_CORES = 1


def spark_home() -> Path:
    """pyspark's package folder: its bin/spark-class and jars/ run the daemons."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class StandaloneCluster:
    """Start with `with StandaloneCluster(folder, workers=2) as cluster:`; `cluster.url`
    is the master's spark:// URL. Logs and work folders go under `folder`."""

    folder: Path
    workers: int = 2
    start_timeout: float = 120.0
    port: int = 0
    webui_port: int = 0
    _procs: list[subprocess.Popen] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    @property
    def webui(self) -> str:
        return f"http://127.0.0.1:{self.webui_port}"

    def _env(self) -> dict[str, str]:
        # The daemons' own environment (a copy for the child processes only).
        env = dict(os.environ)
        env.update({
            "SPARK_HOME": str(spark_home()),
            "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
            "SPARK_DAEMON_JAVA_OPTS": " ".join(
                filter(None, (os.environ.get("SPARK_DAEMON_JAVA_OPTS"), DAEMON_JAVA_OPTS))),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(self.folder / "logs"),
            "SPARK_NO_DAEMONIZE": "1",
        })
        return env

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.folder / "logs" / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *args],
            env=self._env(), stdout=log, stderr=subprocess.STDOUT,
            # Its own process group, so stopping it reaches the JVM under the shell script.
            start_new_session=True,
        )
        log.close()
        self._procs.append(proc)
        return proc

    def start(self) -> StandaloneCluster:
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        self.webui_port = self.webui_port or _free_port()
        self._spawn("master", "org.apache.spark.deploy.master.Master",
                    "--host", "127.0.0.1", "--port", str(self.port),
                    "--webui-port", str(self.webui_port))
        for i in range(self.workers):
            work = self.folder / f"worker{i + 1}"
            work.mkdir(parents=True, exist_ok=True)
            self._spawn(f"worker{i + 1}", "org.apache.spark.deploy.worker.Worker",
                        "--host", "127.0.0.1", "--cores", str(WORKER_CORES),
                        "--memory", WORKER_MEMORY, "--webui-port", str(_free_port()),
                        "--work-dir", str(work), self.url)
        self.wait_for_workers()
        return self

    def state(self) -> dict:
        """The master's JSON status (its web UI's /json/ page)."""
        with urllib.request.urlopen(f"{self.webui}/json/", timeout=5) as resp:
            return json.loads(resp.read().decode("utf-8"))

    def alive_workers(self) -> int:
        try:
            status = self.state()
        except OSError:
            return 0
        return sum(1 for w in status.get("workers", []) if w.get("state") == "ALIVE")

    def wait_for_workers(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            dead = [p for p in self._procs if p.poll() is not None]
            if dead:
                self.stop()
                raise RuntimeError(f"a Spark daemon exited at start; see {self.folder / 'logs'}")
            if self.alive_workers() >= self.workers:
                return
            time.sleep(1.0)
        self.stop()
        raise TimeoutError(f"{self.workers} workers did not register with {self.url} within "
                           f"{self.start_timeout:.0f} s; see {self.folder / 'logs'}")

    def pids(self) -> list[int]:
        """The daemons' process ids (the JVMs and anything under them), for RSS sampling."""
        return [p.pid for p in self._procs if p.poll() is None]

    def stop(self) -> None:
        # Workers first, so the master does not log them as lost and try to recover.
        for proc in reversed(self._procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self._procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self._procs.clear()

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def java_available() -> bool:
    return shutil.which("java") is not None
