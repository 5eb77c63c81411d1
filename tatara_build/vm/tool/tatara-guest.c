/* tatara-guest: the VM guest's own BPF tool (static, libbpf), at
 * /bin/tatara-guest in the initramfs. Built on the host by
 * tatara_build/vm/tool.py; every argument comes from the host's plan
 * (validated tokens), so errors here are bugs or kernel refusals, reported
 * as lines on stdout, never as crashes.
 *
 * Interface (stable: vm/results.py parses it; keep guest.py's header in step):
 *
 *   tatara-guest load OBJ PIN_DIR
 *     Load every program and map of OBJ through the verifier, asking the
 *     kernel for statistics only (log_level 4: "processed N insns ...",
 *     "verification time N usec", "stack depth N"), never the full log: a
 *     program near the 1M-insn limit would log gigabytes. On success, pins
 *     programs at PIN_DIR/p/NAME and maps at PIN_DIR/m/NAME (libbpf's
 *     bpf_object__pin_programs/pin_maps, the layout `bpftool prog loadall
 *     OBJ PIN_DIR/p pinmaps PIN_DIR/m` gives). When a program is rejected
 *     after at most FULL_LOG_MAX_INSNS processed instructions, the object is
 *     opened again and only that program is loaded once more, with the
 *     instruction log (level 1|4: each instruction with its source line,
 *     libbpf's own default on failure) in a buffer of at most
 *     LOG_FULL_BYTES; kernels before 6.4 keep the head of a log that does
 *     not fit, which misses the failing instruction, so then (and for a
 *     program over the complexity limit, or one rejected after more
 *     instructions: logging each one costs ~10x the verification) the
 *     statistics-only log is shown, which has the verifier's message.
 *     Output, one item per line:
 *       program SECTION NAME                   every entry program, in order
 *       prog 'NAME': -- BEGIN PROG LOAD LOG --  then the kernel's log text,
 *       -- END PROG LOAD LOG --                 for every program the kernel saw
 *       prog 'NAME': failed to load: ERRNO      the rejected program
 *       libbpf: ...                             libbpf's warnings and info
 *       error: ...                              why the object did not load/pin
 *     Exit 0: every program loaded and everything pinned; 1: not; 2: usage.
 *
 *   tatara-guest events MAP_PIN...
 *     Drain pinned BPF ring buffers (BPF_MAP_TYPE_RINGBUF) now: every record
 *     written so far, one line each. A perf-event array cannot be drained
 *     afterwards (records with no reader are dropped): use run-and-drain.
 *
 *   tatara-guest run-and-drain MAP_PIN... -- CMD [ARG...]
 *     Open a reader on every map (ring buffer; or perf-event array: one perf
 *     buffer per possible CPU, written into the map's slots, so this must
 *     happen before the programs run), run CMD (its output passes through
 *     unchanged, before any EVENT line), then drain every map.
 *
 *   Event lines (both commands), after everything else, maps in argument order:
 *       EVENT MAP_PIN HEX          one record: its bytes as lowercase hex ("-": empty)
 *       LOST MAP_PIN COUNT         perf buffers: records the kernel dropped
 *       error: MAP_PIN: ...        that map has no reader (not pinned, wrong type)
 *     A ring buffer record is exactly what the program submitted. A perf
 *     record is the raw sample, which the kernel pads so that 4 + its size is
 *     a multiple of 8: up to 7 trailing bytes of undefined content; compare
 *     only the event type's size.
 *     Exit: CMD's exit code if it failed; else 1 if any map had no reader;
 *     else 0. 2: usage.
 *
 *   tatara-guest attach PROG_PIN KIND TARGET -- CMD [ARG...]
 *     Attach the pinned program where its kind fires (kprobe: the kprobe
 *     PMU on function TARGET; tracepoint: the tracefs event TARGET,
 *     CATEGORY/NAME, tracefs mounted at /sys/kernel/tracing; lsm: its hook,
 *     fixed at load), run CMD, then detach (close the attachment). Prints
 *     `attached KIND TARGET` before CMD runs, or `error: attach ...` and
 *     exits 1 without running it. Exit: CMD's exit code. Every file it
 *     reads is read before the program is attached, so it sees only CMD.
 *
 *   tatara-guest act ACTION...
 *     Do the trigger actions in order, each one line of output:
 *       open PATH FLAGS     openat(AT_FDCWD, PATH, FLAGS, 0644) as a raw
 *                           syscall (FLAGS decimal), closed again:
 *                           `did open PATH FLAGS = FD` or `= -ERRNO`
 *       connect PORT        a TCP connect to 127.0.0.1:PORT (loopback is
 *                           brought up first): `did connect PORT = 0` or `= -ERRNO`
 *     It opens no file of its own (the actions come as arguments), so a
 *     program on openat sees exactly the `open` actions. Exit 0; 2: usage.
 *
 *   tatara-guest load-many LIST OBJ_DIR PIN_ROOT
 *     `load OBJ_DIR/FILE PIN_ROOT/IDX` for each `IDX FILE` line of LIST, each
 *     in a child process, framed as the guest's steps: `@@BEGIN load IDX
 *     FILE`, the loader's output, `@@END RC T0 T1` (uptimes). Exit 0.
 *
 *   tatara-guest fw-cfg-wait NAME OUT MARKER
 *     Print the line MARKER, wait until QEMU's fw_cfg lists the file NAME,
 *     then write its bytes to OUT. A guest restored from a snapshot
 *     (vm/snapshot.py) gets its job this way: the host saves the VM when it
 *     sees MARKER, and the restoring QEMU has `-fw_cfg name=NAME,file=…`.
 *     Read through the x86 I/O ports (ioperm): the Debian kernels have no fw_cfg driver built in. Exit 0:
 *     written; 1: no port access or OUT not writable. Never returns while
 *     NAME is missing (the host's timeout ends the VM).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define LOG_STATS_BYTES (1u << 20)  /* level 4: a few hundred bytes; room for warnings */
