/* An arena over the heap copy's pages (see pages.h). */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "pages.h"

#define ALIGN 64
#define PAGE 4096
/* The live blocks tracked for popping, most recent last.  An older block
 * is no longer tracked: it stays until the arena goes (a few long-lived
 * arrays at the bottom; the temporaries are recent). */
#define TRACK 256

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PYX_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(PYX_ASAN)
#include <sanitizer/asan_interface.h>
/* What is not handed out is poisoned, and a block is followed by a red
 * zone: an overrun or a use after free in the arena is caught as in
 * malloc's memory. */
#define REDZONE ALIGN
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define REDZONE 0
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct block {
	size_t off;
	bool freed;
};

struct pyx_pages {
	uint8_t *base;
	size_t len;      /* mapped; page-aligned */
	size_t top;      /* bytes [0, top) handed out */
	size_t peak;
	size_t fallback_bytes;
	uint64_t fallbacks;
	struct block blk[TRACK];
	size_t nblk;
	pthread_mutex_t lock;
};

static size_t page_up(size_t n)
{
	return (n + PAGE - 1) & ~(size_t)(PAGE - 1);
}

struct pyx_pages *pyx_pages_new(void *buf, size_t len, size_t faulted)
{
	struct pyx_pages *pp;
	size_t keep;

	if (!buf)
		return NULL;
	keep = page_up(faulted < len ? faulted : len);
	if (keep > len)
		keep = len; /* len is page-aligned: not reached */
	if (keep < len)
		munmap((uint8_t *)buf + keep, len - keep);
	if (!keep || !(pp = calloc(1, sizeof(*pp)))) {
		if (keep)
			munmap(buf, keep);
		return NULL;
	}
	pp->base = buf;
	pp->len = keep;
	pthread_mutex_init(&pp->lock, NULL);
	POISON(pp->base, pp->len);
	return pp;
}

static bool owns(const struct pyx_pages *pp, const void *p)
{
	const uint8_t *u = p;

	/* unlocked: a block of the arena lies below len before and after a
	 * trim, and what malloc maps where the trim unmapped lies above */
	return pp && u >= pp->base &&
	       u < pp->base + __atomic_load_n(&pp->len, __ATOMIC_ACQUIRE);
}

void *pyx_pages_alloc(struct pyx_pages *pp, size_t n)
{
	void *p = NULL;
	size_t need;

	if (!pp)
		return malloc(n ? n : 1);
	need = (n ? (n + ALIGN - 1) & ~(size_t)(ALIGN - 1) : ALIGN) + REDZONE;
	pthread_mutex_lock(&pp->lock);
	if (need >= n && need <= pp->len - pp->top) {
		p = pp->base + pp->top;
		UNPOISON(p, n);
		if (pp->nblk == TRACK) {
			/* the oldest stays for good */
			memmove(pp->blk, pp->blk + 1,
				(TRACK - 1) * sizeof(pp->blk[0]));
			pp->nblk--;
		}
		pp->blk[pp->nblk++] = (struct block){ pp->top, false };
		pp->top += need;
		if (pp->top > pp->peak)
			pp->peak = pp->top;
	} else {
		pp->fallbacks++;
		pp->fallback_bytes += n;
	}
	pthread_mutex_unlock(&pp->lock);
	return p ? p : malloc(n ? n : 1);
}

void *pyx_pages_calloc(struct pyx_pages *pp, size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	if (!pp)
		return calloc(n ? n : 1, size ? size : 1);
	p = pyx_pages_alloc(pp, n * size);
	/* the copy's bytes, or a popped block's */
	if (p)
		memset(p, 0, n * size);
	return p;
}

void pyx_pages_free(struct pyx_pages *pp, void *p)
{
	size_t off;

	if (!p)
		return;
	if (!owns(pp, p)) {
		free(p);
		return;
	}
	off = (size_t)((uint8_t *)p - pp->base);
	pthread_mutex_lock(&pp->lock);
	for (size_t i = pp->nblk; i-- > 0;)
		if (pp->blk[i].off == off) {
			size_t end = i + 1 < pp->nblk ? pp->blk[i + 1].off
						      : pp->top;

			pp->blk[i].freed = true;
			POISON(pp->base + off, end - off);
			break;
		}
	/* the top block and the freed ones under it */
	while (pp->nblk && pp->blk[pp->nblk - 1].freed)
		pp->top = pp->blk[--pp->nblk].off;
	pthread_mutex_unlock(&pp->lock);
}

void pyx_pages_trim(struct pyx_pages *pp, size_t keep)
{
	size_t len;

	if (!pp)
		return;
	pthread_mutex_lock(&pp->lock);
	len = pp->len;
	if (keep < pp->top)
		keep = pp->top;
	keep = keep < len ? page_up(keep) : len;
	__atomic_store_n(&pp->len, keep, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&pp->lock);
	/* unlocked: no allocation reaches past len any more, and the unmap
	 * takes time (freeing each page) that other threads may use */
	if (keep < len) {
		uint64_t t = pyx_now_ns();

		/* the shadow of a mapping made there later must be clean */
		UNPOISON(pp->base + keep, len - keep);
		munmap(pp->base + keep, len - keep);
		pyx_debug("pages: %.1f MiB given back in %.1f ms",
			  (double)(len - keep) / 1048576.0,
			  (double)(pyx_now_ns() - t) / 1e6);
	}
}

void pyx_pages_get_stats(struct pyx_pages *pp, struct pyx_pages_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!pp)
		return;
	pthread_mutex_lock(&pp->lock);
	out->len = pp->len;
	out->used = pp->top;
	out->peak = pp->peak;
	out->fallback_bytes = pp->fallback_bytes;
	out->fallbacks = pp->fallbacks;
	pthread_mutex_unlock(&pp->lock);
}

struct zap {
	uint8_t *p;
	size_t len;
};

static void zap_run(void *arg)
{
	struct zap *z = arg;

	if (z->len)
		(void)madvise(z->p, z->len, MADV_DONTNEED);
}

/* Below this, one munmap: a thread costs more than it saves. */
#define ZAP_SPLIT (64u << 20)

void pyx_pages_release(struct pyx_pages *pp, unsigned jobs)
{
	if (!pp)
		return;
	pyx_debug("pages: %.1f MiB of the copy's reused (peak), %.1f MiB "
		  "mapped at the end; %.1f MiB in %llu blocks from malloc",
		  (double)pp->peak / 1048576.0, (double)pp->len / 1048576.0,
		  (double)pp->fallback_bytes / 1048576.0,
		  (unsigned long long)pp->fallbacks);
	if (pp->len) {
		UNPOISON(pp->base, pp->len);
		if (jobs > 1 && pp->len >= ZAP_SPLIT) {
			size_t half = page_up(pp->len / 2);
			struct zap z[2] = { { pp->base, half },
					    { pp->base + half, pp->len - half } };

			pyx_parallel(2, zap_run, z, sizeof(z[0]));
		}
		munmap(pp->base, pp->len);
	}
	pthread_mutex_destroy(&pp->lock);
	free(pp);
}
