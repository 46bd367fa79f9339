/* pyxray info: what pyxray sees of a Python process, and how. */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "pyxray/error.h"
#include "pyxray/target.h"
#include "pyxray/python.h"
#include "pyxray/stacks.h"

void help_info(FILE *out)
{
	fprintf(out,
		"Usage: pyxray info PID|CORE [OPTIONS]\n"
		"\n"
		"Describe the Python in PID without stopping it: version and build (path,\n"
		"build-id, shared libpython or static), how _PyRuntime was found, where\n"
		"the struct layout came from and whether it validated, interpreters and\n"
		"threads, RSS, and the target's namespaces next to pyxray's own.  For a\n"
		"core file: what wrote it, the signal, PID, user, executable and time.\n"
		"\n"
		"Options:\n"
		"  --json             one JSON object\n"
		PYX_CMD_PYTHON_OPTS_HELP
		PYX_CMD_CORE_OPTS_HELP
		"  -v, --verbose      diagnostics on stderr\n"
		"  -h, --help         this help\n");
}

static const char *layout_source(enum pyx_layout_source s)
{
	switch (s) {
	case PYX_LAYOUT_FROM_DWARF: return "dwarf";
	case PYX_LAYOUT_FROM_TABLE: return "table";
	case PYX_LAYOUT_FROM_DEBUG_OFFSETS: return "debug-offsets";
	default: return "none";
	}
}

/* What the layout came from, for a reader: a DWARF that is the binary's
 * own is read through /proc/PID/map_files/START-END, a name that means
 * nothing after the run; the binary's path says it. */
static const char *layout_from(const struct pyx_python_info *in,
			       const struct pyx_layout *l)
{
	const char *f = l->source_file;

	if (l->source == PYX_LAYOUT_FROM_DWARF && strncmp(f, "/proc/", 6) == 0 &&
	    strstr(f, "/map_files/"))
		return in->binary;
	return f;
}

/* "3.14.10" (or "3.15.0a1") from a PY_VERSION_HEX. */
static void hex_version(uint64_t v, char *buf, size_t n)
{
	unsigned lv = (unsigned)(v >> 4) & 0xf;
	const char *level = lv == 0xa ? "a" : lv == 0xb ? "b"
			  : lv == 0xc ? "rc" : "";
	int len = snprintf(buf, n, "%u.%u.%u", (unsigned)(v >> 24) & 0xff,
			   (unsigned)(v >> 16) & 0xff, (unsigned)(v >> 8) & 0xff);

	if (level[0] && len > 0 && (size_t)len < n)
		snprintf(buf + len, n - (size_t)len, "%s%u", level,
			 (unsigned)v & 0xf);
}

/* The first mismatches the library kept, never more than it has room for. */
static size_t diff_count(const struct pyx_python_info *in)
{
	size_t max = sizeof(in->debug_offsets_diff) /
		     sizeof(in->debug_offsets_diff[0]);

	return in->debug_offsets_ndiff < max ? in->debug_offsets_ndiff : max;
}

static bool has_debug_offsets(const struct pyx_python_info *in)
{
	return in->debug_offsets_version || in->debug_offsets_valid ||
	       in->debug_offsets_checked || in->debug_offsets_used;
}

/* "_Py_DebugOffsets  3.14 format, 3.14.10, validated; 59 entries compared
 * with the DWARF, 0 differ", then one line per field that differs. */
