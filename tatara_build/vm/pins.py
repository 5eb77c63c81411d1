"""Update the kernel pins (kernel_pins.json) from Debian's archive:

    scripts/update-kernel-pins [LINE ...]      (default: every line)

For each line it takes the newest `linux-image-amd64` of the line's suites
(kernels.LINE_SUITES, in order) whose version is on that line, follows it to
the package holding the image (from 7.x `linux-image-<abi>` is itself a meta
package and the image is in `linux-binary-<abi>`), downloads the .deb with
apt-get (the tool's own sources list, see debian.py), and records the
package, version, image path and the sha256 of the .deb, the image and the
vmlinux inside it. Measured facts (`no_packet_test_run`) of a line are kept.
Prints one line per pin: kept, updated or new."""

from __future__ import annotations

import argparse
import functools
import hashlib
import re
import sys
import tempfile
from pathlib import Path

from . import debian, kernels

META = "linux-image-amd64"
_DEP = re.compile(r"^\s*(linux-(?:image|binary)-[0-9][^\s(]*-amd64)\s*\(=\s*([^)\s]+)\)")


def newest(line: str) -> tuple[str, str, str] | None:
    """(suite, package, version) of the newest image of `line`, or None."""
    for suite_name in kernels.LINE_SUITES[line]:
        suite = debian.suite(suite_name, kernels.cache_dir())
        with kernels._suite_lock(suite.home):
            debian.update(suite)
            metas = debian.versions(suite, META)
            on_line = [v for v in metas if v.startswith(line + ".")]
            if not on_line:
                continue
            version = max(on_line, key=functools.cmp_to_key(debian.compare_versions))
            package, version = _image_package(suite, metas[version])
            return suite_name, package, version
    return None


def _image_package(suite: debian.Suite, meta: dict[str, str]) -> tuple[str, str]:
    """Follow Depends from the meta package to the package with the image."""
    fields = meta
    for _ in range(3):
        deps = [m for dep in fields.get("Depends", "").split(",") if (m := _DEP.match(dep))]
        binary = next((m for m in deps if m[1].startswith("linux-binary-")), None)
        image = binary or next((m for m in deps if m[1].startswith("linux-image-")), None)
        if image is None:
            return fields["Package"], fields["Version"]
        fields = debian.versions(suite, image[1]).get(image[2])
        if fields is None:
            raise SystemExit(f"{suite.name}: {image[1]}={image[2]} is named but not in the index")
        if image[1].startswith("linux-binary-") or int(fields.get("Size", "0")) > 1_000_000:
            return image[1], image[2]
    raise SystemExit(f"{suite.name}: no package with a kernel image below {meta['Package']}")


def pin(line: str, suite_name: str, package: str, version: str, old: kernels.KernelPin | None) -> kernels.KernelPin:
    with tempfile.TemporaryDirectory(prefix="tatara-pin-") as tmp:
        deb = kernels.fetch_deb(suite_name, package, version, Path(tmp) / "deb")
        member = _image_member(deb)
        image = Path(tmp) / "vmlinuz"
        kernels.deb_member(deb, member, image)
        data = image.read_bytes()
        vmlinux = kernels.extract_vmlinux(data)
        new = kernels.KernelPin(
            release=line, suite=suite_name, package=package, version=version, image=member,
            deb_sha256=kernels.sha256_file(deb), vmlinuz_sha256=hashlib.sha256(data).hexdigest(),
            vmlinux_sha256=hashlib.sha256(vmlinux).hexdigest() if vmlinux else None,
            no_packet_test_run=old.no_packet_test_run if old else frozenset(),
        )
        home = kernels.cache_entry(new)
        if not home.exists():
            kernels.install(new, deb, home)  # the next boot of this pin needs no download
        return new


def _image_member(deb: Path) -> str:
    from ..compile.run import run_bytes

    tar = run_bytes("kernel pins", ["dpkg-deb", "--fsys-tarfile", deb]).data
    names = run_bytes("kernel pins", ["tar", "-t"], input=tar, decode=True).stdout.splitlines()
    found = [n for n in names if re.match(r"^\./boot/vmlinuz-|^\./usr/lib/modules/[^/]+/vmlinuz$", n)]
    if len(found) != 1:
        raise SystemExit(f"{deb.name}: expected one kernel image, found {found or 'none'}")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Update tatara-build's kernel pins from Debian's archive.")
    parser.add_argument("lines", nargs="*", help=f"kernel lines to update (default: all of {', '.join(kernels.LINE_SUITES)})")
    parser.add_argument("--check", action="store_true", help="only report pins with a newer build in their suite (exit 1 if any)")
    args = parser.parse_args(argv)
    unknown = [line for line in args.lines if line not in kernels.LINE_SUITES]
    if unknown:
        parser.error(f"unknown line(s) {', '.join(unknown)}; known: {', '.join(kernels.LINE_SUITES)}")
    pins = kernels.load_pins()
    changed = stale = 0
    for line in args.lines or list(kernels.LINE_SUITES):
        found = newest(line)
        if found is None:
            print(f"{line}: no image of this line in {', '.join(kernels.LINE_SUITES[line])}", file=sys.stderr)
            return 3
        suite_name, package, version = found
        old = pins.get(line)
        if old and (old.suite, old.package, old.version) == found:
            print(f"{line}: kept    {package}={version} ({suite_name})")
            continue
        stale += 1
        if args.check:
            print(f"{line}: stale   {old.package + '=' + old.version if old else '(none)'} -> {package}={version}")
            continue
        pins[line] = pin(line, suite_name, package, version, old)
        changed += 1
        print(f"{line}: {'updated' if old else 'new    '} {package}={version} ({suite_name})")
    if changed:
        kernels.write_pins(pins)
        print(f"wrote {kernels.PINS_FILE}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
