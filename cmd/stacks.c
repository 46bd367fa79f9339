/* pyxray stacks: every thread's Python stack, and with --native its native
 * stack merged in. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "pyxray/error.h"
#include "pyxray/target.h"
#include "pyxray/python.h"
#include "pyxray/source.h"
#include "pyxray/stacks.h"

void help_stacks(FILE *out)
{
	fprintf(out,
		"Usage: pyxray stacks PID [OPTIONS]\n"
		"\n"
		"Print the Python stack of every thread of every interpreter in PID,\n"
		"innermost frame first, with the current source line.  The target is\n"
		"stopped only while its memory is read; the pause is reported.\n"
		"\n"
		"Options:\n"
		"  --native           native (C) frames too: function, library, source\n"
		"                     line and inlined calls, with each thread's Python\n"
		"                     frames in place of the interpreter's evaluation\n"
		"                     loop frame that runs them; threads Python does\n"
		"                     not know are shown too (not with --nonblocking)\n"
		"  --json             one JSON object instead of text\n"
		"  --context N        N source lines around each current line (like py-list)\n"
		"  --nonblocking      read without stopping the target (may be inconsistent;\n"
		"                     pyxray re-reads until a walk is consistent)\n"
		"  --deadline-ms MS   give up if the threads are not stopped within MS\n"
		"                     (default 2000); the target is always resumed\n"
		"  --max-depth N      frames per thread (default 4096)\n"
		PYX_CMD_PYTHON_OPTS_HELP
		"  -v, --verbose      diagnostics on stderr\n"
		"  -h, --help         this help\n");
}

static void print_context(struct pyx_sources *src, const struct pyx_frame *f,
			  int context)
{
	const char *text;

	if (f->line < 1)
		return;
	if (context <= 0) {
		text = pyx_sources_line(src, f->file, f->line);
		if (text) {
			while (*text == ' ' || *text == '\t')
				text++;
			printf("        ");
			print_safe(stdout, text);
			printf("\n");
		}
		return;
	}
	for (int l = f->line - context; l <= f->line + context; l++) {
		if (l < 1 || !(text = pyx_sources_line(src, f->file, l)))
			continue;
		printf("     %s%5d  ", l == f->line ? ">" : " ", l);
		print_safe(stdout, text);
		printf("\n");
	}
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static void print_native(const struct pyx_native_frame *f)
{
	if (f->inlined)
		printf("    %-18s", "(inlined)");
	else
		printf("    0x%016" PRIx64, f->address);
	printf(" ");
	print_safe(stdout, f->function ? f->function : "??");
	if (f->library) {
		printf(" (");
		print_safe(stdout, base_name(f->library));
		printf(")");
	}
	if (f->file) {
		printf(" ");
		print_safe(stdout, f->file);
		printf(":%d", f->line);
	}
	printf("\n");
}

static void print_python(struct pyx_sources *src, const struct pyx_frame *f,
			 int context)
{
	printf("    ");
	print_safe(stdout, f->function);
	printf(" (");
	print_safe(stdout, f->file);
	printf(":%d)\n", f->line);
	print_context(src, f, context);
}

static void print_text(const struct pyx_python_info *in, pid_t pid,
		       const struct pyx_stacks *s, struct pyx_sources *src,
		       int context, bool nonblocking, bool native)
{
	printf("Process %d: Python %s (%s)\n", (int)pid, in->version, in->binary);
	if (nonblocking)
		printf("Read without stopping the target (%d attempt%s)\n",
		       s->attempts, s->attempts == 1 ? "" : "s");
	else
		printf("Paused the target for %.3f ms\n", s->pause_ms);
	for (size_t i = 0; i < s->nthreads; i++) {
		const struct pyx_thread *t = &s->threads[i];

		printf("\nThread ");
		if (t->native_id >= 0)
			printf("%lld ", (long long)t->native_id);
		if (t->ns_native_id >= 0 && t->ns_native_id != t->native_id)
			printf("[%lld in the target's namespace] ",
			       (long long)t->ns_native_id);
		printf("(0x%" PRIx64 "%s%s%s)", t->thread_id,
		       t->holds_gil ? ", holds the GIL" : "",
		       t->interp_id > 0 ? ", subinterpreter" : "",
		       t->tstate ? "" : ", no Python thread state");
		if (t->name) {
			printf(": \"");
			print_safe(stdout, t->name);
			printf("\"");
		}
		if (t->interp_id > 0)
			printf(" [interpreter %lld]", (long long)t->interp_id);
		printf("\n");
		if (native) {
			for (size_t j = 0; j < t->nmerged; j++) {
				const struct pyx_stack_entry *e = &t->merged[j];

				if (e->native)
					print_native(&t->native[e->index]);
				else
					print_python(src, &t->frames[e->index],
						     context);
			}
		} else {
			if (t->nframes == 0)
				printf("    (no Python frames)\n");
			for (size_t j = 0; j < t->nframes; j++)
				print_python(src, &t->frames[j], context);
		}
		if (t->error)
			printf("    ... stack cut short: %s\n", t->error);
		if (native && t->native_error)
			printf("    ... native stack: %s\n", t->native_error);
	}
}

static void json_python_frame(const struct pyx_frame *f, bool native)
{
	printf("{%s\"function\":", native ? "\"native\":false," : "");
	json_str(stdout, f->function);
	printf(",\"name\":");
	json_str(stdout, f->name);
	printf(",\"file\":");
	json_str(stdout, f->file);
	printf(",\"line\":%d,\"entry\":%s}", f->line,
	       f->entry ? "true" : "false");
}

static void json_native_frame(const struct pyx_native_frame *f)
{
	printf("{\"native\":true,\"function\":");
	json_str(stdout, f->function);
	printf(",\"library\":");
	json_str(stdout, f->library);
	printf(",\"file\":");
	json_str(stdout, f->file);
	if (f->line > 0)
		printf(",\"line\":%d", f->line);
	else
		printf(",\"line\":null");
	printf(",\"address\":\"0x%" PRIx64 "\",\"inlined\":%s}", f->address,
	       f->inlined ? "true" : "false");
}

/* Without --native the output is exactly what it was before --native
 * existed: other tools read it. */
