/* Every asyncio task of a stopped target: where asyncio keeps them, what
 * each awaits, who awaits it, and which thread runs its loop.  What a
 * version's Task, Future and coroutine look like is the ABI layer's
 * (lib/abi/asyncio.h); this walker finds them and links them up, bounded
 * and cycle-checked: the target may hold anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncio.h"
#include "object.h"
#include "walk.h"

#define MAX_TASKS 100000       /* tasks (and candidates) read, in all */
#define MAX_CHAIN 256          /* coroutines in one await chain */
#define MAX_CALLBACKS 1024     /* done callbacks looked at per task */
#define MAX_CHILDREN 65536     /* a gather's children */
#define GATHER_DEPTH 8         /* gathers of gathers followed */
#define TYPE_CACHE 256         /* power of two */
/* The whole walk's bounds: the per-object ones above multiply (tasks x
 * callbacks x waiters, gathers of gathers), and a target can share one
 * deep chain or one big gather between all its tasks. */
#define MAX_FRAMES 250000      /* coroutine frames read, all tasks */
#define MAX_WORK 1000000       /* gather items, callbacks, awaited_by keys */
#define MAX_EDGES 1000000      /* who-awaits-whom links kept */
#define SEEN_SLOTS 4096        /* gathers expanded per awaiter: power of 2 */

struct type_slot {
	pyx_addr_t type;
	enum pyx_aw_kind kind;
	char name[64];
};

/* child is awaited by awaiter (indexes into out->tasks) */
struct edge {
	size_t child, awaiter;
};

/* A task by the future it waits on (sorted by waiter). */
struct by_waiter {
	pyx_addr_t waiter;
	size_t task;
};

struct ctx {
	struct pyx_python *py;
	struct pyx_code_cache *cc;
	struct pyx_tasks *out;
	pyx_addr_t *cand;          /* candidate objects, deduplicated below */
	size_t ncand, capcand;
	pyx_addr_t *waiter;        /* per task: its _fut_waiter */
	struct by_waiter *bw;      /* the tasks with a waiter, by it */
	size_t nbw;
	struct pyx_fut_info *fi;   /* per task */
	struct edge *edges;        /* deduplicated at the end */
	size_t nedges, capedges;
	size_t frames, work;       /* spent of MAX_FRAMES, MAX_WORK */
	pyx_addr_t seen[SEEN_SLOTS]; /* gathers expanded for one awaiter */
	uint16_t used[SEEN_SLOTS / 2]; /* its slots in use, to clear them */
	size_t nseen;
	struct type_slot types[TYPE_CACHE];
	char first_error[256];
};

const char *pyx_task_state_name(enum pyx_task_state s)
{
	switch (s) {
	case PYX_TASK_PENDING:
		return "pending";
	case PYX_TASK_CANCELLED:
		return "cancelled";
	case PYX_TASK_DONE:
		return "done";
	default:
		return "unknown";
	}
}

static void task_release(struct pyx_task *t)
{
	for (size_t i = 0; i < t->nstack; i++) {
		free(t->stack[i].function);
		free(t->stack[i].file);
	}
	free(t->stack);
	free(t->name);
	free(t->awaiting_type);
	free(t->awaited_by);
	free(t->error);
}

void pyx_tasks_free(struct pyx_tasks *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		task_release(&t->tasks[i]);
	free(t->tasks);
	free(t->error);
	free(t);
}

/* Keep the first problem met: the list may be incomplete because of it. */
static void note(struct ctx *c, int err)
{
	if (!c->first_error[0])
		snprintf(c->first_error, sizeof(c->first_error), "%s",
			 pyx_err_detail()[0] ? pyx_err_detail() : pyx_strerror(err));
	pyx_err_clear();
}

/* One unit of the walk's linking work; false once MAX_WORK is spent (the
 * links found so far stay, the list is marked incomplete). */
static bool spend(struct ctx *c)
{
	if (c->work < MAX_WORK) {
		c->work++;
		return true;
	}
	if (c->work++ == MAX_WORK && !c->first_error[0])
		snprintf(c->first_error, sizeof(c->first_error), "more than %d "
			 "gather children, callbacks and awaiters looked at: "
			 "the links past them not shown", MAX_WORK);
	return false;
}

