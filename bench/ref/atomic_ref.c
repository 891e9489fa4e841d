/*
 * atomic_ref: the C ceiling for odirect's atomic-write benchmark row.
 *
 * Keeps QD fixed-size writes (or reads) in flight on one file with liburing,
 * O_DIRECT, optionally RWF_ATOMIC (and RWF_DSYNC), at random offsets aligned to
 * the block size (so atomic writes are naturally aligned), until RUNTIME seconds
 * have passed. Prints one JSON object on stdout: ops, bytes, seconds, iops,
 * latency percentiles (submit to completion, ns) and the CPU time the process
 * spent in the timed loop (getrusage RUSAGE_SELF: all its threads, io_uring's
 * io-wq workers included). Any failed or short I/O is an
 * error: exit 1 with {"error": ...}, as an atomic write may never be short.
 *
 * Built by the bench (bench/src/contenders/cref.ts) with the vendored liburing compiled in:
 *   cc -O2 -Wall -D_GNU_SOURCE -I deps/liburing/src/include -o bench/bin/atomic_ref \
 *      bench/ref/atomic_ref.c deps/liburing/src/{setup,queue,register,syscall,version}.c
 *
 * Usage: atomic_ref --file PATH --size BYTES [--bs 16384] [--qd 32]
 *                   [--runtime SECONDS] [--atomic 0|1] [--dsync 0|1] [--read]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef RWF_DSYNC
#define RWF_DSYNC 0x00000002
#endif
#ifndef RWF_ATOMIC
#define RWF_ATOMIC 0x00000040 /* Linux 6.11 (block devices), 6.13 (filesystems) */
#endif

#define MAX_QD 256
#define MAX_SAMPLES (64u << 20) /* 64 Mi latencies = 512 MiB: far beyond any run */

struct slot {
	void *buf;
	uint64_t start_ns;
	uint64_t offset;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: cheap, good enough to spread offsets. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static uint64_t tv_us(struct timeval tv)
{
	return (uint64_t)tv.tv_sec * 1000000ull + (uint64_t)tv.tv_usec;
}

static void fail(const char *what, int err)
{
	printf("{\"error\":\"%s: %s\",\"errno\":%d}\n", what, strerror(err), err);
	fflush(stdout);
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t percentile(const uint64_t *sorted, size_t n, double p)
{
	if (n == 0)
		return 0;
	/* nearest rank, as the bench computes it for the in-process contenders */
	double rank = p / 100.0 * (double)n;
	size_t i = (size_t)rank;
	if ((double)i < rank)
		i++;
	i = i > 0 ? i - 1 : 0;
	return sorted[i < n ? i : n - 1];
}

static void usage(void)
{
	fprintf(stderr, "usage: atomic_ref --file PATH --size BYTES [--bs N] [--qd N] [--runtime S] "
			"[--atomic 0|1] [--dsync 0|1] [--read]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *file = NULL;
	uint64_t size = 0, bs = 16384;
	unsigned qd = 32;
	double runtime = 5.0;
	int atomic = 1, dsync = 0, do_read = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--read")) { do_read = 1; continue; }
		if (!v) usage();
		if (!strcmp(a, "--file")) file = v;
		else if (!strcmp(a, "--size")) size = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--bs")) bs = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--qd")) qd = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--runtime")) runtime = strtod(v, NULL);
		else if (!strcmp(a, "--atomic")) atomic = atoi(v);
		else if (!strcmp(a, "--dsync")) dsync = atoi(v);
		else usage();
		i++;
	}
	if (!file || bs == 0 || (bs & (bs - 1)) || qd == 0 || qd > MAX_QD || runtime <= 0 || runtime > 3600)
		usage();
	if (do_read && atomic)
		atomic = 0; /* RWF_ATOMIC is for writes only */

