# The `tatara-build` CLI from pyproject.toml, with nixpkgs' Python packages.
# Only the package sources enter the store, so editing tests or Nix files
# does not rebuild the CLI (or every object built with it).
{ pkgs, src }:
let
  py = pkgs.python3Packages;
  project = (builtins.fromTOML (builtins.readFile (src + "/pyproject.toml"))).project;
  root = toString src;
  # Keep pyproject.toml, README.md (pyproject's `readme`) and tatara_build/.
  packageFiles = path: type:
    let rel = pkgs.lib.removePrefix (root + "/") (toString path);
    in builtins.elem rel [ "pyproject.toml" "README.md" "tatara_build" ]
      || pkgs.lib.hasPrefix "tatara_build/" rel;
in
py.buildPythonApplication {
  pname = project.name;
  inherit (project) version;
  pyproject = true;
  src = builtins.path { path = src; name = "tatara-build-src"; filter = packageFiles; };

  build-system = [ py.setuptools ];
  dependencies = with py; [ typer pydantic sh rich ];

  # bpftool loads objects for `verify`/`test`; the compilers come from the
  # derivation or shell that runs a build (see object.nix, the devShell).
  makeWrapperArgs = [ "--prefix" "PATH" ":" (pkgs.lib.makeBinPath [ pkgs.bpftools ]) ];

  # The test suite drives compilers and QEMU; it runs in CI and in the
  # flake's checks, not inside this sandboxed build.
  doCheck = false;
  pythonImportsCheck = [ "tatara_build" ];

  meta = {
    description = project.description;
    mainProgram = "tatara-build";
    license = pkgs.lib.licenses.mit;
    platforms = pkgs.lib.platforms.linux;
  };
}
