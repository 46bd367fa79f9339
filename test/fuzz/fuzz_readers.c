/* libFuzzer target: the stack, census and refs walkers on a synthetic image
 * (lib/target/image.h, docs/fuzzing.md).
 *
 * One input is one image file: the parser takes it first (it is fuzzed
 * too), then a python from the image's facts, then the walkers, each with
 * small bounds so that one execution stays short.  Everything is freed
 * (libFuzzer's leak check).  The seeds are captures of real processes
 * (test/fuzz/corpus, test/tools/pyx-image-capture.c); test/fuzz/regressions
 * holds inputs that once crashed.  scripts/fuzz.sh builds and runs it.
 *
 * The whole object graph (suspects, heap snapshots) is built on two
 * threads and on one, and the two must be the same (a hostile heap must
 * not make the result depend on the threads' timing): the snapshot's
 * graph (no leaves) for an image with an odd pid, suspects for the others.
 *
 * Set PYX_FUZZ_PRINT=1 to print what the walkers found (replaying one
 * input by hand).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"
#include "facts.h"
#include "image.h"
#include "referents.h"
#include "pyxray/census.h"
#include "pyxray/error.h"
#include "pyxray/heap.h"
#include "pyxray/refs.h"
#include "pyxray/stacks.h"
#include "pyxray/suspects.h"
#include "pyxray/target.h"
#include "pyxray/tasks.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A python from facts has no ELF file (py->elf NULL): the symbol and
 * section look-ups say "not defined", as for a stripped binary. */
static int print;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *p = getenv("PYX_FUZZ_PRINT");

	(void)argc;
	(void)argv;
	print = p && *p && *p != '0';
	/* The whole graph's rows in shares of a few rows (a build with
	 * -DPYX_TEST_HOOKS=ON): else an image's few hundred objects make one
	 * share, and the threads' code is not fuzzed */
	setenv("PYX_TEST_SHARE_ROWS", "8", 0);
	return 0;
}

/* Plain stacks, then with every frame's locals and every asyncio task
 * (stacks --locals --async): the locals reader and the task walker read
 * the same hostile memory. */
static void run_stacks(struct pyx_python *py, bool extra)
{
	struct pyx_stacks_opts o = { .max_depth = 64, .deadline_ms = 100,
				     .locals = extra, .tasks = extra };
	struct pyx_stacks *s = NULL;
	int err = pyx_stacks_collect(py, &o, &s);

	if (print) {
		printf("stacks%s: %s, %zu threads, %zu tasks\n",
		       extra ? " --locals --async" : "",
		       err ? pyx_strerror(err) : "ok", s ? s->nthreads : 0,
		       s && s->tasks ? s->tasks->n : 0);
		for (size_t i = 0; s && i < s->nthreads; i++)
			for (size_t j = 0; j < s->threads[i].nframes; j++)
				printf("  %s %s:%d\n",
				       s->threads[i].frames[j].function,
				       s->threads[i].frames[j].file,
				       s->threads[i].frames[j].line);
	}
	pyx_stacks_free(s);
}

/* The heap copy of an image is the image's writable ranges: a bound the
 * fuzzer's inputs never reach, but a mutated count cannot make it more. */
#define CAPTURE_OPTS { .deadline_ms = 100, .max_copy = 64u << 20, .retries = 1 }

/* Returns the type refs should look for (malloc'ed), or NULL. */
static char *run_census(struct pyx_python *py)
{
	struct pyx_census_opts o = { .capture = CAPTURE_OPTS };
	struct pyx_census *c = NULL;
	char *type = NULL;
	int err = pyx_census_take(py, &o, &c);

	if (!err && c->ntypes) {
		/* The rarest type: fewest targets, shortest search. */
		size_t best = 0;

		for (size_t i = 1; i < c->ntypes; i++)
			if (c->types[i].count < c->types[best].count)
				best = i;
		if (c->types[best].name)
			type = strdup(c->types[best].name);
	}
	if (print)
		printf("census: %s, %llu objects, %zu types\n",
		       err ? pyx_strerror(err) : "ok",
		       c ? (unsigned long long)c->objects : 0ULL,
		       c ? c->ntypes : 0);
	pyx_census_free(c);
	return type;
}

static void run_refs(struct pyx_python *py, const char *type)
{
	struct pyx_refs_opts o = {
		.type_name = type, .max_depth = 8, .max_groups = 3,
		.max_referrers = 5, .capture = CAPTURE_OPTS,
	};
	struct pyx_refs *r = NULL;
	int err = pyx_refs_take(py, &o, &r);

	if (print)
		printf("refs %s: %s, %llu targets, %zu groups\n", type,
		       err ? pyx_strerror(err) : "ok",
		       r ? (unsigned long long)r->targets : 0ULL,
		       r ? r->ngroups : 0);
	pyx_refs_free(r);
}