#define LOG_FULL_BYTES (16u << 20)  /* the rejection log, at most */
#define FULL_LOG_MAX_INSNS 20000    /* reload for the log only below this; under TCG ~15 s */
#define PERF_PAGES 64               /* per CPU: 256 KiB */
#define MAX_MAPS 64

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stdout, fmt, args);  /* libbpf's messages start with "libbpf: " */
}

static int usage(void)
{
	fputs("usage: tatara-guest load OBJ PIN_DIR\n"
	      "       tatara-guest events MAP_PIN...\n"
	      "       tatara-guest run-and-drain MAP_PIN... -- CMD [ARG...]\n"
	      "       tatara-guest attach PROG_PIN KIND TARGET -- CMD [ARG...]\n"
	      "       tatara-guest act ACTION...\n"
	      "       tatara-guest load-many LIST OBJ_DIR PIN_ROOT\n"
	      "       tatara-guest fw-cfg-wait NAME OUT MARKER\n", stderr);
	return 2;
}

/* --- load ---------------------------------------------------------------- */

static int is_entry(const struct bpf_program *prog)
{
	return strcmp(bpf_program__section_name(prog), ".text") != 0;
}

static void print_log(const char *name, const char *log)
{
	size_t n = strlen(log);
	printf("prog '%s': -- BEGIN PROG LOAD LOG --\n%s%s-- END PROG LOAD LOG --\n", name, log,
	       n && log[n - 1] != '\n' ? "\n" : "");
}

static struct bpf_object *open_object(const char *path)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	if (!obj)
		printf("error: cannot open %s: %s\n", path, strerror(errno));
	return obj;
}

/* The number after "processed " in a statistics log; -1 without one. */
static long processed(const char *log)
{
	const char *at = strstr(log, "processed ");
	return at ? strtol(at + 10, NULL, 10) : -1;
}

static void print_note(const char *name, const char *note, const char *stats)
{
	char *both = malloc(strlen(note) + strlen(stats) + 2);
	if (both)
		sprintf(both, "%s\n%s", note, stats);
	print_log(name, both ? both : stats);
	free(both);
}

/* Load `failed` alone again with the instruction log and print it, or the
 * statistics-only `stats` log with a note when that log would cost too much
 * or come back without its end. Returns 1 when the kernel rejected it
 * again, 0 when it loaded alone (the object failed for another reason). */
