"""Apache Kafka fetched by the project: its jars from Maven Central, cached under `.kopru/`.

`mvn dependency:copy-dependencies` on `apache_kafka/pom.xml` (shipped beside this module,
so an installed kopru finds it too) copies `org.apache.kafka:kafka_2.13` and its runtime
into `<cache>/kafka-<version>/libs` once. Later runs use the cache and need neither the
network nor Maven, only Java 17+. Fetching is serialised by a file lock, so parallel test
runs and CLIs share one download.

A class-data-sharing archive (AppCDS, `kafka.jsa` beside the jars) is written by the first
graceful stop of a node (see kafka_cluster.prepare) and then mapped by every JVM: it
roughly halves a node's start time (measured on 2 cores: 6.5 s → 3.5 s).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).with_name("apache_kafka")
POM = ASSETS / "pom.xml"
LOG4J_CONFIG = ASSETS / "log4j2.properties"

# Small, fast-starting JVMs: serial GC (no GC threads to spare on a laptop or CI box),
# C1 only (start time matters more than peak throughput here), no perf-data file.
JVM_FLAGS = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
    f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
)


class KafkaUnavailable(RuntimeError):
    """Java or Maven is missing, or the jars could not be fetched."""


def kafka_version(pom: Path = POM) -> str:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if match is None:
        raise KafkaUnavailable(f"no <kafka.version> in {pom}")
    return match.group(1).strip()


def cache_root() -> Path:
    """`KOPRU_CACHE_DIR`, else `.kopru/` in the working directory (like the SQLite store)."""
    return Path(os.environ.get("KOPRU_CACHE_DIR", ".kopru")).resolve()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class KafkaDist:
    """A fetched Kafka: where its jars are and how to run one of its main classes."""

    home: Path
    version: str

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    @property
    def cds_archive(self) -> Path:
        return self.home / "kafka.jsa"

    @property
    def lock(self) -> Path:
        return self.home / ".lock"

    def classpath(self) -> str:
        # Sorted and explicit (no `libs/*`): a CDS archive only maps for the same classpath.
        return os.pathsep.join(str(p) for p in sorted(self.libs.glob("*.jar")))

    def java(
        self, main: str, *args: str, heap: str = "384m", dump_cds: Path | None = None
    ) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise KafkaUnavailable("the kafka engine needs Java 17+: `java` is not on PATH")
        cmd = [java, "-Xms64m", f"-Xmx{heap}", *JVM_FLAGS]
        if dump_cds is not None:
            cmd.append(f"-XX:ArchiveClassesAtExit={dump_cds}")
        elif self.cds_archive.exists():
            cmd += [
                f"-XX:SharedArchiveFile={self.cds_archive}",
                "-Xlog:cds=off",
                "-Xlog:cds+dynamic=off",
            ]
        return [*cmd, "-cp", self.classpath(), main, *args]


def _digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()[:16]


def fetch(root: Path | None = None, *, pom: Path = POM, quiet: bool = True) -> KafkaDist:
    """The jars of the pom's Kafka version, fetched by Maven unless already cached."""
    version = kafka_version(pom)
    dist = KafkaDist((root or cache_root()) / f"kafka-{version}", version)
    stamp = dist.home / "libs.sha256"
    digest = _digest(pom)
    with file_lock(dist.lock):
        if stamp.exists() and stamp.read_text().strip() == digest and dist.libs.is_dir():
            return dist
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaUnavailable(
                f"the kafka engine needs Maven once to fetch Kafka {version} "
                f"(`mvn` is not on PATH and {dist.libs} is not cached)"
            )
        partial = dist.home / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        cmd = [mvn, "-B", "-f", str(pom), "dependency:copy-dependencies",
               f"-DoutputDirectory={partial}", "-DincludeScope=runtime"]  # fmt: skip
        if quiet:
            cmd.insert(1, "-q")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-2000:]
            raise KafkaUnavailable(f"mvn could not fetch Kafka {version}:\n{tail}")
        shutil.rmtree(dist.libs, ignore_errors=True)
        dist.cds_archive.unlink(missing_ok=True)  # made for the old jars
        partial.rename(dist.libs)
        stamp.write_text(digest + "\n")
    return dist
