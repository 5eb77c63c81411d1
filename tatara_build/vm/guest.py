"""The guest side: /init, a busybox shell script that mounts proc, sysfs and
bpffs, follows /job/plan (written by the host, validated tokens only) and
prints every step's output between `@@BEGIN <step…>` and `@@END <rc>` lines on
the serial console, then powers off.

Besides busybox and bpftool the guest has our own static libbpf tool,
/bin/tatara-guest (source: vm/tool/tatara-guest.c, whose header is the full
interface; built by vm/tool.py):
    tatara-guest load OBJ PIN_DIR          load with statistics-only verifier
        logs, pin at PIN_DIR/p/PROG and PIN_DIR/m/MAP; the full log only for
        a rejected program (bounded)
    tatara-guest events MAP_PIN…           drain pinned ring buffers now
    tatara-guest run-and-drain MAP_PIN… -- CMD…
                                           readers on ring buffers and
        perf-event arrays first (a perf array drops records nobody reads),
        run CMD, then print `EVENT MAP_PIN HEX` per record (`-` when empty),
        `LOST MAP_PIN N` per perf array, `error: MAP_PIN: why` per unreadable map.
    tatara-guest attach PROG_PIN KIND TARGET -- CMD…
                                           attach a pinned kprobe, tracepoint
        or lsm program, run CMD, detach
    tatara-guest act ACTION…                `open PATH FLAGS`, `connect PORT`:
        the syscalls a `:trigger` test names, one `did …` line each
    tatara-guest fw-cfg-wait NAME OUT MARKER
                                           print MARKER, wait until QEMU's
        fw_cfg lists NAME (a restored snapshot: vm/snapshot.py), write it to OUT."""

from __future__ import annotations

import re

# Plan lines (one step each; every token matches SAFE_TOKEN):
#   loads                           `tatara-guest load-many /job/loads /job
#                                   /sys/fs/bpf`: for
#                                   each `IDX FILE` line, a `load IDX FILE`
#                                   step (tatara-guest load /job/FILE
#                                   /sys/fs/bpf/IDX in a child process:
#                                   statistics-only verifier logs, a full log
#                                   only for a rejected program, pins at
#                                   IDX/p/PROG and IDX/m/MAP)
#   pins                            every pinned program, /sys/fs/bpf/IDX/p/NAME
#   runs                            all runs of /job/runs in one bpftool batch
#                                   (bpftool starts slowly under TCG); when
#                                   /job/events names pinned ring buffers or
#                                   perf-event arrays (one path a line), the
#                                   batch runs under `tatara-guest run-and-drain
#                                   PINS -- …`, which opens a reader on each
#                                   first and prints their records after the
#                                   batch's output: `EVENT PIN HEX`, `LOST PIN N`
#                                   (perf), `error: PIN: why` (results.events)
#   runs-events K FIRST             the batch /job/runsK (cases FIRST…) run by
#                                   `tatara-guest run-and-drain` with readers on
#                                   the event maps listed in /job/eventsK (pin
#                                   paths; empty: a plain batch), which prints
#                                   their records after the batch (EVENT lines)
#   run IDX PROG PKT REPEAT N [out] BPF_PROG_TEST_RUN with /job/PKT, unless the
#                                   batch already ran case N (it stops at the
#                                   first failing command: later ones run here);
#                                   `out`: keep the packet it leaves, /tmp/oN.bin
#   trigger K                       a `:trigger` test: /job/attachK holds `PIN
#                                   KIND TARGET`, /job/triggerK the action words
#                                   (`open PATH FLAGS`, `connect PORT`; read
#                                   before anything is attached), /job/teventsK
#                                   the event map pins: `tatara-guest
#                                   run-and-drain PINS -- tatara-guest attach PIN
#                                   KIND TARGET -- tatara-guest act WORDS…` (no
#                                   pins: no run-and-drain) prints `attached …`,
#                                   a `did ACTION = RESULT` line per action, then
#                                   the EVENT lines
#   outs                            `out N HEX` for every /tmp/oN.bin (what
#                                   `:expect-packet` cases compare)
#   targets                         for each `KIND TARGET PREFIX` line of
#                                   /job/targets: `found`, or `missing` and the
#                                   kernel's names starting with PREFIX (`near`),
#                                   or `unknown` when the kernel lists none
#   seeds                           `map update` of each `IDX MAP KEYHEX VALUEHEX`
#                                   line of /job/seeds (`IDX MAP KEYHEX @PROG`: a
#                                   prog-array slot gets program PROG of object
#                                   IDX), in one bpftool batch
#   inspect                         one JSON bpftool batch: `prog show` of every
#                                   pinned program, `map dump` of each map in
#                                   /job/dumps (`IDX MAP` lines: the maps tests
#                                   expect; ring buffers cannot be dumped)
#   show IDX / dump IDX MAP         the same one by one, only if inspect failed
SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
READY = "@@TATARA-READY"
DONE = "@@TATARA-DONE"
SNAPSHOT = "@@TATARA-SNAPSHOT"  # the guest waits for its job: save it now
JOB_FW_CFG = "opt/tatara/job"  # the fw_cfg file a restored guest reads its payload (newc) from