static int kind_of(struct ctx *c, pyx_addr_t obj, enum pyx_aw_kind *kind,
		   const char **name)
{
	struct type_slot *s;
	pyx_addr_t tp;
	int err;

	*kind = PYX_AW_OTHER;
	if (name)
		*name = "";
	if ((err = pyx_obj_type(c->py, obj, &tp)))
		return err;
	s = &c->types[(tp >> 4) & (TYPE_CACHE - 1)];
	if (s->type != tp) {
		s->type = 0;
		if ((err = pyx_aw_kind_of_type(c->py, tp, &s->kind, s->name,
					       sizeof(s->name))))
			return err;
		s->type = tp;
	}
	*kind = s->kind;
	if (name)
		*name = s->name;
	return 0;
}

static int add_candidate(struct ctx *c, pyx_addr_t obj)
{
	if (!obj || (obj & 7))
		return 0;
	if (c->ncand >= MAX_TASKS)
		return pyx_err_set(PYX_E_BAD_MEMORY, "more than %d tasks: the "
				   "rest not shown", MAX_TASKS);
	if (c->ncand == c->capcand) {
		size_t ncap = c->capcand ? c->capcand * 2 : 64;
		pyx_addr_t *n = realloc(c->cand, ncap * sizeof(*n));

		if (!n)
			return -PYX_E_NOMEM;
		c->cand = n;
		c->capcand = ncap;
	}
	c->cand[c->ncand++] = obj;
	return 0;
}

/* ---- where the tasks are ---------------------------------------------- */

/* A set's members (is_weak: a WeakSet's data, a set of weakrefs). */
static int from_set(struct ctx *c, pyx_addr_t set, bool weak)
{
	pyx_addr_t *keys;
	size_t n;
	int err;

	if (!(keys = malloc(MAX_TASKS * sizeof(*keys))))
		return -PYX_E_NOMEM;
	err = pyx_set_keys(c->py, set, keys, MAX_TASKS, &n);
	for (size_t i = 0; !err && i < n; i++) {
		uint64_t obj = keys[i];

		if (weak && pyx_read_field(c->py, keys[i], PYX_L_WR_OBJECT, &obj)) {
			pyx_err_clear();
			continue;
		}
		err = add_candidate(c, obj);
	}
	free(keys);
	return err;
}

/* asyncio.tasks' sets: _all_tasks (3.8-3.11) or _scheduled_tasks (3.12+),
 * WeakSets, and _eager_tasks (3.12+), a set.  From 3.14 they hold only the
 * tasks that are not _asyncio's (those are in the thread lists). */
static int from_module(struct ctx *c, pyx_addr_t interp)
{
	static const struct {
		const char *name;
		bool weak;
	} sets[] = {
		{ "_all_tasks", true },
		{ "_scheduled_tasks", true },
		{ "_eager_tasks", false },
	};
	struct pyx_python *py = c->py;
	uint64_t modules, dict;
	pyx_addr_t mod, set;
	int err;

	if ((err = pyx_read_field(py, interp, PYX_L_IS_MODULES, &modules)) ||
	    !modules)
		return err;
	if (pyx_dict_get_str(py, modules, "asyncio.tasks", &mod)) {
		pyx_err_clear();
		return 0; /* no asyncio in this interpreter */
	}
	c->out->asyncio_imported = true;
	if ((err = pyx_read_field(py, mod, PYX_L_MODULE_DICT, &dict)))
		return err;
	for (size_t i = 0; i < PYX_ARRAY_SIZE(sets); i++) {
		pyx_addr_t data = 0;

		if (pyx_dict_get_str(py, dict, sets[i].name, &set)) {
			pyx_err_clear();
			continue;
		}
		if (sets[i].weak &&
		    (err = pyx_obj_getattr_str(py, set, "data", &data))) {
			note(c, err);
			continue;
		}
		if ((err = from_set(c, sets[i].weak ? data : set, sets[i].weak))) {
			if (err == -PYX_E_NOMEM || err == -PYX_E_EXITED)
				return err;
			note(c, err);
		}
	}
	return 0;
}

/* 3.14+: a circular list of C tasks (llist_node {next, prev}) at head. */
static int from_llist(struct ctx *c, pyx_addr_t head)
{
	struct pyx_chain_check cyc = PYX_CHAIN_CHECK_INIT;
	int32_t node = pyx_off(c->py, PYX_L_TASK_NODE);
	uint64_t p;
	int err;

	if ((err = pyx_mem_read_u64(c->py->mem, head, &p)))
		return err;
	for (size_t n = 0; p && p != head; n++) {
		if (n >= MAX_TASKS || pyx_chain_cycles(&cyc, p))
			return pyx_err_set(PYX_E_BAD_MEMORY, "the task list at "
					   PYX_PRIaddr " is corrupt", head);
		if ((err = add_candidate(c, p - (uint64_t)(int64_t)node)) ||
		    (err = pyx_mem_read_u64(c->py->mem, p, &p)))
			return err;
	}
	return 0;
}