static int reload_with_full_log(const char *path, const char *failed, const char *stats)
{
	long insns = processed(stats);
	char note[512];
	if (strstr(stats, "BPF program is too large")) {
		print_log(failed, stats);  /* the complexity limit: no one instruction is at fault */
		return 1;
	}
	if (insns > FULL_LOG_MAX_INSNS) {
		snprintf(note, sizeof note,
			 "(the instruction log is left out: the verifier processed %ld instructions, and logging "
			 "each costs about ten times verifying it; the statistics-only log follows)", insns);
		print_note(failed, note, stats);
		return 1;
	}
	struct bpf_object *obj = open_object(path);
	struct bpf_program *prog;
	char *log = calloc(1, LOG_FULL_BYTES);
	if (!obj || !log) {
		print_log(failed, stats);
		free(log);
		bpf_object__close(obj);
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		if (!is_entry(prog))
			continue;
		if (strcmp(bpf_program__name(prog), failed) == 0) {
			bpf_program__set_log_level(prog, 1 | 4);
			bpf_program__set_log_buf(prog, log, LOG_FULL_BYTES);
		} else {
			bpf_program__set_autoload(prog, false);
		}
	}
	libbpf_set_print(NULL);  /* the first attempt already printed libbpf's words */
	int err = bpf_object__load(obj);
	libbpf_set_print(print_libbpf);
	/* A full buffer that does not end in the statistics is a head-only log. */
	int head_only = strlen(log) >= LOG_FULL_BYTES - 1 && !strstr(log + LOG_FULL_BYTES / 2, "processed ");
	if (err && log[0] && !head_only) {
		print_log(failed, log);
	} else if (err && head_only) {
		snprintf(note, sizeof note,
			 "(the instruction log is over %u MB and this kernel keeps only its head: left out; "
			 "the statistics-only log follows)", LOG_FULL_BYTES >> 20);
		print_note(failed, note, stats);
	} else {
		print_log(failed, stats);
	}
	free(log);
	bpf_object__close(obj);
	return err != 0;
}

static int cmd_load(const char *path, const char *dir)
{
	char progs[4096], maps[4096];
	if (snprintf(progs, sizeof progs, "%s/p", dir) >= (int)sizeof progs ||
	    snprintf(maps, sizeof maps, "%s/m", dir) >= (int)sizeof maps)
		return usage();
	struct bpf_object *obj = open_object(path);
	if (!obj)
		return 1;
	struct bpf_program *prog;
	int n = 0;
	bpf_object__for_each_program(prog, obj) {
		if (is_entry(prog))
			n++;
	}
	char **logs = calloc(n ? n : 1, sizeof *logs);
	int i = 0;
	bpf_object__for_each_program(prog, obj) {
		if (!is_entry(prog))
			continue;
		printf("program %s %s\n", bpf_program__section_name(prog), bpf_program__name(prog));
		logs[i] = calloc(1, LOG_STATS_BYTES);
		if (!logs[i]) {
			puts("error: out of memory");
			return 1;
		}
		bpf_program__set_log_level(prog, 4);
		bpf_program__set_log_buf(prog, logs[i], LOG_STATS_BYTES);
		i++;
	}
	fflush(stdout);
	int err = bpf_object__load(obj);
	fflush(stdout);
	/* libbpf loads programs in order, stops at the first rejection and then
	 * closes every fd: the rejected program is the last one the kernel
	 * wrote a log for. */
	int last = -1;
	for (i = 0; err && i < n; i++)
		if (logs[i][0])
			last = i;
	i = 0;
	bpf_object__for_each_program(prog, obj) {
		if (!is_entry(prog))
			continue;
		const char *name = bpf_program__name(prog);
		if (i == last && reload_with_full_log(path, name, logs[i]))
			printf("prog '%s': failed to load: %d\n", name, err);
		else if (i != last && logs[i][0])
			print_log(name, logs[i]);
		i++;
	}
	int rc = 0;
	if (err) {
		printf("error: loading %s failed: %s\n", path, strerror(-err));
		rc = 1;
	} else if ((mkdir(dir, 0700) && errno != EEXIST) ||
		   (err = bpf_object__pin_programs(obj, progs)) || (err = bpf_object__pin_maps(obj, maps))) {
		printf("error: pinning under %s failed: %s\n", dir, strerror(err ? -err : errno));
		rc = 1;
	}
	for (int k = 0; k < n; k++)
		free(logs[k]);
	free(logs);
	bpf_object__close(obj);
	return rc;
}

/* --- events -------------------------------------------------------------- */