	int fd = open(file, (do_read ? O_RDONLY : O_RDWR) | O_DIRECT);
	if (fd < 0)
		fail("open", errno);
	if (size == 0) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			fail("fstat", errno);
		size = (uint64_t)st.st_size;
	}
	uint64_t blocks = size / bs;
	if (blocks == 0)
		fail("file smaller than one block", EINVAL);

	struct io_uring ring;
	int ret = io_uring_queue_init(qd, &ring, 0);
	if (ret < 0)
		fail("io_uring_queue_init", -ret);

	struct slot slots[MAX_QD];
	memset(slots, 0, sizeof slots);
	for (unsigned i = 0; i < qd; i++) {
		if (posix_memalign(&slots[i].buf, 4096, bs))
			fail("posix_memalign", ENOMEM);
		for (uint64_t j = 0; j < bs; j += 8)
			*(uint64_t *)((char *)slots[i].buf + j) = rnd();
	}

	size_t cap = 1u << 20, nsamples = 0;
	uint64_t *lat = malloc(cap * sizeof *lat);
	if (!lat)
		fail("malloc", ENOMEM);

	int rwflags = (atomic ? RWF_ATOMIC : 0) | (dsync ? RWF_DSYNC : 0);
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	uint64_t t0 = now_ns();
	uint64_t deadline = t0 + (uint64_t)(runtime * 1e9);
	unsigned inflight = 0;
	uint64_t ops = 0, bytes = 0;

	/* Fill the ring, then replace each completion with a new I/O until the deadline. */
	for (;;) {
		uint64_t now = now_ns();
		int submitting = now < deadline;
		unsigned queued = 0;
		for (unsigned i = 0; submitting && i < qd && inflight + queued < qd; i++) {
			if (slots[i].start_ns)
				continue;
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			if (!sqe)
				break;
			slots[i].offset = (rnd() % blocks) * bs;
			slots[i].start_ns = now;
			if (do_read)
				io_uring_prep_read(sqe, fd, slots[i].buf, (unsigned)bs, slots[i].offset);
			else
				io_uring_prep_write(sqe, fd, slots[i].buf, (unsigned)bs, slots[i].offset);
			sqe->rw_flags = rwflags;
			io_uring_sqe_set_data(sqe, &slots[i]);
			queued++;
		}
		if (queued) {
			ret = io_uring_submit(&ring);
			if (ret < 0)
				fail("io_uring_submit", -ret);
			inflight += queued;
		}
		if (inflight == 0)
			break;
		struct io_uring_cqe *cqe;
		ret = io_uring_wait_cqe(&ring, &cqe);
		if (ret < 0)
			fail("io_uring_wait_cqe", -ret);
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			struct slot *s = io_uring_cqe_get_data(cqe);
			uint64_t end = now_ns();
			if (cqe->res < 0)
				fail(do_read ? "read" : (atomic ? "atomic write" : "write"), -cqe->res);
			if ((uint64_t)cqe->res != bs) {
				printf("{\"error\":\"short %s: %d of %" PRIu64 " bytes at %" PRIu64 "\"}\n",
				       do_read ? "read" : "write", cqe->res, bs, s->offset);
				return 1;
			}
			if (nsamples == cap && cap < MAX_SAMPLES) {
				cap *= 2;
				uint64_t *grown = realloc(lat, cap * sizeof *lat);
				if (!grown)
					fail("realloc", ENOMEM);
				lat = grown;
			}
			if (nsamples < cap)
				lat[nsamples++] = end - s->start_ns;
			s->start_ns = 0;
			ops++;
			bytes += bs;
			inflight--;
			seen++;
		}
		io_uring_cq_advance(&ring, seen);
	}
	double seconds = (double)(now_ns() - t0) / 1e9;
	getrusage(RUSAGE_SELF, &ru1);
	qsort(lat, nsamples, sizeof *lat, cmp_u64);
	printf("{\"ops\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.6f,\"iops\":%.3f,"
	       "\"lat_ns\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"max\":%" PRIu64 "},"
	       "\"cpu_us\":{\"user\":%" PRIu64 ",\"sys\":%" PRIu64 "},"
	       "\"bs\":%" PRIu64 ",\"qd\":%u,\"atomic\":%d,\"dsync\":%d,\"read\":%d}\n",
	       ops, bytes, seconds, (double)ops / seconds, percentile(lat, nsamples, 50),
	       percentile(lat, nsamples, 99), nsamples ? lat[nsamples - 1] : 0,
	       tv_us(ru1.ru_utime) - tv_us(ru0.ru_utime), tv_us(ru1.ru_stime) - tv_us(ru0.ru_stime),
	       bs, qd, atomic, dsync, do_read);
	io_uring_queue_exit(&ring);
	close(fd);
	free(lat);
	return 0;
}