static void print_json(const struct pyx_python_info *in, pid_t pid,
		       const struct pyx_stacks *s, bool native)
{
	printf("{\"pid\":%d,\"python_version\":", (int)pid);
	json_str(stdout, in->version);
	printf(",\"python_binary\":");
	json_str(stdout, in->binary);
	printf(",\"pause_ms\":%.6f,\"read_syscalls\":%llu,", s->pause_ms,
	       (unsigned long long)s->read_syscalls);
	if (native)
		printf("\"native\":true,");
	printf("\"threads\":[");
	for (size_t i = 0; i < s->nthreads; i++) {
		const struct pyx_thread *t = &s->threads[i];

		printf("%s{\"thread_id\":%llu,\"native_thread_id\":", i ? "," : "",
		       (unsigned long long)t->thread_id);
		if (t->native_id >= 0)
			printf("%lld", (long long)t->native_id);
		else
			printf("null");
		printf(",\"ns_native_thread_id\":");
		if (t->ns_native_id >= 0)
			printf("%lld", (long long)t->ns_native_id);
		else
			printf("null");
		printf(",\"name\":");
		json_str(stdout, t->name);
		printf(",\"holds_gil\":%s,\"interpreter_id\":",
		       t->holds_gil ? "true" : "false");
		if (t->tstate)
			printf("%lld", (long long)t->interp_id);
		else
			printf("null");
		printf(",\"error\":");
		json_str(stdout, t->error);
		if (native) {
			printf(",\"python\":%s,\"native_error\":",
			       t->tstate ? "true" : "false");
			json_str(stdout, t->native_error);
		}
		printf(",\"frames\":[");
		if (native) {
			for (size_t j = 0; j < t->nmerged; j++) {
				const struct pyx_stack_entry *e = &t->merged[j];

				printf("%s", j ? "," : "");
				if (e->native)
					json_native_frame(&t->native[e->index]);
				else
					json_python_frame(&t->frames[e->index],
							  true);
			}
		} else {
			for (size_t j = 0; j < t->nframes; j++) {
				printf("%s", j ? "," : "");
				json_python_frame(&t->frames[j], false);
			}
		}
		printf("]}");
	}
	printf("]}\n");
}

int do_stacks(int argc, char **argv)
{
	struct pyx_stacks_opts opts = { 0 };
	struct pyx_python_opts popts = { 0 };
	struct pyx_target *tgt = NULL;
	struct pyx_python *py = NULL;
	struct pyx_stacks *s = NULL;
	struct pyx_sources *src = NULL;
	bool json = false;
	int context = 0, depth = 0, err, ret = 0;
	pid_t pid = 0;

	/* One pass; options may come before or after the PID. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		int used, *intopt = NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			help_stacks(stdout);
			return 0;
		} else if (strcmp(a, "--json") == 0) {
			json = true;
		} else if (strcmp(a, "--native") == 0) {
			opts.native = true;
		} else if (strcmp(a, "--nonblocking") == 0) {
			opts.nonblocking = true;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			cmd_set_verbose(true);
		} else if (strcmp(a, "--context") == 0) {
			intopt = &context;
		} else if (strcmp(a, "--deadline-ms") == 0) {
			intopt = &opts.deadline_ms;
		} else if (strcmp(a, "--max-depth") == 0) {
			intopt = &depth;
		} else if (strcmp(a, "--hold-ms") == 0) { /* test hook */
			intopt = &opts.hold_ms;
		} else if ((used = cmd_python_opt("stacks", argc - i, argv + i,
						  &popts)) != 0) {
			if (used < 0)
				return 2;
			i += used - 1;
		} else if (a[0] != '-' && !pid) {
			if (cmd_parse_pid("stacks", a, &pid))
				return 2;
		} else {
			return cmd_usage("stacks", "unexpected argument '%s'", a);
		}
		if (intopt) {
			if (!val)
				return cmd_usage("stacks", "%s needs a value", a);
			if (cmd_parse_int("stacks", a, val, intopt))
				return 2;
			i++;
		}
	}
	if (!pid)
		return cmd_usage("stacks", "missing PID");
	opts.max_depth = (size_t)depth;

	if (opts.native && opts.nonblocking)
		return cmd_usage("stacks", "--native cannot be used with "
				 "--nonblocking: native stacks are read from "
				 "the registers and stacks of stopped threads");

	if ((err = pyx_target_open_pid(pid, &tgt)) ||
	    (err = pyx_python_open_opts(tgt, &popts, &py)) ||
	    (err = pyx_stacks_collect(py, &opts, &s))) {
		ret = cmd_fail(err);
		goto out;
	}
	/* The target runs again: everything below works on our copy. */
	if (json) {
		print_json(pyx_python_info(py), pid, s, opts.native);
	} else {
		if ((err = pyx_sources_new(tgt, &src))) {
			ret = cmd_fail(err);
			goto out;
		}
		print_text(pyx_python_info(py), pid, s, src, context,
			   opts.nonblocking, opts.native);
	}
	if (fflush(stdout) != 0)
		ret = cmd_fail(pyx_err_set(PYX_E_IO, "writing the output failed"));
out:
	pyx_sources_free(src);
	pyx_stacks_free(s);
	pyx_python_free(py);
	pyx_target_free(tgt);
	return ret;
}