static void print_debug_offsets(const struct pyx_python_info *in)
{
	char v[48];
	size_t n = diff_count(in);

	if (!has_debug_offsets(in))
		return;
	printf("  _Py_DebugOffsets  ");
	if (in->debug_offsets_format)
		printf("3.%d format, ", in->debug_offsets_format);
	if (in->debug_offsets_version) {
		hex_version(in->debug_offsets_version, v, sizeof(v));
		printf("%s, ", v);
	}
	printf("%s", in->debug_offsets_valid ? "validated"
					      : "not valid for this process");
	if (in->newer)
		printf(", newer than pyxray knows: read as 3.%d",
		       in->newest_known_minor);
	if (in->debug_offsets_checked)
		printf("; %d entries compared with the DWARF, %d differ",
		       in->debug_offsets_checked, in->debug_offsets_mismatches);
	if (in->debug_offsets_used)
		printf("; %d entries from _Py_DebugOffsets",
		       in->debug_offsets_used);
	printf("\n");
	for (size_t i = 0; i < n; i++) {
		printf("    ");
		print_safe(stdout, in->debug_offsets_diff[i].field);
		printf(": DWARF %d, debug offsets %d\n",
		       (int)in->debug_offsets_diff[i].dwarf,
		       (int)in->debug_offsets_diff[i].debug_offsets);
	}
	if (in->debug_offsets_mismatches > 0 &&
	    (size_t)in->debug_offsets_mismatches > n)
		printf("    ... and %zu more\n",
		       (size_t)in->debug_offsets_mismatches - n);
}

static void print_debug_offsets_json(const struct pyx_python_info *in)
{
	char v[48];
	size_t n = diff_count(in);

	printf(",\"debug_offsets_valid\":%s,\"debug_offsets_version\":",
	       in->debug_offsets_valid ? "true" : "false");
	if (in->debug_offsets_version) {
		hex_version(in->debug_offsets_version, v, sizeof(v));
		json_str(stdout, v);
	} else {
		printf("null");
	}
	printf(",\"debug_offsets_format\":");
	if (in->debug_offsets_format)
		printf("\"3.%d\"", in->debug_offsets_format);
	else
		printf("null");
	printf(",\"debug_offsets_used\":%d,\"debug_offsets_diff\":[",
	       in->debug_offsets_used);
	for (size_t i = 0; i < n; i++) {
		printf("%s{\"field\":", i ? "," : "");
		json_str(stdout, in->debug_offsets_diff[i].field);
		printf(",\"dwarf\":%d,\"debug_offsets\":%d}",
		       (int)in->debug_offsets_diff[i].dwarf,
		       (int)in->debug_offsets_diff[i].debug_offsets);
	}
	printf("],\"newer\":%s,\"warning\":", in->newer ? "true" : "false");
	json_str(stdout, in->warning[0] ? in->warning : NULL);
}

static void ns_link(pid_t pid, const char *ns, char *buf, size_t n)
{
	char path[64];
	ssize_t len;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
	len = readlink(path, buf, n - 1);
	buf[len > 0 ? len : 0] = '\0';
}

/* "2025-11-26 00:07:12 UTC" */
static void utc_time(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t < 0 || !gmtime_r(&tt, &tm) ||
	    !strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(buf, n, "unknown");
}

/* A signal's name without "SIG" (sigabbrev_np is glibc 2.32+; the portable
 * binary runs on 2.28), NULL if it has none. */
static const char *sig_abbrev(int sig)
{
	static const char *const names[] = {
		[SIGHUP] = "HUP",   [SIGINT] = "INT",       [SIGQUIT] = "QUIT",
		[SIGILL] = "ILL",   [SIGTRAP] = "TRAP",     [SIGABRT] = "ABRT",
		[SIGBUS] = "BUS",   [SIGFPE] = "FPE",       [SIGKILL] = "KILL",
		[SIGUSR1] = "USR1", [SIGSEGV] = "SEGV",     [SIGUSR2] = "USR2",
		[SIGPIPE] = "PIPE", [SIGALRM] = "ALRM",     [SIGTERM] = "TERM",
		[SIGSTKFLT] = "STKFLT", [SIGCHLD] = "CHLD", [SIGCONT] = "CONT",
		[SIGSTOP] = "STOP", [SIGTSTP] = "TSTP",     [SIGTTIN] = "TTIN",
		[SIGTTOU] = "TTOU", [SIGURG] = "URG",       [SIGXCPU] = "XCPU",
		[SIGXFSZ] = "XFSZ", [SIGVTALRM] = "VTALRM", [SIGPROF] = "PROF",
		[SIGWINCH] = "WINCH", [SIGIO] = "IO",      [SIGPWR] = "PWR",
		[SIGSYS] = "SYS",
	};

	if (sig > 0 && (size_t)sig < sizeof(names) / sizeof(names[0]))
		return names[sig];
	return NULL;
}

