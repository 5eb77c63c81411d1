"""Debian's archive as tatara-build reaches it: apt-get with a sources list
of our own per suite, under the cache directory, so the system's apt
(its sources, lists, locks and package cache) is never touched. One suite
per lists directory keeps each `apt-get update` small (one Packages index)
and lets a query name exactly the suite a pin came from."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..compile.run import Ran, run_bytes
from ..errors import ToolchainError

MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# Debian's archive keyring (package debian-archive-keyring): on bookworm it
# holds the bullseye, bookworm and trixie keys, and sid is signed by the
# current release's automatic key, so this one file covers every suite.
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
SUITE = re.compile(r"^[a-z]+(?:-security|-updates|-backports)?$")
APT_TIMEOUT = 900.0  # seconds; a kernel .deb is 60-110 MB


@dataclass(frozen=True)
class Suite:
    name: str
    home: Path  # sources.list, lists/, cache/ of this suite

    @property
    def mirror(self) -> str:
        return SECURITY_MIRROR if self.name.endswith("-security") else MIRROR

    def options(self) -> list[str]:
        lists = self.home / "lists"
        return [
            "-o", f"Dir::Etc::sourcelist={self.home / 'sources.list'}",
            "-o", "Dir::Etc::sourceparts=/nonexistent",
            "-o", f"Dir::State::Lists={lists}",
            "-o", f"Dir::Cache={self.home / 'cache'}",
            "-o", "APT::Get::List-Cleanup=0",
        ]


def suite(name: str, cache: Path) -> Suite:
    if not SUITE.match(name):
        raise ToolchainError(f"not a Debian suite name: {name!r}")
    home = cache / "apt" / name
    (home / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (home / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    sources = home / "sources.list"
    line = f"deb [signed-by={KEYRING}] {_mirror(name)} {name} main\n"
    if not sources.is_file() or sources.read_text() != line:
        tmp = sources.with_name(f".sources.{os.getpid()}")
        tmp.write_text(line)
        tmp.replace(sources)
    return Suite(name, home)


def _mirror(name: str) -> str:
    return SECURITY_MIRROR if name.endswith("-security") else MIRROR


def _apt(tool: str, s: Suite, *args: str, cwd: Path | None = None) -> Ran:
    # Its own process group, tracked: a matrix run fetches kernels in worker
    # threads, and a signal must end the download, not wait for it.
    return run_bytes("kernel download", [tool, *s.options(), *args], cwd=cwd, check=False, timeout=APT_TIMEOUT,
                     decode=True, missing=f"{tool} not found: kernels are fetched from Debian's archive with apt "
                                          "(pass --kernel PATH to boot an image you have)")


def update(s: Suite) -> None:
    """Fetch the suite's signed index into its own lists directory."""
    if not KEYRING.is_file():
        raise ToolchainError(f"{KEYRING} is missing: install debian-archive-keyring")
    ran = _apt("apt-get", s, "update")
    errors = [line for line in (ran.stdout + ran.stderr).splitlines() if line.startswith(("E:", "W:", "Err:"))]
    if ran.exit_code != 0 or any(line.startswith(("E:", "Err:")) for line in errors):
        raise ToolchainError(f"apt-get update of Debian {s.name} failed:\n  " + "\n  ".join(errors[-8:] or [ran.stderr[-400:]]))


def versions(s: Suite, package: str) -> dict[str, dict[str, str]]:
    """version -> the index stanza's fields, for `package` in this suite."""
    ran = _apt("apt-cache", s, "show", "--all-versions", package)
    out: dict[str, dict[str, str]] = {}
    if ran.exit_code != 0:
        return out
    for stanza in ran.stdout.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z0-9-]+): ?(.*)$", stanza, re.M))
        if fields.get("Package") == package and "Version" in fields:
            out[fields["Version"]] = fields
    return out


def download(s: Suite, package: str, version: str, into: Path) -> Path:
    """`apt-get download package=version` into `into`; the .deb's path.
    Raises Dropped when the (freshly updated) index no longer has it."""
    into.mkdir(parents=True, exist_ok=True)
    os.chmod(into, 0o755)  # apt's unprivileged _apt user writes the file here
    ran = _apt("apt-get", s, "download", f"{package}={version}", cwd=into)
    if ran.exit_code != 0:
        if version not in versions(s, package):
            raise Dropped(s.name, package, version)
        raise ToolchainError(f"apt-get download {package}={version} failed: {ran.stderr.strip()[-400:]}")
    debs = list(into.glob(f"{package}_*.deb"))
    if len(debs) != 1:
        raise ToolchainError(f"apt-get download {package}={version} left {len(debs)} .deb files in {into}")
    return debs[0]


class Dropped(ToolchainError):
    """The archive no longer carries the pinned version (Debian keeps only
    the newest build per suite: sid and the -security suites move fast)."""

    def __init__(self, suite_name: str, package: str, version: str):
        self.suite, self.package, self.version = suite_name, package, version
        super().__init__(f"Debian {suite_name} no longer has {package}={version}")


def compare_versions(a: str, b: str) -> int:
    """dpkg's ordering of two version strings: -1, 0 or 1."""
    if a == b:
        return 0
    lower = run_bytes("kernel pins", ["dpkg", "--compare-versions", a, "lt", b], check=False,
                      missing="dpkg not found: kernel versions are ordered with dpkg --compare-versions").exit_code == 0
    return -1 if lower else 1