static int from_lists(struct ctx *c, const struct pyx_stacks *s)
{
	struct pyx_python *py = c->py;
	int err;

	if (!pyx_layout_has(&py->layout, PYX_L_TSI_ASYNCIO_TASKS_HEAD) ||
	    !pyx_layout_has(&py->layout, PYX_L_TASK_NODE))
		return 0;
	for (size_t i = 0; i < s->nthreads; i++) {
		const struct pyx_thread *t = &s->threads[i];
		bool seen = false;

		if (!t->tstate)
			continue;
		if ((err = from_llist(c, t->tstate + (uint64_t)pyx_off(py,
				PYX_L_TSI_ASYNCIO_TASKS_HEAD)))) {
			if (err == -PYX_E_NOMEM || err == -PYX_E_EXITED)
				return err;
			note(c, err);
		}
		/* The tasks of threads that have exited: the interpreter's. */
		for (size_t j = 0; j < i; j++)
			seen |= s->threads[j].interp == t->interp;
		if (seen || !t->interp ||
		    !pyx_layout_has(&py->layout, PYX_L_IS_ASYNCIO_TASKS_HEAD))
			continue;
		if ((err = from_llist(c, t->interp + (uint64_t)pyx_off(py,
				PYX_L_IS_ASYNCIO_TASKS_HEAD)))) {
			if (err == -PYX_E_NOMEM || err == -PYX_E_EXITED)
				return err;
			note(c, err);
		}
	}
	return 0;
}