/* A digest of what the whole graph is, independent of the type ids
 * (given in the order threads meet types) and of the table of names and
 * keys (labels are compared by value on a few edges instead). */
static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + UINT64_C(0x9E3779B97F4A7C15) + (h << 6) + (h >> 2);
	return h * UINT64_C(0xff51afd7ed558ccd);
}

static uint64_t graph_digest(const struct pyx_refs_graph *g)
{
	uint64_t h = mix(0, g->n);
	char lab[256];

	h = mix(h, g->ntracked);
	h = mix(h, g->ne);
	h = mix(h, g->inferred_edges);
	h = mix(h, g->total_size);
	h = mix(h, g->unreachable);
	h = mix(h, g->unreachable_bytes);
	h = mix(h, g->bad_objects);
	h = mix(h, g->damaged_lists);
	h = mix(h, g->nroots);
	h = mix(h, g->nleaf);
	for (uint32_t v = 0; v < g->n; v++) {
		h = mix(h, g->addr[v]);
		h = mix(h, g->size[v]);
		h = mix(h, g->off[v]);
		h = mix(h, g->parent[v]);
		/* set only where a root reaches v */
		if (g->parent[v] != PYX_REFS_GRAPH_NONE)
			h = mix(h, g->pedge[v]);
	}
	h = mix(h, g->off[g->n]);
	for (uint64_t e = 0; e < g->ne; e++) {
		h = mix(h, g->dst[e]);
		h = mix(h, g->kind[e]);
		if (!pyx_refs_graph_aux_is_table(g->kind[e]))
			h = mix(h, g->aux[e]);
	}
	/* the labels of the first edges, by text */
	for (uint32_t v = 0; v < g->n && v < 64; v++)
		for (uint64_t e = g->off[v]; e < g->off[v + 1] &&
		     e < g->off[v] + 4; e++) {
			pyx_refs_graph_label(g, v, e, lab, sizeof(lab));
			for (const char *c = lab; *c; c++)
				h = mix(h, (uint8_t)*c);
		}
	return h;
}

/* The snapshot's graph (every object a node) on jobs threads: its digest,
 * or 0 when it could not be built. */
static char seen[2][256]; /* what each run found, for a difference */
/* Whether each run read a damaged heap (bad objects, cut lists): then the
 * answer is partial, and need not be the same on any number of threads
 * (a damaged pointer into an object gets its tag written over a field
 * another share may read before or after: docs/refs.md). */
static bool damaged[2];

static uint64_t run_graph(struct pyx_python *py, unsigned jobs)
{
	struct pyx_refs_graph_opts o = { .capture = CAPTURE_OPTS };
	struct pyx_refs_graph *g = NULL;
	uint64_t h = 0;
	int err;

	o.capture.jobs = jobs;
	err = pyx_refs_graph_take(py, &o, &g);
	if (!err)
		h = graph_digest(g) | 1;
	damaged[jobs > 1] = g && (g->partial || g->bad_objects ||
				  g->damaged_lists);
	snprintf(seen[jobs > 1], sizeof(seen[0]), "%s: %u nodes (%u "
		 "tracked), %llu edges (%llu inferred), %u roots, %llu "
		 "unreachable, %llu bad objects, %llu damaged lists, total %llu",
		 err ? pyx_strerror(err) : "ok", g ? g->n : 0,
		 g ? g->ntracked : 0, g ? (unsigned long long)g->ne : 0ULL,
		 g ? (unsigned long long)g->inferred_edges : 0ULL,
		 g ? g->nroots : 0, g ? (unsigned long long)g->unreachable : 0ULL,
		 g ? (unsigned long long)g->bad_objects : 0ULL,
		 g ? (unsigned long long)g->damaged_lists : 0ULL,
		 g ? (unsigned long long)g->total_size : 0ULL);
	if (print)
		printf("graph, %u threads: %s, %u nodes, %llu edges, digest "
		       "%016llx\n", jobs, err ? pyx_strerror(err) : "ok",
		       g ? g->n : 0, g ? (unsigned long long)g->ne : 0ULL,
		       (unsigned long long)h);
	pyx_refs_graph_free(g);
	pyx_err_clear();
	return h;
}

