/*
 * depth1_wait: the floor for depth-1 O_DIRECT writes, by way of waiting for the completion.
 *
 * One 4 KiB write at a random block-aligned offset in flight at a time, awaited, then the
 * next. Several ways of waiting ("contenders") run in one process, interleaved in blocks of
 * BLOCK writes (A B C A B C ...) for RUNTIME seconds, so that the load of a shared machine
 * falls on all of them alike. Prints one JSON line per contender: ops, p50/p99 latency (ns,
 * submit to completion seen by this thread), CPU µs per I/O (getrusage RUSAGE_SELF around
 * each block), and how many waits woke with no CQE ready (spurious), returned EINTR, or timed
 * out (stalls: a wake-up that never came; the CQE is looked for anyway after 1 s).
 *
 * A contender is WAIT/SETUP. WAIT:
 *   psync    pwrite(2), no io_uring (fio's psync engine)
 *   enter    io_uring_submit_and_wait(1): one io_uring_enter that submits and sleeps
 *   efd      io_uring_submit, epoll_wait on a registered eventfd, read the eventfd, peek the
 *            CQE (odirect's engine minus Node: libuv sleeps in epoll_wait)
 *   ringfd   io_uring_submit, epoll_wait on the ring fd itself (POLLIN while CQEs are ready),
 *            peek the CQE; no eventfd
 * SETUP (all with SUBMIT_ALL, as odirect):
 *   plain    none
 *   coop     COOP_TASKRUN|TASKRUN_FLAG
 *   defer    SINGLE_ISSUER|DEFER_TASKRUN; efd: read the eventfd, then io_uring_get_events
 *            (odirect's order: the CQE that get_events posts signals the eventfd again, so
 *            the next wait wakes for nothing)
 *   deferlate  SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG; efd: io_uring_get_events, then read
 *            the eventfd (clearing both signals), again while IORING_SQ_TASKRUN says new
 *            work came in meanwhile (its signal may have been read away)
 *
 * Build (vendored liburing compiled in, as bench/src/contenders/cref.ts builds atomic_ref):
 *   cc -O2 -Wall -D_GNU_SOURCE -I deps/liburing/src/include -o bench/bin/depth1_wait \
 *      bench/ref/depth1_wait.c deps/liburing/src/{setup,queue,register,syscall,version}.c
 * Driven by bench/ref/depth1-floors.mjs (scratch XFS and ext4).
 *
 * Usage: depth1_wait --file PATH --size BYTES [--runtime S] [--block N] WAIT/SETUP...
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BS 4096
#define MAX_CONTENDERS 16
#define MAX_SAMPLES (4u << 20)

enum wait_kind { PSYNC, ENTER, EFD, RINGFD };

struct contender {
	const char *name;
	enum wait_kind wait;
	int defer, late;
	struct io_uring ring;
	int efd, ep;
	uint64_t *lat, ops, spurious, stalls, eintr;
	double cpu_us;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double cpu_now_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
}

static void die(const char *what, const char *who, int err)
{
	printf("{\"error\":\"%s %s: %s\"}\n", who, what, strerror(err));
	exit(1);
}

static void setup(struct contender *c, const char *spec)
{
	char wait[32], flags[32] = "plain";
	if (sscanf(spec, "%31[a-z]/%31[a-z]", wait, flags) < 1) die("spec", spec, EINVAL);
	c->name = spec;
	c->efd = c->ep = -1;
	c->lat = malloc(sizeof(uint64_t) * MAX_SAMPLES);
	if (!strcmp(wait, "psync")) c->wait = PSYNC;
	else if (!strcmp(wait, "enter")) c->wait = ENTER;
	else if (!strcmp(wait, "efd")) c->wait = EFD;
	else if (!strcmp(wait, "ringfd")) c->wait = RINGFD;
	else die("wait", spec, EINVAL);
	if (c->wait == PSYNC) return;
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	p.flags = IORING_SETUP_SUBMIT_ALL;
	c->late = !strcmp(flags, "deferlate");
	c->defer = !strcmp(flags, "defer") || c->late;
	if (!strcmp(flags, "coop")) p.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
	else if (c->defer) p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	else if (strcmp(flags, "plain")) die("setup", spec, EINVAL);
	if (c->late) p.flags |= IORING_SETUP_TASKRUN_FLAG;
	if (c->late && c->wait != EFD) die("deferlate needs efd", spec, EINVAL);
	int r = io_uring_queue_init_params(8, &c->ring, &p);
	if (r < 0) die("io_uring_queue_init_params", spec, -r);
	if (c->wait == ENTER) return;
	c->ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN};
	int watched = c->ring.ring_fd;
	if (c->wait == EFD) {
		c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if ((r = io_uring_register_eventfd(&c->ring, c->efd)) < 0) die("register_eventfd", spec, -r);
		watched = c->efd;
	}
	if (epoll_ctl(c->ep, EPOLL_CTL_ADD, watched, &ev) < 0) die("epoll_ctl", spec, errno);
}

/* One write, awaited; returns its result. */
static int write_one(struct contender *c, int fd, void *buf, uint64_t off)
{
	if (c->wait == PSYNC) {
		int res = pwrite(fd, buf, BS, off);
		return res < 0 ? -errno : res;
	}
	struct io_uring *ring = &c->ring;
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	io_uring_prep_write(sqe, fd, buf, BS, off);
	struct io_uring_cqe *cqe = NULL;
	int r;
	if (c->wait == ENTER) {
		if ((r = io_uring_submit_and_wait(ring, 1)) < 0) die("submit_and_wait", c->name, -r);
		if ((r = io_uring_peek_cqe(ring, &cqe)) < 0) die("peek after wait", c->name, -r);
	} else {
		if ((r = io_uring_submit(ring)) != 1) die("submit", c->name, r < 0 ? -r : EIO);
		for (;;) {
			struct epoll_event ev;
			int n = epoll_wait(c->ep, &ev, 1, 1000);
			if (n < 0 && errno == EINTR) {
				c->eintr++; /* task work (TWA_SIGNAL) ended the sleep; libuv retries too */
				continue;
			}
			if (n < 0) die("epoll_wait", c->name, errno);
			if (n == 0) c->stalls++; /* no wake-up within 1 s: look anyway */
			uint64_t count;
			if (c->late) {
				do {
					io_uring_get_events(ring);
					(void)!read(c->efd, &count, sizeof count);
				} while (IO_URING_READ_ONCE(*ring->sq.kflags) & IORING_SQ_TASKRUN);
			} else {
				if (c->wait == EFD) (void)!read(c->efd, &count, sizeof count);
				if (c->defer) io_uring_get_events(ring);
			}
			if (io_uring_peek_cqe(ring, &cqe) == 0) break;
			c->spurious++;
		}
	}
	int res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

int main(int argc, char **argv)
{
	const char *file = NULL;
	uint64_t size = 0;
	double runtime = 10;
	unsigned block = 128;
	struct contender cs[MAX_CONTENDERS];
	int n = 0;
	memset(cs, 0, sizeof cs);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--file") && i + 1 < argc) file = argv[++i];
		else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--runtime") && i + 1 < argc) runtime = atof(argv[++i]);
		else if (!strcmp(argv[i], "--block") && i + 1 < argc) block = atoi(argv[++i]);
		else if (n < MAX_CONTENDERS) setup(&cs[n++], argv[i]);
	}
	if (!file || size < BS || n == 0 || block == 0) die("usage", "", EINVAL);
	int fd = open(file, O_RDWR | O_DIRECT);
	if (fd < 0) die("open", file, errno);
	void *buf;
	if (posix_memalign(&buf, BS, BS)) die("posix_memalign", "", ENOMEM);
	memset(buf, 0xa5, BS);
	uint64_t blocks = size / BS;

	uint64_t deadline = now_ns() + (uint64_t)(runtime * 1e9);
	for (unsigned turn = 0; now_ns() < deadline; turn++) {
		struct contender *c = &cs[turn % n];
		if (c->ops + block > MAX_SAMPLES) break;
		double cpu0 = cpu_now_us();
		for (unsigned k = 0; k < block; k++) {
			uint64_t off = (rng() % blocks) * BS;
			uint64_t a = now_ns();
			int res = write_one(c, fd, buf, off);
			if (res != BS) die("write", c->name, res < 0 ? -res : EIO);
			c->lat[c->ops++] = now_ns() - a;
		}
		c->cpu_us += cpu_now_us() - cpu0;
	}
	for (int i = 0; i < n; i++) {
		struct contender *c = &cs[i];
		qsort(c->lat, c->ops, sizeof *c->lat, cmp_u64);
		printf("{\"name\":\"%s\",\"ops\":%llu,\"p50_ns\":%llu,\"p99_ns\":%llu,\"cpu_us_per_io\":%.2f,"
		       "\"spurious\":%llu,\"eintr\":%llu,\"stalls\":%llu}\n",
		       c->name, (unsigned long long)c->ops, (unsigned long long)c->lat[c->ops / 2],
		       (unsigned long long)c->lat[c->ops * 99 / 100], c->cpu_us / c->ops, (unsigned long long)c->spurious,
		       (unsigned long long)c->eintr, (unsigned long long)c->stalls);
	}
	return 0;
}
