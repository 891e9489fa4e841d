/*
 * atomic_overlap: a pure-syscall reproducer for concurrent RWF_ATOMIC writes
 * to one range on XFS (software atomic writes, i.e. CoW) exposing blocks of
 * zeros or stale data to direct readers. See docs/xfs-atomic-overlap.md.
 *
 * Threads: WRITERS pwritev2(RWF_ATOMIC) whole REGION-byte regions picked at
 * random among REGIONS; READERS preadv2 whole regions. Nothing but pthreads and
 * the two syscalls on one O_DIRECT fd. Every 512-byte sector carries a magic,
 * its region, a generation, its index and a CRC32, so each read is classified:
 *   torn     sectors of two generations of the region
 *   zero     a sector of zeros (every region was written before the run)
 *   stale    valid sectors of another region or place, data that is not ours
 *            (no magic: blocks that held something else), or one generation
 *            older than a write that completed before the read began and was
 *            issued after that generation's write completed
 *   corrupt  our magic with a bad CRC, or a generation never issued
 * Each bad read also says whether two or more writes to its region were in
 * flight when the read began or ended. After the run, with nothing in flight,
 * every region is read once more (badAtEnd: damage that stayed).
 *
 * --serialize   writers hold a per-region mutex across the write (ordering
 *               overlapping writes, what odirect does on XFS): the anomaly goes.
 * --plain K     the first K writers write without RWF_ATOMIC (plain O_DIRECT):
 *               torn reads are then expected; zero and stale are not.
 * --atomic 0    no writer uses RWF_ATOMIC.
 *
 * Built by the bench next to atomic_ref (bench/src/contenders/cref.ts):
 *   cc -O2 -Wall -pthread -o bench/bin/atomic_overlap bench/ref/atomic_overlap.c
 *
 * Usage: atomic_overlap --file PATH [--regions 4] [--region-size 65536]
 *          [--writers 4] [--readers 4] [--seconds 30] [--serialize] [--plain K]
 * Prints one JSON object on stdout. Exit 0 when the run completed (whatever it
 * found), 1 on an I/O error or bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef RWF_ATOMIC
#define RWF_ATOMIC 0x00000040 /* Linux 6.11 (block devices), 6.13 (filesystems) */
#endif

#define SECTOR 512
#define MAGIC 0x4f445641u /* "ODVA", as lib/verify/blocks.ts */
#define MAX_REGIONS 1024
#define RING 65536 /* completion records kept per region */
#define MAX_EXAMPLES 8

static const char *file_path;
static int regions = 4, writers = 4, readers = 4, plain_writers = 0, serialize = 0, use_atomic = 1;
static size_t region_size = 65536;
static double seconds = 30;
static int fd;
static atomic_int stop;
static atomic_uint_fast64_t seq; /* orders issues and completions */

struct region {
	atomic_uint next_gen;                 /* last generation handed out */
	atomic_int inflight;                  /* writes to it in flight */
	atomic_uint_fast64_t completed_issue; /* max issue seq among completed writes */
	pthread_mutex_t lock;                 /* --serialize */
	/* complete_seq of generation g at [g % RING], tagged with g */
	_Atomic uint64_t done_gen[RING];
	_Atomic uint64_t done_seq[RING];
};
static struct region *reg;

static struct {
	atomic_ulong writes, reads, torn, zero, stale, corrupt, bad_while_overlapped;
} count;

static pthread_mutex_t examples_lock = PTHREAD_MUTEX_INITIALIZER;
static char examples[MAX_EXAMPLES][224];
static int n_examples;