struct reader {
	const char *name;         /* the pin path as given: the EVENT line's map */
	struct ring_buffer *ring; /* one of these two */
	struct perf_buffer *perf;
	int fd;                   /* kept open: a perf array's slots live as long as it */
	unsigned long long lost;
	char *records;            /* "EVENT ..." lines, printed after CMD's output */
	size_t size;
	FILE *out;
};

static void record(struct reader *r, const void *data, size_t size)
{
	const unsigned char *bytes = data;
	fprintf(r->out, "EVENT %s ", r->name);
	if (!size)
		fputc('-', r->out);
	for (size_t k = 0; k < size; k++)
		fprintf(r->out, "%02x", bytes[k]);
	fputc('\n', r->out);
}

static int on_ring(void *ctx, void *data, size_t size)
{
	record(ctx, data, size);
	return 0;
}

static void on_perf(void *ctx, int cpu, void *data, __u32 size)
{
	(void)cpu;
	record(ctx, data, size);
}

static void on_lost(void *ctx, int cpu, __u64 count)
{
	(void)cpu;
	((struct reader *)ctx)->lost += count;
}

/* A reader on the pinned map, or an `error:` line (returns -1). */
static int open_reader(struct reader *r, int perf_allowed)
{
	struct bpf_map_info info = {0};
	__u32 len = sizeof info;
	int fd = bpf_obj_get(r->name);
	if (fd < 0) {
		printf("error: %s: cannot open the pinned map: %s\n", r->name, strerror(errno));
		return -1;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		printf("error: %s: not a map: %s\n", r->name, strerror(errno));
		close(fd);
		return -1;
	}
	r->out = open_memstream(&r->records, &r->size);
	if (!r->out) {
		printf("error: %s: out of memory\n", r->name);
		close(fd);
		return -1;
	}
	if (info.type == BPF_MAP_TYPE_RINGBUF) {
		r->ring = ring_buffer__new(fd, on_ring, r, NULL);
	} else if (info.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY && perf_allowed) {
		r->perf = perf_buffer__new(fd, PERF_PAGES, on_perf, on_lost, r, NULL);
	} else {
		printf("error: %s: map type %u is not a ring buffer%s\n", r->name, info.type,
		       info.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY
			       ? " (a perf-event array needs its reader before the program runs: use run-and-drain)"
			       : perf_allowed ? " or a perf-event array" : "");
		close(fd);
		return -1;
	}
	if (!r->ring && !r->perf) {
		printf("error: %s: cannot open a reader: %s\n", r->name, strerror(errno));
		close(fd);
		return -1;
	}
	/* The kernel clears the perf slots this fd's file wrote when it is
	 * closed: keep it open until the records are drained. */
	r->fd = fd;
	return 0;
}

static void drain(struct reader *r)
{
	if (r->ring)
		ring_buffer__consume(r->ring);
	if (r->perf)
		perf_buffer__consume(r->perf);
	fclose(r->out);
	r->out = NULL;
	fwrite(r->records, 1, r->size, stdout);
	if (r->perf)
		printf("LOST %s %llu\n", r->name, r->lost);
	ring_buffer__free(r->ring);
	perf_buffer__free(r->perf);
	close(r->fd);
	free(r->records);
}

