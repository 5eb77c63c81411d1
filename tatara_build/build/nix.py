"""`--engine nix`: `nix build <flake>#<file stem>` and copy the result out.
The flake's derivation runs this same package with `--engine host`, so the
object is the one the host engine would build with the pinned toolchain."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import Diagnostic, ToolchainError
from .run import failure, run

NIX_FEATURES = ["--extra-experimental-features", "nix-command flakes"]


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
                                        notes=["install Nix (Debian: apt-get install nix-bin)",
                                               "or build with the toolchain on this machine: --engine host"]))
    flake_dir, attr = find_flake(source, flake), source.stem
    link = work / "result"
    ran = run("nix build", [nix, *NIX_FEATURES, "build", f"{flake_dir}#{attr}", "--out-link", link,
                            "--print-build-logs"], check=False)
    if ran.exit_code != 0:
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
