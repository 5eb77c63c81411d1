"""The kernel QEMU boots is checked on the bytes QEMU reads
(kernels.opened_image): a descriptor is opened and hashed, and QEMU gets
/proc/self/fd/N of that descriptor, so a file swapped into the cache after
the check cannot boot (issue 12)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from tatara_build.errors import ToolchainError
from tatara_build.vm import kernels


def _kernel(tmp_path, image: bytes, vmlinuz: bytes = b"the vmlinuz"):
    (tmp_path / "vmlinux").write_bytes(image)
    (tmp_path / "vmlinuz").write_bytes(vmlinuz)
    return kernels.Kernel(name="6.1", image=tmp_path / "vmlinux", sha256=hashlib.sha256(b"the vmlinuz").hexdigest(),
                          image_sha256=hashlib.sha256(b"the vmlinux").hexdigest(), fallback=tmp_path / "vmlinuz")


def test_a_file_swapped_in_after_the_check_is_not_what_the_child_reads(tmp_path):
    kernel = _kernel(tmp_path, b"the vmlinux")
    with kernels.opened_image(kernel) as (image, fd):
        fake = tmp_path / "fake"
        fake.write_bytes(b"a fake kernel")
        os.replace(fake, tmp_path / "vmlinux")  # the swap, after the check
        # what QEMU does: open the path it was given, in a child that inherited the fd
        read = subprocess.run([sys.executable, "-c", f"import sys; sys.stdout.buffer.write(open({str(image)!r}, 'rb').read())"],
                              capture_output=True, pass_fds=(fd,), check=True)
    assert read.stdout == b"the vmlinux"
    with pytest.raises(OSError):
        os.fstat(fd)  # closed after the boot


def test_a_damaged_vmlinux_is_removed_and_the_checked_vmlinuz_boots(tmp_path):
    kernel = _kernel(tmp_path, b"a flipped vmlinux")
    with kernels.opened_image(kernel) as (image, fd):
        assert os.pread(fd, 100, 0) == b"the vmlinuz"
    assert not (tmp_path / "vmlinux").exists()  # re-extracted next time


def test_an_image_that_matches_nothing_is_exit_3_and_never_booted(tmp_path):
    kernel = _kernel(tmp_path, b"bad", vmlinuz=b"also bad")
    with pytest.raises(ToolchainError, match="does not match its sha256"):
        with kernels.opened_image(kernel):
            raise AssertionError("booted")
    user = kernels.Kernel(name="mine", image=tmp_path / "vmlinuz", sha256="0" * 64)
    with pytest.raises(ToolchainError):
        with kernels.opened_image(user):
            raise AssertionError("booted")


def test_a_missing_image_is_exit_3(tmp_path):
    user = kernels.Kernel(name="mine", image=tmp_path / "gone", sha256="0" * 64)
    with pytest.raises(ToolchainError, match="cannot read kernel image"):
        with kernels.opened_image(user):
            pass