static int run(char **argv)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		printf("error: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		execvp(argv[0], argv);
		printf("error: cannot run %s: %s\n", argv[0], strerror(errno));
		fflush(stdout);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int cmd_events(int argc, char **argv, int with_command)
{
	struct reader readers[MAX_MAPS] = {0};
	int n = 0, bad = 0;
	char **command = NULL;
	for (int k = 0; k < argc; k++) {
		if (with_command && strcmp(argv[k], "--") == 0) {
			command = argv + k + 1;
			break;
		}
		if (n == MAX_MAPS)
			return usage();
		readers[n++].name = argv[k];
	}
	if (!n || (with_command && (!command || !command[0])))
		return usage();
	int ok[MAX_MAPS];
	for (int k = 0; k < n; k++) {
		ok[k] = open_reader(&readers[k], with_command) == 0;
		bad |= !ok[k];
	}
	int rc = with_command ? run(command) : 0;
	fflush(stdout);
	for (int k = 0; k < n; k++)
		if (ok[k])
			drain(&readers[k]);
	return rc ? rc : bad;
}

/* --- attach and act ------------------------------------------------------ */

/* The first number in a small sysfs/tracefs file, or -1. */
static long read_number(const char *path)
{
	char text[64] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	return n > 0 ? strtol(text, NULL, 10) : -1;
}

static int perf_open(struct perf_event_attr *attr)
{
	/* every task on CPU 0: a probe's BPF program runs on every CPU anyway */
	return syscall(SYS_perf_event_open, attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
}

/* A perf event for a kprobe or tracepoint TARGET, or -1 with errno set. */
static int probe_event(const char *kind, const char *target)
{
	struct perf_event_attr attr = {.size = sizeof attr};
	char path[512];
	long type;
	if (strcmp(kind, "kprobe") == 0) {
		type = read_number("/sys/bus/event_source/devices/kprobe/type");
		attr.config1 = (unsigned long)target; /* the function's name */
	} else {
		snprintf(path, sizeof path, "/sys/kernel/tracing/events/%s/id", target);
		attr.config = read_number(path);
		type = (long)attr.config < 0 ? -1 : PERF_TYPE_TRACEPOINT;
	}
	if (type < 0) {
		errno = ENOENT;
		return -1;
	}
	attr.type = type;
	return perf_open(&attr);
}

static int cmd_attach(const char *pin, const char *kind, const char *target, char **command)
{
	int prog = bpf_obj_get(pin), link = -1;
	if (prog < 0) {
		printf("error: attach: cannot open the pinned program %s: %s\n", pin, strerror(errno));
		return 1;
	}
	if (strcmp(kind, "lsm") == 0) {
		link = bpf_raw_tracepoint_open(NULL, prog);
	} else if (strcmp(kind, "kprobe") == 0 || strcmp(kind, "tracepoint") == 0) {
		link = probe_event(kind, target);
		if (link >= 0 && (ioctl(link, PERF_EVENT_IOC_SET_BPF, prog) || ioctl(link, PERF_EVENT_IOC_ENABLE, 0))) {
			int err = errno;
			close(link);
			link = -1;
			errno = err;
		}
	} else {
		errno = EOPNOTSUPP;
	}
	if (link < 0) {
		printf("error: attach %s %s: %s\n", kind, target, strerror(errno));
		close(prog);
		return 1;
	}
	printf("attached %s %s\n", kind, target);
	int rc = run(command);
	close(link);
	close(prog);
	return rc;
}

static void loopback_up(void)
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	strcpy(ifr.ifr_name, "lo");
	if (fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	if (fd >= 0)
		close(fd);
}

static long act_connect(int port)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	loopback_up();
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	long rc = connect(fd, (struct sockaddr *)&to, sizeof to) ? -errno : 0;
	close(fd);
	return rc;
}

static int cmd_act(int argc, char **argv)
{
	for (int k = 0; k < argc;) {
		if (strcmp(argv[k], "open") == 0 && k + 2 < argc) {
			long fd = syscall(SYS_openat, AT_FDCWD, argv[k + 1], (int)strtol(argv[k + 2], NULL, 10), 0644);
			fd = fd < 0 ? -errno : fd;
			printf("did open %s %s = %ld\n", argv[k + 1], argv[k + 2], fd);
			if (fd >= 0)
				close(fd);
			k += 3;
		} else if (strcmp(argv[k], "connect") == 0 && k + 1 < argc) {
			printf("did connect %s = %ld\n", argv[k + 1], act_connect((int)strtol(argv[k + 1], NULL, 10)));
			k += 2;
		} else {
			return usage();
		}
	}
	return 0;
}

/* --- load-many ------------------------------------------------------------ */

static void uptime(char *out, size_t size)
{
	FILE *f = fopen("/proc/uptime", "r");
	if (!f || fscanf(f, "%31s", out) != 1)
		snprintf(out, size, "0");
	if (f)
		fclose(f);
}

/* Each object in a child of its own (a loader that crashes on one object
 * leaves the others loaded), framed as the shell's steps are: the guest
 * spends no shell, awk or cut process per object. */
static int cmd_load_many(const char *list, const char *objects, const char *pins)
{
	char idx[32], file[256], path[512], dir[512], t0[32], t1[32];
	FILE *f = fopen(list, "r");
	if (!f) {
		printf("error: %s: %s\n", list, strerror(errno));
		return 1;
	}
	while (fscanf(f, "%31s %255s", idx, file) == 2) {
		snprintf(path, sizeof path, "%s/%s", objects, file);
		snprintf(dir, sizeof dir, "%s/%s", pins, idx);
		uptime(t0, sizeof t0);
		printf("@@BEGIN load %s %s\n", idx, file);
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			int rc = cmd_load(path, dir);
			fflush(stdout);
			_exit(rc);
		}
		int status = 0, rc = 1;
		while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (pid > 0)
			rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		uptime(t1, sizeof t1);
		printf("\n@@END %d %s %s\n", rc, t0, t1);
	}
	fclose(f);
	return 0;
}

