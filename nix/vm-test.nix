# checks.<system>.vm-verifier: a NixOS VM booted on the pinned kernel loads
# every example object (the same derivations as packages.<example>) and runs
# the packet tests declared in its .tlisp (nix/vm_check.py: the jobs and the
# parsing of bpftool's output are tatara_build's own vm.cases / vm.results).
{ pkgs, tatara-build, pins, objects }:
let
  # stem -> { out = <the object derivation: <stem>.o, manifest.json, src/>;
  #          source = <stem>.tlisp; }
  examples = builtins.mapAttrs (stem: o: {
    out = "${o.object}";
    source = "${o.source}";
  }) objects;
in
pkgs.testers.runNixOSTest {
  name = "tatara-vm-verifier";
  globalTimeout = 10 * 60;

  nodes.machine = { ... }: {
    boot.kernelPackages = pkgs.linuxKernel.packages.${pins.kernel};
    environment.systemPackages = [ pkgs.bpftools ];
    virtualisation.memorySize = 1024;
  };

  # The test driver imports tatara_build (frontend, tables, packets).
  extraPythonPackages = p: [ (p.toPythonModule tatara-build) ];
  # mypy would need stubs for tatara_build's dependencies; pyflakes still runs.
  skipTypeCheck = true;

  testScript = builtins.readFile ./vm_check.py + ''

    import json

    machine.wait_for_unit("multi-user.target")
    machine.succeed("mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf")
    print(machine.succeed("uname -r"))
    result = check_examples(machine, json.loads(${builtins.toJSON (builtins.toJSON examples)}))
    print(f"vm-verifier: {result.passed} checks passed, {len(result.failures)} failed")
    assert not result.failures, "\n".join(result.failures)
  '';
}
