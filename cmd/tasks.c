/* pyxray tasks: every asyncio task of every event loop: its state, its
 * coroutine chain, the future it waits on, the tasks that await it, and the
 * thread whose loop runs it; --tree as python -m asyncio pstree does. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "pyxray/error.h"
#include "pyxray/python.h"
#include "pyxray/stacks.h"
#include "pyxray/target.h"
#include "pyxray/tasks.h"

/* The tree stops there: deeper is not a tree a reader follows. */
#define TREE_MAX_DEPTH 128
#define TREE_MAX_LINES 100000

void help_tasks(FILE *out)
{
	fprintf(out,
		"Usage: pyxray tasks PID|CORE [OPTIONS]\n"
		"\n"
		"Print every asyncio task of every event loop in PID: its name, state\n"
		"(pending, cancelled, done), its coroutine chain (innermost first, each\n"
		"with function, file and line, followed through await / yield from), the\n"
		"future it waits on, the tasks that await it (through the future it waits\n"
		"on, gather, TaskGroup and shield) and the thread whose loop runs it.\n"
		"C tasks (_asyncio) and pure-Python ones.  The target is stopped only\n"
		"while its memory is read, and no code runs in it.\n"
		"\n"
		"Options:\n"
		"  --tree             the await graph as a tree, like python -m asyncio\n"
		"                     pstree: each task under the tasks that await it;\n"
		"                     a cycle is reported, not followed\n"
		"  --json             one JSON object instead of text\n"
		"  --deadline-ms MS   give up if the threads are not stopped within MS\n"
		"                     (default 2000); the target is always resumed\n"
		PYX_CMD_PYTHON_OPTS_HELP
		PYX_CMD_CORE_OPTS_HELP
		"  -v, --verbose      diagnostics on stderr\n"
		"  -h, --help         this help\n");
}

static void print_name(const struct pyx_task *t)
{
	printf("\"");
	print_safe(stdout, t->name ? t->name : "?");
	printf("\"");
}

static void print_coro(const struct pyx_coro_frame *f)
{
	print_safe(stdout, f->function);
	printf(" (");
	print_safe(stdout, f->file);
	printf(":%d)", f->line);
}

void cmd_task_text(const struct pyx_tasks *ts, size_t i, const char *indent)
{
	const struct pyx_task *t = &ts->tasks[i];

	printf("%sTask ", indent);
	print_name(t);
	printf(" (0x%" PRIx64 ", %s%s)", t->addr, pyx_task_state_name(t->state),
	       t->python_impl ? ", pure-Python Task" : "");
	if (t->has_thread)
		printf(" on thread 0x%" PRIx64, t->thread_id);
	else
		printf(" on a loop no thread runs");
	printf("\n");
	if (t->awaiting) {
		printf("%s    awaiting: ", indent);
		print_safe(stdout, t->awaiting_type ? t->awaiting_type : "?");
		printf(" at 0x%" PRIx64 "\n", t->awaiting);
	}
	if (t->nawaited_by) {
		printf("%s    awaited by:", indent);
		for (size_t j = 0; j < t->nawaited_by; j++) {
			printf("%s ", j ? "," : "");
			print_name(&ts->tasks[t->awaited_by[j]]);
			printf(" (0x%" PRIx64 ")", ts->tasks[t->awaited_by[j]].addr);
		}
		printf("\n");
	}
	for (size_t j = 0; j < t->nstack; j++) {
		printf("%s    ", indent);
		print_coro(&t->stack[j]);
		printf("\n");
	}
	if (t->error) {
		printf("%s    ... cut short: ", indent);
		print_safe(stdout, t->error);
		printf("\n");
	}
}

void cmd_task_json(const struct pyx_tasks *ts, size_t i)
{
	const struct pyx_task *t = &ts->tasks[i];

	printf("{\"name\":");
	json_str(stdout, t->name);
	printf(",\"addr\":\"0x%" PRIx64 "\",\"state\":\"%s\",\"coroutine_stack\":[",
	       t->addr, pyx_task_state_name(t->state));
	for (size_t j = 0; j < t->nstack; j++) {
		printf("%s{\"function\":", j ? "," : "");
		json_str(stdout, t->stack[j].function);
		printf(",\"file\":");
		json_str(stdout, t->stack[j].file);
		printf(",\"line\":%d}", t->stack[j].line);
	}
	printf("],\"awaiting\":");
	if (t->awaiting) {
		printf("{\"type\":");
		json_str(stdout, t->awaiting_type);
		printf(",\"addr\":\"0x%" PRIx64 "\"}", t->awaiting);
	} else {
		printf("null");
	}
	printf(",\"awaited_by\":[");
	for (size_t j = 0; j < t->nawaited_by; j++) {
		const struct pyx_task *w = &ts->tasks[t->awaited_by[j]];

		printf("%s{\"name\":", j ? "," : "");
		json_str(stdout, w->name);
		printf(",\"addr\":\"0x%" PRIx64 "\"}", w->addr);
	}
	printf("],\"thread_id\":");
	if (t->has_thread)
		printf("%llu", (unsigned long long)t->thread_id);
	else
		printf("null");
	/* Why part of it could not be read: a partial task says so. */
	printf(",\"error\":");
	json_str(stdout, t->error);
	printf("}");
}

