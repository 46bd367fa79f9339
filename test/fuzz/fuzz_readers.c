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
#include "pyxray/census.h"
#include "pyxray/error.h"
#include "pyxray/heap.h"
#include "pyxray/refs.h"
#include "pyxray/stacks.h"
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
out:
	free(type);
	pyx_python_free(py);
	pyx_target_free(tgt);
	pyx_err_clear();
	return 0;
}