static void print_core(const struct pyx_core_info *c)
{
	char when[64], sig[32] = "none";

	utc_time(c->time, when, sizeof(when));
	if (c->signal > 0 && c->signal < 128)
		snprintf(sig, sizeof(sig), "%d (%s)", c->signal,
			 sig_abbrev(c->signal) ? sig_abbrev(c->signal) : "?");
	printf("Core file ");
	print_safe(stdout, c->path);
	printf("\n  written by      %s%s%s%s\n", c->writer,
	       c->compression ? " (" : "", c->compression ? c->compression : "",
	       c->compression ? "-compressed)" : "");
	printf("  time            %s\n  signal          %s\n", when, sig);
	printf("  process         %d, uid %u, gid %u\n  executable      ",
	       (int)c->pid, (unsigned)c->uid, (unsigned)c->gid);
	print_safe(stdout, c->executable[0] ? c->executable : c->comm);
	printf("\n  command line    ");
	print_safe(stdout, c->args);
	printf("\n  threads         %zu\n", c->nthreads);
	if (c->truncated)
		printf("  truncated       %" PRIu64 " bytes of the %" PRIu64
		       " its headers need\n", c->size, c->needed);
}

static void print_core_json(const struct pyx_core_info *c)
{
	printf(",\"core\":{\"path\":");
	json_str(stdout, c->path);
	printf(",\"writer\":");
	json_str(stdout, c->writer);
	printf(",\"compression\":");
	json_str(stdout, c->compression);
	printf(",\"time\":%" PRId64 ",\"signal\":%d,\"pid\":%d,\"uid\":%u,"
	       "\"gid\":%u,\"executable\":", c->time, c->signal, (int)c->pid,
	       (unsigned)c->uid, (unsigned)c->gid);
	json_str(stdout, c->executable[0] ? c->executable : NULL);
	printf(",\"comm\":");
	json_str(stdout, c->comm);
	printf(",\"args\":");
	json_str(stdout, c->args);
	printf(",\"threads\":%zu,\"size\":%" PRIu64 ",\"needed\":%" PRIu64
	       ",\"truncated\":%s}", c->nthreads, c->size, c->needed,
	       c->truncated ? "true" : "false");
}

static const struct cmd_opt info_opts[] = {
	CMD_OPTS_HELP,
	CMD_OPTS_VERBOSE,
	CMD_OPTS_JSON,
	CMD_OPTS_PYTHON,
	CMD_OPTS_END
};