/* ---- --tree ----------------------------------------------------------- */

struct tree {
	const struct pyx_tasks *ts;
	size_t **children; /* per task: the tasks it awaits */
	size_t *nchildren;
	bool *on_path, *shown;
	char prefix[TREE_MAX_DEPTH * 8 + 8];
	size_t lines;
};

static void tree_node(struct tree *tr, size_t i, size_t depth, bool last)
{
	const struct pyx_task *t = &tr->ts->tasks[i];
	size_t plen = strlen(tr->prefix);

	if (tr->lines++ >= TREE_MAX_LINES)
		return;
	printf("%s%s(T) ", tr->prefix, last ? "\u2514\u2500\u2500 " : "\u251c\u2500\u2500 ");
	print_name(t);
	printf(" [%s]", pyx_task_state_name(t->state));
	if (tr->on_path[i]) {
		printf(" (an await cycle: it awaits itself through the tasks "
		       "above; not followed)\n");
		return;
	}
	printf("\n");
	tr->shown[i] = true;
	if (depth >= TREE_MAX_DEPTH) {
		if (tr->nchildren[i] && tr->lines++ < TREE_MAX_LINES)
			printf("%s    ... (deeper tasks not shown)\n", tr->prefix);
		return;
	}
	strcat(tr->prefix, last ? "    " : "\u2502   ");
	/* Its coroutines, outermost first: where it awaits its children. */
	for (size_t j = t->nstack; j-- > 0 && tr->lines < TREE_MAX_LINES;) {
		printf("%s%s  ", tr->prefix,
		       tr->nchildren[i] ? "\u2502" : " ");
		print_coro(&t->stack[j]);
		printf("\n");
		tr->lines++;
	}
	tr->on_path[i] = true;
	for (size_t k = 0; k < tr->nchildren[i]; k++)
		tree_node(tr, tr->children[i][k], depth + 1,
			  k + 1 == tr->nchildren[i]);
	tr->on_path[i] = false;
	tr->prefix[plen] = '\0';
}

static int print_tree(const struct pyx_tasks *ts)
{
	struct tree tr = { .ts = ts };
	size_t n = ts->n, roots = 0;
	int ret = 0;

	tr.children = calloc(n ? n : 1, sizeof(*tr.children));
	tr.nchildren = calloc(n ? n : 1, sizeof(*tr.nchildren));
	tr.on_path = calloc(n ? n : 1, 1);
	tr.shown = calloc(n ? n : 1, 1);
	if (!tr.children || !tr.nchildren || !tr.on_path || !tr.shown) {
		ret = cmd_fail(-PYX_E_NOMEM);
		goto out;
	}
	/* The edges, from awaiter to awaited: counted first, then placed (a
	 * million links are no million reallocs). */
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < ts->tasks[i].nawaited_by; j++)
			tr.nchildren[ts->tasks[i].awaited_by[j]]++;
	for (size_t p = 0; p < n; p++) {
		if (!tr.nchildren[p])
			continue;
		if (!(tr.children[p] = malloc(tr.nchildren[p] *
					      sizeof(*tr.children[p])))) {
			ret = cmd_fail(-PYX_E_NOMEM);
			goto out;
		}
		tr.nchildren[p] = 0;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < ts->tasks[i].nawaited_by; j++) {
			size_t p = ts->tasks[i].awaited_by[j];

			tr.children[p][tr.nchildren[p]++] = i;
		}
	for (size_t i = 0; i < n; i++)
		roots += ts->tasks[i].nawaited_by == 0;
	for (size_t i = 0, r = 0; i < n; i++)
		if (ts->tasks[i].nawaited_by == 0)
			tree_node(&tr, i, 0, ++r == roots);
	/* What no root reaches waits in a cycle: start from each such task. */
	for (size_t i = 0; i < n && tr.lines < TREE_MAX_LINES; i++) {
		if (tr.shown[i])
			continue;
		printf("await cycle (no task outside it awaits it):\n");
		tree_node(&tr, i, 0, true);
	}
	if (tr.lines > TREE_MAX_LINES)
		printf("... cut at %d lines\n", TREE_MAX_LINES);
