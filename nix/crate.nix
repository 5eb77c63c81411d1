# `tatara-build emit`: the generated sources of one .tlisp file (an aya crate
# or a libbpf C file), exactly what `tatara-build build` compiles. Exposed as
# `<object>.crate` for inspection and as the lock source of last resort.
{ pkgs, tatara-build }:
{ src, name, backend ? "aya" }:
pkgs.runCommand "${name}-${backend}-src" { nativeBuildInputs = [ tatara-build ]; } ''
  export HOME=$TMPDIR XDG_CACHE_HOME=$TMPDIR/cache
  cp ${src} ${name}.tlisp
  tatara-build emit ${name}.tlisp --backend ${backend} -o "$TMPDIR/emitted"
  cp -r "$TMPDIR/emitted" $out
''
