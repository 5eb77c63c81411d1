"""The vm stage: every object through the real verifier of its target
kernel, inside QEMU, with the declared packet tests (BPF_PROG_TEST_RUN).

    kernels     pinned Debian kernels: download, sha256, vmlinux extraction
    initramfs   reproducible cpio: busybox-static, bpftool + libs, /init
    guest       the /init script and its plan language
    qemu        the VM runner: hard timeout, KVM probe, TCG fallback
    runner      one boot for all objects and cases -> results.Verification
    cases       checked module + build manifest -> runner jobs
    results     result models and console / bpftool output parsing
    sourcemap   verifier failure -> generated line -> .tlisp span
"""