static int cmp_addr(const void *a, const void *b)
{
	pyx_addr_t x = *(const pyx_addr_t *)a, y = *(const pyx_addr_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- one task --------------------------------------------------------- */

static char *task_name(struct ctx *c, pyx_addr_t name)
{
	char buf[256];
	int64_t v;

	if (!name)
		return NULL;
	if (pyx_str_read(c->py, name, buf, sizeof(buf)) == 0)
		return strdup(buf);
	pyx_err_clear();
	/* 3.13+: an int N until get_name() makes it "Task-N". */
	if (pyx_long_read(c->py, name, &v) == 0) {
		snprintf(buf, sizeof(buf), "Task-%lld", (long long)v);
		return strdup(buf);
	}
	pyx_err_clear();
	return NULL;
}

static int push_coro(struct pyx_task *t, size_t *cap, char *function,
		     char *file, int line)
{
	if (t->nstack == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		struct pyx_coro_frame *n = realloc(t->stack, ncap * sizeof(*n));

		if (!n)
			return -PYX_E_NOMEM;
		t->stack = n;
		*cap = ncap;
	}
	t->stack[t->nstack++] = (struct pyx_coro_frame){ function, file, line };
	return 0;
}

/* The await chain from the task's coroutine inwards, then turned innermost
 * first. */
static int coro_chain(struct ctx *c, pyx_addr_t obj, struct pyx_task *t)
{
	struct pyx_chain_check cyc = PYX_CHAIN_CHECK_INIT;
	size_t cap = 0;
	int err = 0;

	for (size_t depth = 0; obj && depth < MAX_CHAIN; depth++) {
		enum pyx_aw_kind kind;
		struct pyx_gen_info gi;
		uint64_t next;
		char *function, *file;
		int line;

		if (c->frames >= MAX_FRAMES) {
			err = pyx_err_set(PYX_E_BAD_MEMORY, "more than %d "
					  "coroutine frames in all tasks: the "
					  "rest not read", MAX_FRAMES);
			break;
		}
		c->frames++;
		if (pyx_chain_cycles(&cyc, obj))
			return pyx_err_set(PYX_E_BAD_MEMORY, "the await chain "
					   "loops at " PYX_PRIaddr, obj);
		if ((err = kind_of(c, obj, &kind, NULL)))
			return err;
		if (kind == PYX_AW_ASEND || kind == PYX_AW_CORO_WRAPPER) {
			if ((err = pyx_read_field(c->py, obj, kind == PYX_AW_ASEND
					? PYX_L_ASEND_GEN : PYX_L_CORO_WRAPPER_CORO,
					&next)))
				return err;
			obj = next;
			continue;
		}
		if (kind != PYX_AW_CORO && kind != PYX_AW_GEN &&
		    kind != PYX_AW_ASYNC_GEN)
			break; /* a future, or something else: the end */
		if ((err = pyx_gen_inspect(c->py, obj, &gi)) || !gi.frame)
			break;
		if ((err = pyx_frame_describe(c->py, c->cc, gi.frame, &function,
					      &file, &line)))
			break;
		if ((err = push_coro(t, &cap, function, file, line))) {
			free(function);
			free(file);
			return err;
		}
		obj = gi.delegate;
	}
	for (size_t i = 0; i < t->nstack / 2; i++) {
		struct pyx_coro_frame tmp = t->stack[i];

		t->stack[i] = t->stack[t->nstack - 1 - i];
		t->stack[t->nstack - 1 - i] = tmp;
	}
	return err;
}

static int read_task(struct ctx *c, pyx_addr_t obj, enum pyx_aw_kind kind,
		     struct pyx_task *t, pyx_addr_t *waiter,
		     struct pyx_fut_info *fi)
{
	const char *wname;
	enum pyx_aw_kind wk;
	int err;

	t->addr = obj;
	t->python_impl = kind == PYX_AW_PY_TASK;
	t->state = PYX_TASK_UNKNOWN;
	if ((err = pyx_fut_read(c->py, obj, kind, fi)))
		return err;
	t->state = fi->state == PYX_FUT_PENDING ? PYX_TASK_PENDING
		 : fi->state == PYX_FUT_CANCELLED ? PYX_TASK_CANCELLED
		 : fi->state == PYX_FUT_FINISHED ? PYX_TASK_DONE
		 : PYX_TASK_UNKNOWN;
	t->loop = fi->loop;
	t->name = task_name(c, fi->name);
	/* Python's None is no waiter. */
	if (fi->waiter && kind_of(c, fi->waiter, &wk, &wname) == 0 &&
	    strcmp(wname, "NoneType") != 0) {
		t->awaiting = fi->waiter;
		if (!(t->awaiting_type = strdup(wname)))
			return -PYX_E_NOMEM;
	}
	pyx_err_clear();
	*waiter = t->awaiting;
	if (fi->coro)
		return coro_chain(c, fi->coro, t);
	return 0;
}

/* ---- who awaits whom -------------------------------------------------- */

static size_t find_task(const struct pyx_tasks *ts, pyx_addr_t addr)
{
	size_t lo = 0, hi = ts->n;

	/* tasks[] is sorted by address */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ts->tasks[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ts->n && ts->tasks[lo].addr == addr ? lo : SIZE_MAX;
}

/* child is awaited by awaiter (indexes); duplicates are dropped at the
 * end (sort_edges), so that a task named a thousand times costs no more
 * than a thousand appends. */
static int link(struct ctx *c, size_t child, size_t awaiter)
{
	if (child == SIZE_MAX || awaiter == SIZE_MAX)
		return 0;
	if (c->nedges >= MAX_EDGES) {
		if (!c->first_error[0])
			snprintf(c->first_error, sizeof(c->first_error),
				 "more than %d await links: the rest not "
				 "shown", MAX_EDGES);
		return 0;
	}
	if (c->nedges == c->capedges) {
		size_t ncap = c->capedges ? c->capedges * 2 : 64;
		struct edge *n = realloc(c->edges, ncap * sizeof(*n));

		if (!n)
			return -PYX_E_NOMEM;
		c->edges = n;
		c->capedges = ncap;
	}
	c->edges[c->nedges++] = (struct edge){ child, awaiter };
	return 0;
}

static int cmp_edge(const void *a, const void *b)
{
	const struct edge *x = a, *y = b;

	if (x->child != y->child)
		return x->child < y->child ? -1 : 1;
	return x->awaiter < y->awaiter ? -1 : x->awaiter > y->awaiter;
}

/* The links, deduplicated, into each task's awaited_by[]. */
static int sort_edges(struct ctx *c)
{
	size_t i = 0;

	if (!c->nedges)
		return 0;
	qsort(c->edges, c->nedges, sizeof(*c->edges), cmp_edge);
	while (i < c->nedges) {
		struct pyx_task *t = &c->out->tasks[c->edges[i].child];
		size_t j = i, n = 0;

		for (; j < c->nedges && c->edges[j].child == c->edges[i].child; j++)
			n += j == i || c->edges[j].awaiter != c->edges[j - 1].awaiter;
		if (!(t->awaited_by = malloc(n * sizeof(*t->awaited_by))))
			return -PYX_E_NOMEM;
		for (size_t k = i; k < j; k++)
			if (k == i || c->edges[k].awaiter != c->edges[k - 1].awaiter)
				t->awaited_by[t->nawaited_by++] = c->edges[k].awaiter;
		i = j;
	}
	return 0;
}

/* Whether the gather g was expanded for this awaiter already (then it is
 * not again: a gather that holds itself, or one shared by many); false
 * with it recorded.  A full table says yes: the rest is not followed. */
static bool seen_gather(struct ctx *c, pyx_addr_t g)
{
	size_t h = (size_t)((g >> 4) * UINT64_C(0x9e3779b97f4a7c15) >> 52);

	for (size_t k = 0; k < SEEN_SLOTS; k++) {
		pyx_addr_t *s = &c->seen[(h + k) & (SEEN_SLOTS - 1)];

		if (*s == g)
			return true;
		if (!*s) {
			if (c->nseen >= SEEN_SLOTS / 2)
				return true;
			*s = g;
			c->used[c->nseen++] = (uint16_t)((h + k) & (SEEN_SLOTS - 1));
			return false;
		}
	}
	return true;
}

/* The tasks a future stands for: itself if a task, a gather's children. */
static int link_future(struct ctx *c, pyx_addr_t fut, size_t awaiter,
		       int depth)
{
	enum pyx_aw_kind kind;
	pyx_addr_t children, tp, *items = NULL;
	size_t n;
	int err;

	if (depth > GATHER_DEPTH || !spend(c) || kind_of(c, fut, &kind, NULL))
		return 0;
	if (pyx_aw_is_task(kind))
		return link(c, find_task(c->out, fut), awaiter);
	if (!pyx_aw_is_future(kind) || pyx_obj_type(c->py, fut, &tp) ||
	    !pyx_type_named(c->py, tp, "_GatheringFuture") ||
	    seen_gather(c, fut) ||
	    pyx_obj_getattr_str(c->py, fut, "_children", &children))
		return 0;
	if (!(items = malloc(MAX_CHILDREN * sizeof(*items))))
		return -PYX_E_NOMEM;
	err = pyx_seq_items(c->py, children, items, MAX_CHILDREN, &n);
	for (size_t i = 0; !err && i < n && i < MAX_CHILDREN &&
			   c->work < MAX_WORK; i++)
		err = link_future(c, items[i], awaiter, depth + 1);
	free(items);
	if (err && err != -PYX_E_NOMEM && err != -PYX_E_EXITED)
		err = 0;
	return err;
}

static bool func_named(struct ctx *c, pyx_addr_t func, const char *name)
{
	uint64_t n;

	if (!pyx_obj_is(c->py, func, c->py->types.function, 0) ||
	    pyx_read_field(c->py, func, PYX_L_FUNC_NAME, &n))
		return false;
	return pyx_str_equals(c->py, n, name);
}

/* One done callback of task i: a TaskGroup's _on_task_done (bound to the
 * group: its _parent_task awaits the task), or shield()'s
 * _inner_done_callback (its closure holds the outer future: whoever waits
 * on that awaits the task). */
static int link_callback(struct ctx *c, size_t i, pyx_addr_t cb)
{
	struct pyx_python *py = c->py;
	uint64_t func, self, closure;
	pyx_addr_t parent, cells[16];
	size_t n;

	if (pyx_obj_is(py, cb, py->types.method, 0)) {
		if (pyx_read_field(py, cb, PYX_L_METHOD_FUNC, &func) ||
		    pyx_read_field(py, cb, PYX_L_METHOD_SELF, &self) ||
		    !func_named(c, func, "_on_task_done") ||
		    pyx_obj_getattr_str(py, self, "_parent_task", &parent))
			return 0;
		return link(c, i, find_task(c->out, parent));
	}
	if (!func_named(c, cb, "_inner_done_callback") ||
	    pyx_read_field(py, cb, PYX_L_FUNC_CLOSURE, &closure) || !closure ||
	    pyx_seq_items(py, closure, cells, PYX_ARRAY_SIZE(cells), &n))
		return 0;
	for (size_t k = 0; k < n && k < PYX_ARRAY_SIZE(cells); k++) {
		uint64_t outer;

		size_t lo = 0, hi = c->nbw;

		if (!pyx_obj_is(py, cells[k], py->types.cell, 0) ||
		    pyx_read_field(py, cells[k], PYX_L_CELL_REF, &outer) || !outer)
			continue;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (c->bw[mid].waiter < outer)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < c->nbw && c->bw[lo].waiter == outer && spend(c);
		     lo++) {
			int err = link(c, i, c->bw[lo].task);

			if (err)
				return err;
		}
	}
	return 0;
}

static int cmp_by_waiter(const void *a, const void *b)
{
	const struct by_waiter *x = a, *y = b;

	return x->waiter < y->waiter ? -1 : x->waiter > y->waiter;
}

static int link_callbacks(struct ctx *c, size_t i)
{
	const struct pyx_fut_info *fi = &c->fi[i];
	pyx_addr_t *items = NULL;
	size_t n = 0, m = 0;
	int err = 0;

	if (fi->callback0 && (err = link_callback(c, i, fi->callback0)))
		return err;
	if (!fi->callbacks)
		return 0;
	if (!(items = malloc(MAX_CALLBACKS * sizeof(*items))))
		return -PYX_E_NOMEM;
	if (pyx_seq_items(c->py, fi->callbacks, items, MAX_CALLBACKS, &n))
		n = 0;
	/* The callbacks of the (callback, context) pairs, each once: one
	 * function added a thousand times is looked at once. */
	for (size_t k = 0; k < n && k < MAX_CALLBACKS && spend(c); k++) {
		pyx_addr_t pair[2];
		size_t np;

		if (pyx_seq_items(c->py, items[k], pair, 2, &np) || np < 1)
			continue;
		items[m++] = pair[0];
	}
	pyx_err_clear();
	qsort(items, m, sizeof(*items), cmp_addr);
	for (size_t k = 0; !err && k < m; k++)
		if (!k || items[k] != items[k - 1])
			err = link_callback(c, i, items[k]);
	free(items);
	return err;
}

/* 3.14+: asyncio's own record (future_add_to_awaited_by): a task or a
 * set of tasks. */
static int link_awaited_by(struct ctx *c, size_t i)
{
	const struct pyx_fut_info *fi = &c->fi[i];
	pyx_addr_t *keys;
	size_t n;
	int err = 0;

	if (!fi->awaited_by)
		return 0;
	if (!fi->awaited_by_is_set)
		return link(c, i, find_task(c->out, fi->awaited_by));
	if (!(keys = malloc(MAX_CHILDREN * sizeof(*keys))))
		return -PYX_E_NOMEM;
	if (pyx_set_keys(c->py, fi->awaited_by, keys, MAX_CHILDREN, &n))
		n = 0;
	for (size_t k = 0; !err && k < n && spend(c); k++)
		err = link(c, i, find_task(c->out, keys[k]));
	free(keys);
	return err;
}

/* ---- threads ---------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The loop each thread runs: self of BaseEventLoop.run_forever/_run_once
 * on its stack (every version, pure Python or not), or 3.14's
 * running-loop slot of the thread state. */
static void assign_threads(struct ctx *c, const struct pyx_stacks *s)
{
	struct pyx_python *py = c->py;

	for (size_t i = 0; i < s->nthreads; i++) {
		const struct pyx_thread *th = &s->threads[i];
		uint64_t loop = 0;

		for (size_t j = 0; !loop && j < th->nframes; j++) {
			const struct pyx_frame *f = &th->frames[j];

			if ((strcmp(f->name, "run_forever") != 0 &&
			     strcmp(f->name, "_run_once") != 0) ||
			    !ends_with(f->file, "base_events.py"))
				continue;
			if (pyx_frame_slot(py, f->frame, 0, &loop))
				loop = 0;
		}
		if (!loop && th->tstate &&
		    pyx_layout_has(&py->layout, PYX_L_TSI_ASYNCIO_RUNNING_LOOP) &&
		    pyx_read_field(py, th->tstate, PYX_L_TSI_ASYNCIO_RUNNING_LOOP,
				   &loop))
			loop = 0;
		pyx_err_clear();
		if (!loop)
			continue;
		for (size_t k = 0; k < c->out->n; k++) {
			struct pyx_task *t = &c->out->tasks[k];

			if (t->loop == loop && !t->has_thread) {
				t->has_thread = true;
				t->thread_id = th->thread_id;
			}
		}
	}
}

/* ---- the walk --------------------------------------------------------- */

static int walk(struct ctx *c, const struct pyx_stacks *s)
{
	struct pyx_python *py = c->py;
	pyx_addr_t interps[PYX_MAX_INTERPRETERS];
	size_t ninterp, cap = 0;
	int err;

	if ((err = pyx_python_interps(py, interps, PYX_MAX_INTERPRETERS,
				      &ninterp)))
		return err;
	for (size_t i = 0; i < ninterp; i++)
		if ((err = from_module(c, interps[i])))
			return err;
	/* The C task layout: from 3.14 the lists need it first. */
	if (pyx_asyncio_layout(py))
		pyx_err_clear();
	if ((err = from_lists(c, s)))
		return err;
	if (c->ncand)
		qsort(c->cand, c->ncand, sizeof(*c->cand), cmp_addr);
	c->waiter = calloc(c->ncand ? c->ncand : 1, sizeof(*c->waiter));
	c->fi = calloc(c->ncand ? c->ncand : 1, sizeof(*c->fi));
	if (!c->waiter || !c->fi)
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < c->ncand; i++) {
		enum pyx_aw_kind kind;
		struct pyx_task *t;

		if (i && c->cand[i] == c->cand[i - 1])
			continue;
		if ((err = kind_of(c, c->cand[i], &kind, NULL)) ||
		    !pyx_aw_is_task(kind)) {
			if (err == -PYX_E_EXITED)
				return err;
			if (err)
				note(c, err);
			continue;
		}
		if (c->out->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct pyx_task *n = realloc(c->out->tasks,
						     ncap * sizeof(*n));

			if (!n)
				return -PYX_E_NOMEM;
			c->out->tasks = n;
			cap = ncap;
		}
		t = &c->out->tasks[c->out->n++];
		memset(t, 0, sizeof(*t));
		err = read_task(c, c->cand[i], kind, t, &c->waiter[c->out->n - 1],
				&c->fi[c->out->n - 1]);
		if (err == -PYX_E_EXITED || err == -PYX_E_NOMEM)
			return err;
		if (err) {
			t->error = strdup(pyx_err_detail()[0] ? pyx_err_detail()
							       : pyx_strerror(err));
			pyx_err_clear();
		}
	}
	/* Who awaits whom, now that every task has an index. */
	if (!(c->bw = malloc((c->out->n ? c->out->n : 1) * sizeof(*c->bw))))
		return -PYX_E_NOMEM;
	for (size_t i = 0; i < c->out->n; i++)
		if (c->waiter[i])
			c->bw[c->nbw++] = (struct by_waiter){ c->waiter[i], i };
	qsort(c->bw, c->nbw, sizeof(*c->bw), cmp_by_waiter);
	for (size_t i = 0; i < c->out->n; i++) {
		if (c->waiter[i]) {
			while (c->nseen)
				c->seen[c->used[--c->nseen]] = 0;
			if ((err = link_future(c, c->waiter[i], i, 0)))
				return err;
		}
		if ((err = link_callbacks(c, i)) ||
		    (err = link_awaited_by(c, i)))
			return err;
		pyx_err_clear();
	}
	if ((err = sort_edges(c)))
		return err;
	assign_threads(c, s);
	return 0;
}

int pyx_tasks_walk(struct pyx_python *py, struct pyx_code_cache *cc,
		   const struct pyx_stacks *s, struct pyx_tasks **out)
{
	struct ctx *c = calloc(1, sizeof(*c));
	int err;

	*out = NULL;
	if (!c || !(c->out = calloc(1, sizeof(*c->out)))) {
		free(c);
		return -PYX_E_NOMEM;
	}
	c->py = py;
	c->cc = cc;
	err = walk(c, s);
	if (err && err != -PYX_E_EXITED && err != -PYX_E_NOMEM) {
		note(c, err);
		err = 0;
	}
	if (!err && c->first_error[0] && !(c->out->error = strdup(c->first_error)))
		err = -PYX_E_NOMEM;
	free(c->cand);
	free(c->waiter);
	free(c->bw);
	free(c->edges);
	free(c->fi);
	if (err) {
		pyx_tasks_free(c->out);
		free(c);
		return err;
	}
	*out = c->out;
	free(c);
	return 0;
}