static uint32_t crc_table[256];
static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	while (n--) c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static void fill(unsigned char *buf, uint32_t region, uint32_t gen)
{
	for (uint32_t s = 0; s * SECTOR < region_size; s++) {
		unsigned char *p = buf + (size_t)s * SECTOR;
		put32(p, MAGIC);
		put32(p + 4, region);
		put32(p + 8, gen);
		put32(p + 12, s);
		uint32_t x = region * 2654435761u + gen * 40503u + s * 9973u;
		for (int i = 16; i < SECTOR - 4; i += 4) {
			x ^= x << 13; x ^= x >> 17; x ^= x << 5;
			put32(p + i, x);
		}
		put32(p + SECTOR - 4, crc32_of(p, SECTOR - 4));
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static void fail(const char *what, ssize_t got)
{
	printf("{\"error\": \"%s: %s (returned %zd)\"}\n", what, got < 0 ? strerror(errno) : "short", got);
	exit(1);
}

static void *writer(void *arg)
{
	int id = (int)(intptr_t)arg;
	int flags = use_atomic && id >= plain_writers ? RWF_ATOMIC : 0;
	uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
	unsigned char *buf;
	if (posix_memalign((void **)&buf, 4096, region_size)) fail("posix_memalign", -1);
	while (!atomic_load(&stop)) {
		uint32_t r = (uint32_t)(xorshift(&rng) % (uint64_t)regions);
		struct region *g = &reg[r];
		if (serialize) pthread_mutex_lock(&g->lock);
		uint32_t gen = atomic_fetch_add(&g->next_gen, 1) + 1;
		fill(buf, r, gen);
		struct iovec iov = { buf, region_size };
		uint64_t issued = atomic_fetch_add(&seq, 1);
		atomic_fetch_add(&g->inflight, 1);
		ssize_t n = pwritev2(fd, &iov, 1, (off_t)r * (off_t)region_size, flags);
		atomic_fetch_sub(&g->inflight, 1);
		uint64_t done = atomic_fetch_add(&seq, 1);
		if (n != (ssize_t)region_size) fail("pwritev2", n);
		atomic_store(&g->done_seq[gen % RING], done);
		atomic_store(&g->done_gen[gen % RING], gen);
		uint64_t prev = atomic_load(&g->completed_issue);
		while (prev < issued && !atomic_compare_exchange_weak(&g->completed_issue, &prev, issued)) {}
		if (serialize) pthread_mutex_unlock(&g->lock);
		atomic_fetch_add(&count.writes, 1);
	}
	free(buf);
	return NULL;
}

enum verdict { WHOLE, TORN, ZERO, STALE, CORRUPT };
static const char *names[] = { "whole", "torn", "zero", "stale", "corrupt" };

static enum verdict classify(const unsigned char *buf, uint32_t r, uint64_t floor, char *why, size_t whylen)
{
	int zero = 0, foreign = 0, corrupt = 0;
	uint32_t lo = UINT32_MAX, hi = 0;
	for (uint32_t s = 0; s * SECTOR < region_size; s++) {
		const unsigned char *p = buf + (size_t)s * SECTOR;
		int all_zero = 1;
		for (int i = 0; i < SECTOR && all_zero; i += 8) all_zero = *(const uint64_t *)(p + i) == 0;
		if (all_zero) { zero++; continue; }
		if (get32(p) != MAGIC) { /* not ours: old contents of blocks that held something else */
			if (!foreign) snprintf(why, whylen, "sector %u holds data that is not ours (no magic)", s);
			foreign++;
			continue;
		}
		if (get32(p + SECTOR - 4) != crc32_of(p, SECTOR - 4)) { corrupt++; continue; }
		if (get32(p + 4) != r || get32(p + 12) != s) {
			if (!foreign) snprintf(why, whylen, "sector %u holds region %u sector %u gen %u", s, get32(p + 4), get32(p + 12), get32(p + 8));
			foreign++;
			continue;
		}
		uint32_t gen = get32(p + 8);
		if (gen < lo) lo = gen;
		if (gen > hi) hi = gen;
	}
	uint32_t sectors = (uint32_t)(region_size / SECTOR);
	if (corrupt) { snprintf(why, whylen, "%d of %u sectors with a bad CRC", corrupt, sectors); return CORRUPT; }
	if (zero) { snprintf(why, whylen, "%d of %u sectors zero", zero, sectors); return ZERO; }
	if (foreign) return STALE;
	if (lo != hi) { snprintf(why, whylen, "generations %u..%u", lo, hi); return TORN; }
	struct region *g = &reg[r];
	uint32_t issued = atomic_load(&g->next_gen);
	if (hi > issued) { snprintf(why, whylen, "generation %u never issued (last %u)", hi, issued); return CORRUPT; }
	uint64_t done;
	if (atomic_load(&g->done_gen[hi % RING]) == hi) done = atomic_load(&g->done_seq[hi % RING]);
	else done = issued - hi >= RING ? 0 : UINT64_MAX; /* evicted long ago: completed; else still in flight */
	if (done < floor) { snprintf(why, whylen, "generation %u, superseded before the read began", hi); return STALE; }
	return WHOLE;
}

static void *reader(void *arg)
{
	int id = (int)(intptr_t)arg;
	uint64_t rng = 0xD1B54A32D192ED03ull * (uint64_t)(id + 7);
	unsigned char *buf;
	if (posix_memalign((void **)&buf, 4096, region_size)) fail("posix_memalign", -1);
	while (!atomic_load(&stop)) {
		uint32_t r = (uint32_t)(xorshift(&rng) % (uint64_t)regions);
		struct region *g = &reg[r];
		uint64_t floor = atomic_load(&g->completed_issue);
		int before = atomic_load(&g->inflight);
		struct iovec iov = { buf, region_size };
		uint64_t began = now_ns();
		ssize_t n = preadv2(fd, &iov, 1, (off_t)r * (off_t)region_size, 0);
		uint64_t ended = now_ns();
		int after = atomic_load(&g->inflight);
		if (n != (ssize_t)region_size) fail("preadv2", n);
		atomic_fetch_add(&count.reads, 1);
		char why[96] = "";
		enum verdict v = classify(buf, r, floor, why, sizeof why);
		if (v == WHOLE) continue;
		atomic_ulong *c = v == TORN ? &count.torn : v == ZERO ? &count.zero : v == STALE ? &count.stale : &count.corrupt;
		atomic_fetch_add(c, 1);
		if (before >= 2 || after >= 2) atomic_fetch_add(&count.bad_while_overlapped, 1);
		pthread_mutex_lock(&examples_lock);
		if (n_examples < MAX_EXAMPLES)
			snprintf(examples[n_examples++], sizeof examples[0],
				 "region %u %s: %s; writes in flight %d before, %d after; read %.6f-%.6f s (CLOCK_MONOTONIC)",
				 r, names[v], why, before, after, (double)began / 1e9, (double)ended / 1e9);
		pthread_mutex_unlock(&examples_lock);
	}
	free(buf);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: atomic_overlap --file PATH [--regions N] [--region-size BYTES] [--writers N] "
			"[--readers N] [--seconds S] [--serialize] [--plain K] [--atomic 0|1]\n");
	exit(1);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--serialize")) { serialize = 1; continue; }
		if (!v) usage();
		if (!strcmp(a, "--file")) file_path = v;
		else if (!strcmp(a, "--regions")) regions = atoi(v);
		else if (!strcmp(a, "--region-size")) region_size = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--writers")) writers = atoi(v);
		else if (!strcmp(a, "--readers")) readers = atoi(v);
		else if (!strcmp(a, "--seconds")) seconds = atof(v);
		else if (!strcmp(a, "--plain")) plain_writers = atoi(v);
		else if (!strcmp(a, "--atomic")) use_atomic = atoi(v);
		else usage();
		i++;
	}
	if (!file_path || regions < 1 || regions > MAX_REGIONS || writers < 1 || writers > 64 || readers < 1 ||
	    readers > 64 || region_size < SECTOR || region_size % 4096 || !(seconds > 0))
		usage();
	crc_init();
	reg = calloc((size_t)regions, sizeof *reg);
	if (!reg) fail("calloc", -1);
	for (int r = 0; r < regions; r++) pthread_mutex_init(&reg[r].lock, NULL);
	fd = open(file_path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0600);
	if (fd < 0) fail("open", -1);
	/* Generation 0 of every region, so a region of zeros is never legitimate. */
	unsigned char *buf;
	if (posix_memalign((void **)&buf, 4096, region_size)) fail("posix_memalign", -1);
	for (int r = 0; r < regions; r++) {
		fill(buf, (uint32_t)r, 0);
		struct iovec iov = { buf, region_size };
		ssize_t n = pwritev2(fd, &iov, 1, (off_t)r * (off_t)region_size, use_atomic ? RWF_ATOMIC : 0);
		if (n != (ssize_t)region_size) fail("initial pwritev2", n);
	}
	if (fsync(fd)) fail("fsync", -1);
	free(buf);

	pthread_t t[128];
	int nt = 0;
	uint64_t start = now_ns();
	for (int i = 0; i < writers; i++) pthread_create(&t[nt++], NULL, writer, (void *)(intptr_t)i);
	for (int i = 0; i < readers; i++) pthread_create(&t[nt++], NULL, reader, (void *)(intptr_t)i);
	struct timespec ts = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < nt; i++) pthread_join(t[i], NULL);
	double took = (double)(now_ns() - start) / 1e9;

	/* Once every write has completed: does each region hold its last write? */
	int after_bad = 0;
	char after_first[160] = "";
	if (posix_memalign((void **)&buf, 4096, region_size)) fail("posix_memalign", -1);
	for (int r = 0; r < regions; r++) {
		struct iovec iov = { buf, region_size };
		ssize_t n = preadv2(fd, &iov, 1, (off_t)r * (off_t)region_size, 0);
		if (n != (ssize_t)region_size) fail("final preadv2", n);
		char why[96] = "";
		enum verdict v = classify(buf, (uint32_t)r, atomic_load(&reg[r].completed_issue), why, sizeof why);
		if (v != WHOLE) {
			if (!after_bad++) snprintf(after_first, sizeof after_first, "region %d %s: %s", r, names[v], why);
		}
	}
	free(buf);
	close(fd);

	printf("{\"seconds\": %.2f, \"regions\": %d, \"regionSize\": %zu, \"writers\": %d, \"plainWriters\": %d, "
	       "\"readers\": %d, \"atomic\": %s, \"serialize\": %s, \"writes\": %lu, \"reads\": %lu, \"torn\": %lu, "
	       "\"zero\": %lu, \"stale\": %lu, \"corrupt\": %lu, \"badWhileOverlapped\": %lu, \"badAtEnd\": %d, \"badAtEndExample\": \"%s\", \"examples\": [",
	       took, regions, region_size, writers, use_atomic ? plain_writers : writers, readers, use_atomic ? "true" : "false",
	       serialize ? "true" : "false", atomic_load(&count.writes), atomic_load(&count.reads), atomic_load(&count.torn),
	       atomic_load(&count.zero), atomic_load(&count.stale), atomic_load(&count.corrupt),
	       atomic_load(&count.bad_while_overlapped), after_bad, after_first);
	for (int i = 0; i < n_examples; i++) printf("%s\"%s\"", i ? ", " : "", examples[i]);
	printf("]}\n");
	return 0;
}
