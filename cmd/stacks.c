/* pyxray stacks: every thread's Python stack, and with --native its native
 * stack merged in. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "pyxray/error.h"
#include "pyxray/target.h"
#include "pyxray/python.h"
#include "pyxray/source.h"
#include "pyxray/stacks.h"

/* --context: lines either side of the current one; more is a file viewer's
 * job.  --max-depth: frames per thread. */
#define STACKS_MAX_CONTEXT 50
#define STACKS_DEFAULT_DEPTH 4096
#define STACKS_MAX_DEPTH 1000000

void help_stacks(FILE *out)
{
	fprintf(out,
		"Usage: pyxray stacks PID|CORE [OPTIONS]\n"
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
		"  --context N        N source lines around each current line (like\n"
		"                     py-list; 0 to 50)\n"
		"  --nonblocking      read without stopping the target (may be inconsistent;\n"
		"                     pyxray re-reads until a walk is consistent)\n"
		"  --deadline-ms MS   give up if the threads are not stopped within MS\n"
		"                     (default 2000); the target is always resumed\n"
		"  --max-depth N      frames per thread (default 4096, at most 1000000)\n"
		"  --locals           each frame's arguments and locals, with a short\n"
		"                     repr of str, bytes, int, float, bool and None,\n"
		"                     the length of containers, else type and address\n"
		"  --async            after each thread's stack, the asyncio tasks of\n"
		"                     the loop it runs (see pyxray tasks)\n"
		PYX_CMD_PYTHON_OPTS_HELP
		PYX_CMD_CORE_OPTS_HELP
		"  -v, --verbose      diagnostics on stderr\n"
		"  -h, --help         this help\n");
}

static void print_context(struct pyx_sources *src, const struct pyx_frame *f,
			  int context)
{
	const char *text;

	/* A line number the target wrote: no overflow below. */
	if (f->line < 1 || f->line > INT_MAX - STACKS_MAX_CONTEXT)
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

static void print_locals(const struct pyx_frame *f)
{
	for (size_t i = 0; i < f->nlocals; i++) {
		const struct pyx_local *l = &f->locals[i];

		printf("        %-5s ", pyx_local_kind_name(l->kind));
		print_safe(stdout, l->name);
		printf(" = ");
		print_safe(stdout, l->repr);
		printf(" (");
		print_safe(stdout, l->type);
		printf(")\n");
	}
	if (f->locals_error) {
		printf("        ... locals cut short: ");
		print_safe(stdout, f->locals_error);
		printf("\n");
	}
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
	print_locals(f);
}

/* stacks --async: the tasks whose loop thread t runs (t NULL: those of
 * loops no thread runs). */
static void print_thread_tasks(const struct pyx_tasks *ts,
			       const struct pyx_thread *t)
{
	bool any = false;

	for (size_t i = 0; i < ts->n; i++) {
		const struct pyx_task *k = &ts->tasks[i];

		if (t ? !k->has_thread || k->thread_id != t->thread_id
		      : k->has_thread)
			continue;
		if (!any)
			printf(t ? "  asyncio tasks of its event loop:\n"
				 : "\nasyncio tasks of event loops no thread runs:\n");
		any = true;
		cmd_task_text(ts, i, "    ");
	}
}

static void print_text(const struct pyx_python_info *in, pid_t pid,
		       const struct pyx_stacks *s, struct pyx_sources *src,
		       int context, bool nonblocking, bool native)
{
	cmd_print_process((int)pid, in->version, in->binary);
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
		if (t->error) {
			printf("    ... stack cut short: ");
			print_safe(stdout, t->error);
			printf("\n");
		}
		if (native && t->native_error) {
			printf("    ... native stack: ");
			print_safe(stdout, t->native_error);
			printf("\n");
		}
		if (s->tasks && t->tstate)
			print_thread_tasks(s->tasks, t);
	}
	if (s->tasks) {
		print_thread_tasks(s->tasks, NULL);
		if (s->tasks->error) {
			printf("\n(the asyncio task list may be incomplete: ");
			print_safe(stdout, s->tasks->error);
			printf(")\n");
		}
	}
}

static void json_python_frame(const struct pyx_frame *f, bool native,
			      bool locals)
{
	printf("{%s\"function\":", native ? "\"native\":false," : "");
	json_str(stdout, f->function);
	printf(",\"name\":");
	json_str(stdout, f->name);
	printf(",\"file\":");
	json_str(stdout, f->file);
	printf(",\"line\":%d,\"entry\":%s", f->line,
	       f->entry ? "true" : "false");
	if (locals) {
		printf(",\"locals\":[");
		for (size_t i = 0; i < f->nlocals; i++) {
			const struct pyx_local *l = &f->locals[i];

			printf("%s{\"name\":", i ? "," : "");
			json_str(stdout, l->name);
			printf(",\"kind\":\"%s\",\"type\":",
			       pyx_local_kind_name(l->kind));
			json_str(stdout, l->type);
			printf(",\"repr\":");
			json_str(stdout, l->repr);
			printf("}");
		}
		printf("],\"locals_error\":");
		json_str(stdout, f->locals_error);
	}
	printf("}");
}

/* stacks --async --json: the tasks of the loop thread t runs (NULL: of
 * loops no thread runs). */
