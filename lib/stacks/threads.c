/* Interpreters and their thread states: ids, GIL holder, names. */
#include <stdlib.h>
#include <string.h>

#include "object.h"
#include "walk.h"

#define MAX_THREADS 65536
#define PYX_MAX_FRAMES_TOTAL (1u << 18)

void pyx_thread_release(struct pyx_thread *t)
{
	for (size_t i = 0; i < t->nframes; i++) {
		pyx_frame_locals_release(&t->frames[i]);
		free(t->frames[i].function);
		free(t->frames[i].name);
		free(t->frames[i].file);
	}
	free(t->frames);
	free(t->name);
	free(t->error);
	memset(t, 0, sizeof(*t));
}

struct names_ctx {
	struct pyx_python *py;
	struct pyx_thread *threads;
	size_t n;
	pyx_addr_t interp;
};

static int name_thread(void *vctx, pyx_addr_t key, pyx_addr_t thread)
{
	struct names_ctx *c = vctx;
	int64_t ident, native;
	pyx_addr_t name, nid;
	char buf[256];

	if (pyx_long_read(c->py, key, &ident))
		return 0;
	for (size_t i = 0; i < c->n; i++) {
		struct pyx_thread *t = &c->threads[i];

		if (t->interp != c->interp || t->thread_id != (uint64_t)ident)
			continue;
		if (!t->name && pyx_obj_getattr_str(c->py, thread, "_name", &name) == 0 &&
		    pyx_str_read(c->py, name, buf, sizeof(buf)) == 0)
			t->name = strdup(buf);
		/* threading's _native_id is gettid() inside the target. */
		if (t->ns_native_id < 0 && t->native_id < 0 &&
		    pyx_obj_getattr_str(c->py, thread, "_native_id", &nid) == 0 &&
		    pyx_long_read(c->py, nid, &native) == 0)
			t->ns_native_id = native;
	}
	return 0;
}

/* Names from threading._active, {ident: Thread}, if threading is loaded.
 * Best effort: a thread without a name is still a thread. */
static void name_interp_threads(struct pyx_python *py, pyx_addr_t interp,
				struct pyx_stacks *s)
{
	struct names_ctx c = { py, s->threads, s->nthreads, interp };
	uint64_t modules;
	pyx_addr_t mod, dict, active;

	if (pyx_read_field(py, interp, PYX_L_IS_MODULES, &modules) || !modules ||
	    pyx_dict_get_str(py, modules, "threading", &mod) ||
	    pyx_read_field(py, mod, PYX_L_MODULE_DICT, &dict) || !dict ||
	    pyx_dict_get_str(py, dict, "_active", &active))
		return;
	pyx_dict_foreach(py, active, MAX_THREADS, name_thread, &c);
}

void pyx_threads_name(struct pyx_python *py, struct pyx_stacks *s)
{
	for (size_t i = 0; i < s->nthreads; i++) {
		bool seen = false;

		if (!s->threads[i].interp)
			continue;
		for (size_t j = 0; j < i; j++)
			seen |= s->threads[j].interp == s->threads[i].interp;
		if (!seen)
			name_interp_threads(py, s->threads[i].interp, s);
	}
	pyx_err_clear();
	pyx_threads_resolve_tids(py, s);
}

void pyx_threads_resolve_tids(struct pyx_python *py, struct pyx_stacks *s)
{
	struct { pid_t host, ns; } *map = NULL;
	const pid_t *tids;
	size_t n = 0;

	if (pyx_target_same_pidns(py->tgt)) {
		for (size_t i = 0; i < s->nthreads; i++) {
			struct pyx_thread *t = &s->threads[i];

			if (t->native_id < 0)
				t->native_id = t->ns_native_id;
			t->ns_native_id = t->native_id;
		}
		return;
	}
	/* A container: the interpreter knows its threads by the TIDs of its
	 * own namespace; /proc/PID/task/TID/status (NSpid) has both. */
	tids = pyx_target_threads(py->tgt, &n);
	map = n ? calloc(n, sizeof(*map)) : NULL;
	for (size_t i = 0; map && i < n; i++) {
		pid_t ns = -1;

		map[i].host = tids[i];
		map[i].ns = pyx_target_ns_tid(py->tgt, tids[i], &ns) ? -1 : ns;
	}
	for (size_t i = 0; map && i < s->nthreads; i++) {
		struct pyx_thread *t = &s->threads[i];

		for (size_t j = 0; j < n; j++) {
			if (t->native_id < 0 && t->ns_native_id == map[j].ns)
				t->native_id = map[j].host;
			else if (t->ns_native_id < 0 && t->native_id == map[j].host)
				t->ns_native_id = map[j].ns;
		}
	}
	free(map);
	pyx_err_clear();
}