static uint64_t suspects_digest(const struct pyx_suspects *r)
{
	uint64_t h = mix(0, r->objects);

	h = mix(h, r->edges);
	h = mix(h, r->inferred_edges);
	h = mix(h, r->roots);
	h = mix(h, r->heap_bytes);
	h = mix(h, r->unreachable);
	h = mix(h, r->unreachable_bytes);
	h = mix(h, r->bad_objects);
	h = mix(h, r->damaged_lists);
	h = mix(h, r->nsuspects);
	for (size_t i = 0; i < r->nsuspects; i++) {
		const struct pyx_suspect *s = &r->suspects[i];

		h = mix(h, s->addr);
		h = mix(h, s->retained_bytes);
		h = mix(h, s->retained_objects);
		h = mix(h, s->npath);
		for (const char *c = s->description; c && *c; c++)
			h = mix(h, (uint8_t)*c);
	}
	return h;
}

/* suspects (the graph with leaves, the dominators) on jobs threads. */
static uint64_t run_suspects(struct pyx_python *py, unsigned jobs)
{
	struct pyx_suspects_opts o = { .top = 3, .types = 3,
				       .capture = CAPTURE_OPTS };
	struct pyx_suspects *r = NULL;
	uint64_t h = 0;
	int err;

	o.capture.jobs = jobs;
	err = pyx_suspects_take(py, &o, &r);

	if (!err)
		h = suspects_digest(r) | 1;
	damaged[jobs > 1] = r && (r->partial || r->bad_objects ||
				  r->damaged_lists);
	snprintf(seen[jobs > 1], sizeof(seen[0]), "%s: %llu objects, %llu "
		 "edges (%llu inferred), %llu roots, %llu unreachable, %llu "
		 "bad objects, %zu suspects, heap %llu",
		 err ? pyx_strerror(err) : "ok",
		 r ? (unsigned long long)r->objects : 0ULL,
		 r ? (unsigned long long)r->edges : 0ULL,
		 r ? (unsigned long long)r->inferred_edges : 0ULL,
		 r ? (unsigned long long)r->roots : 0ULL,
		 r ? (unsigned long long)r->unreachable : 0ULL,
		 r ? (unsigned long long)r->bad_objects : 0ULL,
		 r ? r->nsuspects : 0, r ? (unsigned long long)r->heap_bytes : 0ULL);
	if (print)
		printf("suspects, %u threads: %s, %llu objects, %zu suspects, "
		       "digest %016llx\n", jobs, err ? pyx_strerror(err) : "ok",
		       r ? (unsigned long long)r->objects : 0ULL,
		       r ? r->nsuspects : 0, (unsigned long long)h);
	pyx_suspects_free(r);
	pyx_err_clear();
	return h;
}

/* The same graph on one thread and on two, or a finding. */
static void run_whole(struct pyx_python *py, const uint8_t *data, size_t size)
{
	uint64_t (*fn)(struct pyx_python *, unsigned);
	uint64_t h2, h1;

	/* by the image's pid (its low byte, after the magic and the
	 * version): a regression input chooses by it */
	fn = size > 12 && (data[12] & 1) ? run_graph : run_suspects;
	h2 = fn(py, 2);
	h1 = fn(py, 1);
	/* an error on one of them only is a difference too; a damaged
	 * heap's partial answer is not held to it */
	if (h1 != h2 && !damaged[0] && !damaged[1]) {
		fprintf(stderr, "fuzz_readers: %s differs on one thread and on "
			"two: %016llx, %016llx\n", fn == run_graph ? "the graph"
			: "suspects", (unsigned long long)h1,
			(unsigned long long)h2);
		fprintf(stderr, "  one thread:  %s\n  two threads: %s\n",
			seen[0], seen[1]);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pyx_image_info info;
	struct pyx_python_facts facts = { 0 };
	struct pyx_target *tgt = NULL;
	struct pyx_python *py = NULL;
	char *type = NULL;

	if (pyx_image_open_buffer(data, size, &tgt, &info))
		return 0;
	pyx_image_python_facts(&info, &facts);
	if (pyx_python_open_facts(tgt, &facts, &py))
		goto out;
	run_stacks(py, false);
	run_stacks(py, true);
	/* An image is not stopped, and a collection recorded in it is
	 * refused at once (pyx_heap_capture): no sleep here. */
	type = run_census(py);
	run_refs(py, type ? type : "dict");
	run_whole(py, data, size);
out:
	free(type);
	pyx_python_free(py);
	pyx_target_free(tgt);
	pyx_err_clear();
	return 0;
}
