"""`--engine nix`: `nix build <flake>#<file stem>` and copy the result out.
The flake's derivation runs this same package with `--engine host`, so the
object is the one the host engine would build with the pinned toolchain."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import Diagnostic, ToolchainError
from .run import failure, run

NIX_FEATURES = ["--extra-experimental-features", "nix-command flakes"]

HOST_ENGINE = "or build with the toolchain on this machine: --engine host"


@dataclass(frozen=True)
class CannotBuild:
    """A way `nix build` fails before our flake matters: this machine's Nix
    cannot build anything. `said` matches Nix's stderr; `reason` may use its
    groups ({0}, {1}); `todo` says what the user can do."""

    said: str
    reason: str
    todo: tuple[str, ...]


# Seen with Nix 2.8 on a fresh machine (no /etc/nix/nix.conf, no nixbld
# group, no daemon); first match wins.
CANNOT_BUILD = (
    CannotBuild(r"the group '([^']*)' specified in 'build-users-group' does not exist",
                "Nix is set to build as the users of group '{0}', which does not exist here",
                ("multi-user Nix: create the build users and start nix-daemon (the installer does both)",
                 "single-user Nix owned by this user (e.g. root): export NIX_CONFIG='build-users-group ='")),
    CannotBuild(r"cannot connect to socket at '([^']*)'",
                "the Nix daemon is not running (no socket at {0})",
                ("start it: systemctl start nix-daemon (or run `nix-daemon &` as root)",
                 "or, as the owner of /nix, use the store directly: export NIX_REMOTE=local")),
    CannotBuild(r"(?:opening lock file|creating directory|could not set permissions on|getting status of) "
                r"'(/nix/[^']*)'[^\n]*(?:Permission denied|Operation not permitted)",
                "this user cannot write the Nix store ({0}) and no daemon builds for it",
                ("start nix-daemon (multi-user Nix) so that other users can build",
                 "or run as the owner of /nix")),
    CannotBuild(r"executing '([^']*)': No such file or directory",
                "the builder {0} is not inside Nix's build sandbox",
                ("the flake's derivations must build with store paths only (nixpkgs' stdenv does)",
                 "to build an impure flake anyway: export NIX_CONFIG='sandbox = false'")),
    CannotBuild(r"unrecognised flag '--extra-experimental-features'|unknown command 'build'",
                "this Nix predates flakes",
                ("install Nix 2.4 or newer",)),
    CannotBuild(r"unable to download '([^']*)'",
                "Nix could not download {0} (no network, and the flake's inputs are not in the store)",
                ("run once on a networked machine (or copy the inputs with `nix copy`) "
                 "and set NIX_CONFIG='substituters =' to stop waiting for caches",)),
)


def diagnose(stderr: str) -> tuple[str, list[str]] | None:
    """Why this machine's Nix cannot build, and what to do, if stderr says so.
    Warnings are skipped: Nix warns about unreachable caches on its way to
    an unrelated error."""
    errors = "\n".join(line for line in stderr.splitlines() if not line.lstrip().startswith("warning:"))
    for known in CANNOT_BUILD:
        found = re.search(known.said, errors)
        if found:
            groups = [g or "" for g in found.groups()]
            return known.reason.format(*groups), [*known.todo, HOST_ENGINE]
    return None


def find_flake(source: Path, explicit: Path | None) -> Path:
    """--flake PATH, else the nearest directory above the source with a flake.nix."""
    if explicit is not None:
        flake = explicit.resolve()
        if not (flake / "flake.nix").is_file():
            raise ToolchainError(f"engine nix: no flake.nix in {flake}")
        return flake
    for parent in source.resolve().parents:
        if (parent / "flake.nix").is_file():
            return parent
    raise ToolchainError(Diagnostic(f"engine nix: no flake.nix above {source}",
                                    notes=["name one with --flake PATH, or use --engine host"]))


def build(source: Path, flake: Path | None, work: Path, out: Path) -> list[Path]:
    """Copy the derivation's objects and manifest.json into `out`."""
    nix = shutil.which("nix")
    if nix is None:
        raise ToolchainError(Diagnostic("engine nix: `nix` is not installed",
                                        notes=["install Nix (Debian: apt-get install nix-bin)", HOST_ENGINE]))
    flake_dir, attr = find_flake(source, flake), source.stem
    link = work / "result"
    ran = run("nix build", [nix, *NIX_FEATURES, "build", f"{flake_dir}#{attr}", "--out-link", link,
                            "--print-build-logs"], check=False)
    if ran.exit_code != 0:
        known = diagnose(ran.stderr)
        if known is not None:
            reason, todo = known
            err = failure(ran, f"Nix cannot build on this machine: {reason}")
            err.diagnostics[0].notes[:0] = todo  # what to do first, then the command and its stderr
            raise err
        err = failure(ran, f"the flake could not be evaluated or built (attribute {attr!r})")
        err.diagnostics[0].notes.append("nix build needs the flake's inputs (nixpkgs, rust-overlay): a networked "
                                        "machine or a populated store; --engine host builds without Nix")
        raise err
    copied = []
    for item in sorted(link.resolve().iterdir()):
        if item.is_file():
            copied.append(Path(shutil.copyfile(item, out / item.name)))
    if not any(p.suffix == ".o" for p in copied):
        raise ToolchainError(f"engine nix: {flake_dir}#{attr} produced no .o file")
    return copied