int do_info(int argc, char **argv)
{
	struct cmd_args args = CMD_ARGS("info", argc, argv);
	static const char *const nss[] = { "pid", "mnt", "user", "net" };
	struct pyx_python_opts popts = { 0 };
	struct pyx_stacks_opts sopts = { .nonblocking = true, .max_depth = 1 };
	struct pyx_target *tgt = NULL;
	struct pyx_python *py = NULL;
	struct pyx_stacks *s = NULL;
	const struct pyx_python_info *in;
	const struct pyx_layout *l;
	const struct pyx_core_info *core = NULL;
	bool json = false;
	size_t ninterp = 0;
	const char *val;
	int err, ret = 0, id;
	struct cmd_target target = { 0 };
	pid_t pid = 0;

	while ((id = cmd_next(&args, info_opts, &val)) != CMD_ARG_END) {
		switch (id) {
		case CMD_ARG_ERROR:
			return 2;
		case CMD_OPT_HELP:
			help_info(stdout);
			return 0;
		case CMD_OPT_VERBOSE:
			cmd_set_verbose(true);
			break;
		case CMD_OPT_JSON:
			json = true;
			break;
		case CMD_ARG_WORD:
			if (cmd_target_arg("info", val, &target))
				return 2;
			break;
		default:
			if (cmd_python_opt(&args, id, val, &popts) < 0)
				return 2;
		}
	}
	if (!target.arg)
		return cmd_usage("info", "missing PID or core file");

	if ((err = cmd_open_target(&target, &tgt)) ||
	    (err = pyx_python_open_opts(tgt, &popts, &py))) {
		ret = cmd_fail(err);
		goto out;
	}
	pid = target.pid;
	core = pyx_target_core_info(tgt);
	cmd_python_warn(py);
	in = pyx_python_info(py);
	l = pyx_python_layout(py);
	/* Threads and interpreters from a nonblocking walk: info never stops
	 * the target. */
	if (pyx_stacks_collect(py, &sopts, &s))
		s = NULL;
	for (size_t i = 0; s && i < s->nthreads; i++) {
		bool seen = false;

		for (size_t j = 0; j < i; j++)
			seen |= s->threads[j].interp_id == s->threads[i].interp_id;
		ninterp += !seen;
	}
	if (json) {
		printf("{\"pid\":%d,\"python_version\":", (int)pid);
		json_str(stdout, in->version);
		printf(",\"binary\":");
		json_str(stdout, in->binary);
		printf(",\"build_id\":");
		json_str(stdout, in->build_id);
		printf(",\"shared_libpython\":%s,\"runtime\":\"0x%" PRIx64 "\","
		       "\"runtime_via\":", in->shared ? "true" : "false",
		       in->runtime);
		json_str(stdout, in->runtime_via);
		printf(",\"layout\":\"%s\",\"layout_from\":", layout_source(l->source));
		json_str(stdout, layout_from(in, l));
		printf(",\"debug_offsets_checked\":%d,\"debug_offsets_mismatches\":%d",
		       in->debug_offsets_checked, in->debug_offsets_mismatches);
		print_debug_offsets_json(in);
		printf(",\"interpreters\":%zu,\"threads\":%zu,\"rss_bytes\":%ld",
		       ninterp, s ? s->nthreads : 0, (long)pyx_target_rss_bytes(tgt));
		/* A core's PID may be another process's now: no namespaces. */
		if (core) {
			print_core_json(core);
			printf(",\"namespaces\":null}\n");
			goto out;
		}
		printf(",\"core\":null,\"namespaces\":{");
		for (size_t i = 0; i < sizeof(nss) / sizeof(nss[0]); i++) {
			char t[128], me[128];

			ns_link(pid, nss[i], t, sizeof(t));
			ns_link(0, nss[i], me, sizeof(me));
			printf("%s\"%s\":{\"target\":", i ? "," : "", nss[i]);
			json_str(stdout, t);
			printf(",\"same_as_pyxray\":%s}", strcmp(t, me) ? "false" : "true");
		}
		printf("}}\n");
		goto out;
	}
	/* Every string below comes from the target or its files. */
	if (core)
		print_core(core);
	printf("Process %d\n  Python          ", (int)pid);
	print_safe(stdout, in->version);
	printf("\n  binary          ");
	print_safe(stdout, in->binary);
	printf(" (%s)\n  build-id        ",
	       in->shared ? "shared libpython" : "static executable");
	print_safe(stdout, in->build_id[0] ? in->build_id : "(none)");
	printf("\n  _PyRuntime      0x%" PRIx64 " (found in ", in->runtime);
	print_safe(stdout, in->runtime_via);
	printf(")\n  layout          %s%s: ", layout_source(l->source),
	       in->layout_cached ? " (cached)" : "");
	print_safe(stdout, layout_from(in, l));
	printf(" (validated against the %s)\n", core ? "core" : "process");
	print_debug_offsets(in);
	if (in->warning[0]) {
		printf("  warning         ");
		print_safe(stdout, in->warning);
		printf("\n");
	}
	if (s)
		printf("  interpreters    %zu\n  threads         %zu\n", ninterp,
		       s->nthreads);
	if (core)
		goto out;
	printf("  RSS             %.1f MiB\n", (double)pyx_target_rss_bytes(tgt) / 1048576.0);
	for (size_t i = 0; i < sizeof(nss) / sizeof(nss[0]); i++) {
		char t[128], me[128];

		ns_link(pid, nss[i], t, sizeof(t));
		ns_link(0, nss[i], me, sizeof(me));
		printf("  namespace %-5s ", nss[i]);
		print_safe(stdout, t);
		printf("%s\n", strcmp(t, me) ? " (differs from pyxray's)" : "");
	}
out:
	pyx_stacks_free(s);
	pyx_python_free(py);
	pyx_target_free(tgt);
	return ret;
}