# Lines kept at the start and at the end of each verifier log (see shorten).
LOG_HEAD_LINES = 20
LOG_TAIL_LINES = 400

INIT_SCRIPT = r"""#!/bin/busybox sh
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
mount -t sysfs sys /sys
mount -t bpf bpf /sys/fs/bpf
# No plan in the initramfs: this boot is saved as a snapshot (vm/snapshot.py)
# while the tool waits; each restored copy gets its job through fw_cfg.
if [ ! -e /job/plan ]; then
  tatara-guest fw-cfg-wait __JOB__ /tmp/job.cpio __SNAPSHOT__ && (cd / && cpio -idu < /tmp/job.cpio 2>/dev/null) \
    || { echo "@@TATARA-NO-JOB"; reboot -f; }
fi
# Uptimes by the shell's own `read`: no process per step (each costs
# milliseconds under TCG).
read -r T0 _ < /proc/uptime
echo "@@TATARA-READY $T0"
step() { echo "@@BEGIN $*"; read -r T0 _ < /proc/uptime; }
done_() { read -r T1 _ < /proc/uptime; echo; echo "@@END $1 $T0 $T1"; }
# Verifier logs keep their first and last lines only: a rejected program's
# instruction log can be MBs (tatara-guest bounds it at 16 MB), which would
# take minutes on the serial console. The statistics and the failing
# instruction are at the end. Exit status: n of an "@@RC n" line, which ends
# the input (else 0); a step marker ends a log a crashed loader left open.
shorten() {
  awk -v head=__LOG_HEAD__ -v tail=__LOG_TAIL__ '
    /^@@RC [0-9]+$/ { rc = $2; exit }
    /-- BEGIN PROG LOAD LOG --$/ { print; inlog = 1; n = 0; next }
    inlog && (/^-- END PROG LOAD LOG --$/ || /^@@(BEGIN|END) /) {
      first = n - tail + 1; if (first <= head) first = head + 1
      if (first > head + 1) print "... " first - head - 1 " lines of the verifier log left out ..."
      for (k = first; k <= n; k++) print ring[k % tail]
      print; inlog = 0; next }
    inlog { n++; if (n <= head) print; else ring[n % tail] = $0; next }
    { print }
    END {
      if (inlog) for (k = (n - tail + 1 > head ? n - tail + 1 : head + 1); k <= n; k++) print ring[k % tail]
      exit rc }'
}
# Every attach target of KIND the booted kernel has, one a line: kprobes
# attach to text symbols, tracepoints are tracefs event directories, LSM
# programs attach to the kernel's bpf_lsm_<hook> functions.
names() {
  case "$1" in
  kprobe) awk '$2 == "t" || $2 == "T" {print $3}' /proc/kallsyms ;;
  tracepoint)
    for ev in /sys/kernel/tracing/events/*/*/; do ev=${ev%/}; [ -d "$ev" ] && echo "${ev#/sys/kernel/tracing/events/}"; done ;;
  lsm) awk 'index($3, "bpf_lsm_") == 1 {print substr($3, 9)}' /proc/kallsyms ;;
  esac
}
while read -r op a b c d e f; do
  case "$op" in
  loads)
    tatara-guest load-many /job/loads /job /sys/fs/bpf 2>&1 | shorten ;;
  pins)
    step pins
    for p in /sys/fs/bpf/*/p/*; do [ -e "$p" ] && echo "$p"; done
    done_ 0 ;;
  targets)
    mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
    step targets
    while read -r kind t p; do
      [ -e /tmp/names-$kind ] || names $kind | sort -u > /tmp/names-$kind
      if [ ! -s /tmp/names-$kind ]; then echo "unknown $kind $t"
      elif awk -v t="$t" '$0 == t {f = 1} END {exit !f}' /tmp/names-$kind; then echo "found $kind $t"
      else
        echo "missing $kind $t"
        awk -v k="$kind" -v t="$t" -v p="$p" 'index($0, p) == 1 {print "near " k " " t " " $0}' /tmp/names-$kind | head -500
      fi
    done < /job/targets
    done_ 0 ;;
  seeds)
    : > /tmp/seeds
    while read -r i m key value; do
      case "$value" in
      @*) v="pinned /sys/fs/bpf/$i/p/${value#@}" ;;
      *) v="hex $(echo "$value" | sed 's/../& /g')" ;;
      esac
      echo "map update pinned /sys/fs/bpf/$i/m/$m key hex $(echo "$key" | sed 's/../& /g') value $v" >> /tmp/seeds
    done < /job/seeds
    step seeds
    bpftool batch file /tmp/seeds 2>&1
    done_ $? ;;
  inspect)
    : > /tmp/inspect
    for p in /sys/fs/bpf/*/p/*; do [ -e "$p" ] && echo "prog show pinned $p" >> /tmp/inspect; done
    while read -r i m; do
      [ -e "/sys/fs/bpf/$i/m/$m" ] && echo "map dump pinned /sys/fs/bpf/$i/m/$m" >> /tmp/inspect
    done < /job/dumps
    step inspect
    bpftool -j batch file /tmp/inspect 2>&1
    rc=$?
    done_ $rc
    [ $rc -eq 0 ] && INSPECTED=1 ;;
  show)
    [ -n "$INSPECTED" ] && continue
    for p in /sys/fs/bpf/$a/p/*; do
      [ -e "$p" ] || continue
      step show $a ${p##*/}
      bpftool -j prog show pinned "$p" 2>&1
      done_ $?
    done ;;
  runs)
    step runs
    if [ -s /job/events ]; then
      tatara-guest run-and-drain $(cat /job/events) -- bpftool batch file /job/runs > /tmp/runs 2>&1
    else
      bpftool batch file /job/runs > /tmp/runs 2>&1
    fi
    rc=$?
    cat /tmp/runs
    BATCHED=$(grep -c "^Return value" /tmp/runs)
    done_ $rc ;;
  runs-events)
    step runs-events $a $b
    if [ -s /job/events$a ]; then
      tatara-guest run-and-drain $(cat /job/events$a) -- bpftool batch file /job/runs$a > /tmp/runs 2>&1
    else
      bpftool batch file /job/runs$a > /tmp/runs 2>&1
    fi
    rc=$?
    cat /tmp/runs
    BATCHED=$((b + $(grep -c "^Return value" /tmp/runs)))
    done_ $rc ;;
  trigger)
    mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
    step trigger $a
    read -r pin kind target < /job/attach$a
    if [ -s /job/tevents$a ]; then
      tatara-guest run-and-drain $(cat /job/tevents$a) -- \
        tatara-guest attach $pin $kind $target -- tatara-guest act $(cat /job/trigger$a) 2>&1
    else
      tatara-guest attach $pin $kind $target -- tatara-guest act $(cat /job/trigger$a) 2>&1
    fi
    done_ $? ;;
  run)
    [ -n "$BATCHED" ] && [ "$e" -lt "$BATCHED" ] && continue
    step run $a $b $c $d $e
    if [ "$f" = out ]; then
      bpftool prog run pinned /sys/fs/bpf/$a/p/$b data_in /job/$c data_out /tmp/o$e.bin repeat $d 2>&1
    else
      bpftool prog run pinned /sys/fs/bpf/$a/p/$b data_in /job/$c repeat $d 2>&1
    fi
    done_ $? ;;
  outs)
    step outs
    for o in /tmp/o*.bin; do
      [ -e "$o" ] || continue
      n=${o#/tmp/o}; echo "out ${n%.bin} $(xxd -p "$o" | tr -d '\n')"
    done
    done_ 0 ;;
  dump)
    [ -n "$INSPECTED" ] && continue
    [ -e "/sys/fs/bpf/$a/m/$b" ] || continue
    step dump $a $b
    bpftool -j map dump pinned "/sys/fs/bpf/$a/m/$b" 2>&1
    done_ $? ;;
  esac
done < /job/plan
read -r T1 _ < /proc/uptime
echo "@@TATARA-DONE $T1"
# A reset ends QEMU (-no-reboot), whatever the machine's power-off needs.
reboot -f
""".replace("__SNAPSHOT__", SNAPSHOT).replace("__JOB__", JOB_FW_CFG).replace("__LOG_HEAD__", str(LOG_HEAD_LINES)).replace("__LOG_TAIL__", str(LOG_TAIL_LINES))