/* Before 3.11 a thread state has only the pthread_t; with the target
 * stopped, each thread's TLS base (glibc's pthread_self()) maps it to a
 * TID. */
static void native_ids_from_tls(struct pyx_python *py, struct pyx_stacks *s)
{
	const pid_t *tids;
	size_t n;

	/* 3.11+ thread states carry the TID: spare the register reads. */
	for (n = 0; n < s->nthreads; n++)
		if (s->threads[n].native_id < 0 && s->threads[n].ns_native_id < 0)
			break;
	if (n == s->nthreads)
		return;
	tids = pyx_target_threads(py->tgt, &n);
	for (size_t i = 0; i < n; i++) {
		pyx_addr_t tls;

		if (pyx_target_thread_tls(py->tgt, tids[i], &tls))
			continue;
		for (size_t j = 0; j < s->nthreads; j++)
			if (s->threads[j].native_id < 0 &&
			    s->threads[j].thread_id == tls)
				s->threads[j].native_id = tids[i];
	}
}

int pyx_threads_walk(struct pyx_python *py, struct pyx_code_cache *cc,
		     size_t max_depth, bool stopped, struct pyx_stacks *s)
{
	pyx_addr_t interps[PYX_MAX_INTERPRETERS];
	size_t cap = 0, ninterp, budget = PYX_MAX_FRAMES_TOTAL;
	int err;

	if ((err = pyx_python_interps(py, interps, PYX_MAX_INTERPRETERS, &ninterp)))
		return err;
	for (size_t ii = 0; ii < ninterp; ii++) {
		pyx_addr_t interp = interps[ii];
		uint64_t id, tstate, holder;
		size_t nts = 0;

		if ((err = pyx_read_field(py, interp, PYX_L_IS_ID, &id)) ||
		    (err = pyx_read_field(py, interp, PYX_L_IS_TSTATE_HEAD, &tstate)))
			return err;
		struct pyx_chain_check cyc = PYX_CHAIN_CHECK_INIT;

		holder = pyx_abi_gil_holder(py, interp);
		for (; tstate; nts++) {
			struct pyx_thread *t;
			uint64_t tid, ntid;

			if (pyx_chain_cycles(&cyc, tstate))
				return pyx_err_set(PYX_E_BAD_MEMORY, "the thread "
						   "list loops at " PYX_PRIaddr
						   ": it changed while read", tstate);
			if (nts >= MAX_THREADS)
				return pyx_err_set(PYX_E_BAD_MEMORY, "more than %d "
						   "threads: list corrupt",
						   MAX_THREADS);
			if (s->nthreads == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct pyx_thread *nt =
					realloc(s->threads, ncap * sizeof(*nt));

				if (!nt)
					return -PYX_E_NOMEM;
				s->threads = nt;
				cap = ncap;
			}
			t = &s->threads[s->nthreads++];
			memset(t, 0, sizeof(*t));
			t->tstate = tstate;
			t->interp_id = (int64_t)id;
			t->native_id = -1;
			t->ns_native_id = -1;
			t->interp = interp;
			t->holds_gil = holder && holder == tstate;
			if ((err = pyx_read_field(py, tstate, PYX_L_TS_THREAD_ID, &tid)))
				return err;
			t->thread_id = tid;
			if (pyx_layout_has(&py->layout, PYX_L_TS_NATIVE_THREAD_ID)) {
				if ((err = pyx_read_field(py, tstate,
						PYX_L_TS_NATIVE_THREAD_ID, &ntid)))
					return err;
				t->ns_native_id = (int64_t)ntid;
			}
			/* One budget for the whole walk: memory stays bounded
			 * whatever the lists say. */
			if ((err = pyx_frames_walk(py, cc, tstate,
					max_depth < budget ? max_depth : budget, t)))
				return err;
			budget -= t->nframes < budget ? t->nframes : budget;
			if ((err = pyx_read_field(py, tstate, PYX_L_TS_NEXT, &tstate)))
				return err;
		}
	}
	if (stopped)
		native_ids_from_tls(py, s);
	pyx_threads_resolve_tids(py, s);
	return 0;
}