/* --- fw-cfg-wait ---------------------------------------------------------- */

#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_FILE_DIR 0x19
#define FW_CFG_POLL_NS 2000000  /* 2 ms: the first poll after a restore finds the file */

struct fw_cfg_file {  /* QEMU's FWCfgFile: big-endian */
	uint32_t size;
	uint16_t select;
	uint16_t reserved;
	char name[56];
};

/* glibc's insb() does not tell the compiler that it writes memory */
static void fw_cfg_read(void *buf, unsigned long n)
{
	__asm__ __volatile__("cld; rep insb" : "+D"(buf), "+c"(n) : "d"((uint16_t)FW_CFG_PORT_DATA) : "memory");
}

static uint32_t fw_cfg_files(void)
{
	uint32_t count;
	outw(FW_CFG_FILE_DIR, FW_CFG_PORT_SEL);
	fw_cfg_read(&count, sizeof(count));
	return be32toh(count);
}

static int fw_cfg_find(const char *name, struct fw_cfg_file *found)
{
	for (uint32_t k = 0, n = fw_cfg_files(); k < n; k++) {
		fw_cfg_read(found, sizeof(*found));
		if (strncmp(found->name, name, sizeof(found->name)) == 0)
			return 1;
	}
	return 0;
}

/* The snapshot may be taken at any instruction after MARKER is printed,
 * even inside a read of the file directory, whose bytes then come from two
 * QEMUs. So only the count is polled (any mix of its bytes either equals
 * the count read before MARKER or not); once it differs, this guest has been
 * restored, and the directory is read afresh from its start. */
static int cmd_fw_cfg_wait(const char *name, const char *out, const char *marker)
{
	static char buf[1 << 16];
	struct fw_cfg_file file;
	const struct timespec poll = {0, FW_CFG_POLL_NS};
	if (ioperm(FW_CFG_PORT_SEL, 2, 1) != 0) {
		printf("error: ioperm: %s\n", strerror(errno));
		return 1;
	}
	uint32_t saved = fw_cfg_files();
	printf("%s\n", marker);
	fflush(stdout);
	while (fw_cfg_files() == saved || !fw_cfg_find(name, &file))
		nanosleep(&poll, NULL);
	FILE *f = fopen(out, "wb");
	if (!f) {
		printf("error: %s: %s\n", out, strerror(errno));
		return 1;
	}
	outw(be16toh(file.select), FW_CFG_PORT_SEL);
	for (uint32_t left = be32toh(file.size); left;) {
		uint32_t n = left < sizeof(buf) ? left : sizeof(buf);
		fw_cfg_read(buf, n);
		fwrite(buf, 1, n, f);
		left -= n;
	}
	if (fclose(f) != 0) {
		printf("error: %s: %s\n", out, strerror(errno));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(print_libbpf);
	if (argc == 4 && strcmp(argv[1], "load") == 0)
		return cmd_load(argv[2], argv[3]);
	if (argc >= 3 && strcmp(argv[1], "events") == 0)
		return cmd_events(argc - 2, argv + 2, 0);
	if (argc >= 5 && strcmp(argv[1], "run-and-drain") == 0)
		return cmd_events(argc - 2, argv + 2, 1);
	if (argc >= 7 && strcmp(argv[1], "attach") == 0 && strcmp(argv[5], "--") == 0)
		return cmd_attach(argv[2], argv[3], argv[4], argv + 6);
	if (argc >= 2 && strcmp(argv[1], "act") == 0)
		return cmd_act(argc - 2, argv + 2);
	if (argc == 5 && strcmp(argv[1], "load-many") == 0)
		return cmd_load_many(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "fw-cfg-wait") == 0)
		return cmd_fw_cfg_wait(argv[2], argv[3], argv[4]);
	return usage();
}