static void json_thread_tasks(const struct pyx_tasks *ts,
			      const struct pyx_thread *t)
{
	bool any = false;

	printf("[");
	for (size_t i = 0; i < ts->n; i++) {
		const struct pyx_task *k = &ts->tasks[i];

		if (t ? !k->has_thread || k->thread_id != t->thread_id
		      : k->has_thread)
			continue;
		printf("%s", any ? "," : "");
		any = true;
		cmd_task_json(ts, i);
	}
	printf("]");
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
		       const struct pyx_stacks *s, bool native, bool locals)
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
							  true, locals);
			}
		} else {
			for (size_t j = 0; j < t->nframes; j++) {
				printf("%s", j ? "," : "");
				json_python_frame(&t->frames[j], false, locals);
			}
		}
		printf("]");
		if (s->tasks) {
			printf(",\"tasks\":");
			if (t->tstate)
				json_thread_tasks(s->tasks, t);
			else
				printf("[]");
		}
		printf("}");
	}
	printf("]");
	if (s->tasks) {
		printf(",\"other_tasks\":");
		json_thread_tasks(s->tasks, NULL);
		printf(",\"tasks_error\":");
		json_str(stdout, s->tasks->error);
	}
	printf("}\n");
}

enum {
	OPT_NATIVE = CMD_OPT_OWN,
	OPT_NONBLOCKING,
	OPT_CONTEXT,
	OPT_MAX_DEPTH,
	OPT_LOCALS,
	OPT_ASYNC,
};

static const struct cmd_opt stacks_opts[] = {
	CMD_OPTS_HELP,
	CMD_OPTS_VERBOSE,
	CMD_OPTS_JSON,
	{ "--native", NULL, OPT_NATIVE, false },
	{ "--nonblocking", NULL, OPT_NONBLOCKING, false },
	{ "--context", NULL, OPT_CONTEXT, true },
	{ "--max-depth", NULL, OPT_MAX_DEPTH, true },
	{ "--locals", NULL, OPT_LOCALS, false },
	{ "--async", NULL, OPT_ASYNC, false },
	{ "--deadline-ms", NULL, CMD_OPT_DEADLINE_MS, true },
	CMD_OPTS_HOLD
	CMD_OPTS_PYTHON,
	CMD_OPTS_END
};

int do_stacks(int argc, char **argv)
{
	struct cmd_args args = CMD_ARGS("stacks", argc, argv);
	struct pyx_stacks_opts opts = { 0 };
	struct pyx_python_opts popts = { 0 };
	struct pyx_target *tgt = NULL;
	struct pyx_python *py = NULL;
	struct pyx_stacks *s = NULL;
	struct pyx_sources *src = NULL;
	const char *val;
	bool json = false;
	int context = 0, depth = STACKS_DEFAULT_DEPTH, id, err, ret = 0;
	struct cmd_target t = { 0 };
	pid_t pid = 0;

	while ((id = cmd_next(&args, stacks_opts, &val)) != CMD_ARG_END) {
		switch (id) {
		case CMD_ARG_ERROR:
			return 2;
		case CMD_OPT_HELP:
			help_stacks(stdout);
			return 0;
		case CMD_OPT_VERBOSE:
			cmd_set_verbose(true);
			break;
		case CMD_OPT_JSON:
			json = true;
			break;
		case OPT_NATIVE:
			opts.native = true;
			break;
		case OPT_NONBLOCKING:
			opts.nonblocking = true;
			break;
		case OPT_LOCALS:
			opts.locals = true;
			break;
		case OPT_ASYNC:
			opts.tasks = true;
			break;
		case OPT_CONTEXT:
			if (cmd_opt_int(&args, val, 0, STACKS_MAX_CONTEXT, &context))
				return 2;
			break;
		case OPT_MAX_DEPTH:
			if (cmd_opt_int(&args, val, 1, STACKS_MAX_DEPTH, &depth))
				return 2;
			break;
		case CMD_ARG_WORD:
			if (cmd_target_arg("stacks", val, &t))
				return 2;
			break;
		default:
			if (cmd_stop_opt(&args, id, val, &opts.deadline_ms,
					 CMD_HOLD_PTR(opts)) < 0 ||
			    cmd_python_opt(&args, id, val, &popts) < 0)
				return 2;
		}
	}
	if (!t.arg)
		return cmd_usage("stacks", "missing PID");
	opts.max_depth = (size_t)depth;

	if (opts.native && opts.nonblocking)
		return cmd_usage("stacks", "--native cannot be used with "
				 "--nonblocking: native stacks are read from "
				 "the registers and stacks of stopped threads");

	if ((err = cmd_open_target(&t, &tgt)) ||
	    (err = pyx_python_open_opts(tgt, &popts, &py))) {
		ret = cmd_fail(err);
		goto out;
	}
	pid = t.pid;
	cmd_python_warn(py);
	if ((err = pyx_stacks_collect(py, &opts, &s))) {
		ret = cmd_fail(err);
		goto out;
	}
	/* The target runs again: everything below works on our copy. */
	if (json) {
		print_json(pyx_python_info(py), pid, s, opts.native,
			   opts.locals);
	} else {
		if ((err = pyx_sources_new(tgt, &src))) {
			ret = cmd_fail(err);
			goto out;
		}
		print_text(pyx_python_info(py), pid, s, src, context,
			   opts.nonblocking, opts.native);
	}
out:
	pyx_sources_free(src);
	pyx_stacks_free(s);
	pyx_python_free(py);
	pyx_target_free(tgt);
	return ret;
}
