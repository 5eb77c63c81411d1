"""CO-RE for real: one C object whose kernel reads sit at different offsets
on every pinned kernel loads on each (one boot per kernel). libbpf resolves
each relocation against the booted kernel's BTF; one it cannot resolve
poisons the instruction and the verifier refuses the program, so
`accepted` means every read found its field there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tatara_build import backends, kernelbtf
from tatara_build.errors import SourceError
from tatara_build.vm import kernels, runner

pytestmark = pytest.mark.vm

FIXTURE = Path(__file__).parent / "fixtures" / "core-relocations.tlisp"

if not shutil.which("qemu-system-x86_64") or not shutil.which("clang"):
    pytest.skip("qemu-system-x86 and clang are needed for VM tests", allow_module_level=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from tatara_build import pipeline
    from tatara_build.compile import BuildOptions
    from tatara_build.vm import cases

    module = pipeline.load_checked(FIXTURE)
    out = tmp_path_factory.mktemp("core") / "out"
    manifest = pipeline.build(FIXTURE, out, BuildOptions(backend="c", use_cache=False), module=module)
    assert manifest.kernel_layout is None  # relocated at load, valid on every kernel
    objects, _, _ = cases.jobs(module, out, manifest)
    return module, objects


def test_the_offsets_really_differ_between_the_pinned_kernels():
    offsets = {line: kernelbtf.resolve_path(kernelbtf.kernel_types(line), "sock", ["sk_protocol"])[0].offset
               for line in kernels.KERNELS}
    assert len(set(offsets.values())) >= 3, offsets


def test_the_aya_backend_refuses_what_it_cannot_relocate(built):
    module, _ = built
    with pytest.raises(SourceError, match="on kernel 5.10 but 516 on kernel 6.1"):
        backends.render(module, "aya")


@pytest.mark.parametrize("line", list(kernels.KERNELS))
def test_one_object_loads_on_every_pinned_kernel(built, line):
    try:
        kernel = kernels.resolve(line)
    except kernels.PinDropped as err:
        pytest.skip(str(err))
    _, objects = built
    v = runner.run(objects, kernel, timeout=600)
    (obj,) = v.objects
    assert obj.loaded, obj.loader_output
    assert {p.program for p in obj.programs} == {"sock_fields", "file_flags", "switches", "opens"}
    for p in obj.programs:
        assert p.verdict == "accepted" and p.verified_insns, (line, p.program, p.verifier_log)