out:
	for (size_t i = 0; tr.children && i < n; i++)
		free(tr.children[i]);
	free(tr.children);
	free(tr.nchildren);
	free(tr.on_path);
	free(tr.shown);
	return ret;
}

/* ---- the command ------------------------------------------------------ */

static void print_json(const struct pyx_python_info *in, pid_t pid,
		       const struct pyx_stacks *s)
{
	const struct pyx_tasks *ts = s->tasks;

	printf("{\"pid\":%d,\"python_version\":", (int)pid);
	json_str(stdout, in->version);
	printf(",\"pause_ms\":%.6f,\"tasks\":[", s->pause_ms);
	for (size_t i = 0; i < ts->n; i++) {
		printf("%s", i ? "," : "");
		cmd_task_json(ts, i);
	}
	printf("],\"asyncio_imported\":%s,\"error\":",
	       ts->asyncio_imported ? "true" : "false");
	json_str(stdout, ts->error);
	printf("}\n");
}

enum {
	OPT_TREE = CMD_OPT_OWN,
};

static const struct cmd_opt tasks_opts[] = {
	CMD_OPTS_HELP,
	CMD_OPTS_VERBOSE,
	CMD_OPTS_JSON,
	{ "--tree", NULL, OPT_TREE, false },
	{ "--deadline-ms", NULL, CMD_OPT_DEADLINE_MS, true },
	CMD_OPTS_HOLD
	CMD_OPTS_PYTHON,
	CMD_OPTS_END
};

int do_tasks(int argc, char **argv)
{
	struct cmd_args args = CMD_ARGS("tasks", argc, argv);
	struct pyx_stacks_opts opts = { .tasks = true };
	struct pyx_python_opts popts = { 0 };
	struct pyx_target *tgt = NULL;
	struct pyx_python *py = NULL;
	struct pyx_stacks *s = NULL;
	struct cmd_target t = { 0 };
	const struct pyx_python_info *in;
	const char *val;
	bool json = false, tree = false;
	int id, err, ret = 0;

	while ((id = cmd_next(&args, tasks_opts, &val)) != CMD_ARG_END) {
		switch (id) {
		case CMD_ARG_ERROR:
			return 2;
		case CMD_OPT_HELP:
			help_tasks(stdout);
			return 0;
		case CMD_OPT_VERBOSE:
			cmd_set_verbose(true);
			break;
		case CMD_OPT_JSON:
			json = true;
			break;
		case OPT_TREE:
			tree = true;
			break;
		case CMD_ARG_WORD:
			if (cmd_target_arg("tasks", val, &t))
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
		return cmd_usage("tasks", "missing PID");
	if (json && tree)
		return cmd_usage("tasks", "--tree is text: not with --json "
				 "(its awaited_by lists are the tree)");
	if ((err = cmd_open_target(&t, &tgt)) ||
	    (err = pyx_python_open_opts(tgt, &popts, &py))) {
		ret = cmd_fail(err);
		goto out;
	}
	cmd_python_warn(py);
	if ((err = pyx_stacks_collect(py, &opts, &s))) {
		ret = cmd_fail(err);
		goto out;
	}
	in = pyx_python_info(py);
	if (json) {
		print_json(in, t.pid, s);
		goto out;
	}
	printf("Process %d: Python ", (int)t.pid);
	print_safe(stdout, in->version);
	printf(" (");
	print_safe(stdout, in->binary);
	printf(")\nPaused the target for %.3f ms\n", s->pause_ms);
	printf("%zu asyncio task%s%s\n", s->tasks->n, s->tasks->n == 1 ? "" : "s",
	       s->tasks->asyncio_imported || s->tasks->n ? ""
	       : " (asyncio is not imported in this process)");
	if (s->tasks->error) {
		printf("(the list may be incomplete: ");
		print_safe(stdout, s->tasks->error);
		printf(")\n");
	}
	if (tree) {
		printf("\n");
		ret = print_tree(s->tasks);
		goto out;
	}
	for (size_t i = 0; i < s->tasks->n; i++) {
		printf("\n");
		cmd_task_text(s->tasks, i, "");
	}
out:
	pyx_stacks_free(s);
	pyx_python_free(py);
	pyx_target_free(tgt);
	return ret;
}
