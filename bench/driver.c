/* driver: measures sigshim and its peers side by side and prints one Markdown table per figure.
 *
 * The machine is shared and noisy, so no figure is an absolute number on its own: every row of a
 * table is measured in the same run, rows take turns (shuffled or rotated every round, so none
 * always runs first or after the same neighbour), the table gives medians or percentiles, and the
 * ratio column compares each row with a reference row (`--ref`, by default the first) measured
 * alongside it.
 *
 *   driver startup ROUNDS          ROWS   figure 1: fork+exec+wait of `WRAPPER /bin/true`
 *   driver mem     ROUNDS          ROWS   figure 2: VmRSS, VmHWM, Pss of the wrapper, child asleep
 *   driver idle    ROUNDS SECONDS  ROWS   figure 3: wake-ups and CPU of the wrapper over SECONDS
 *   driver signal  ROUNDS          ROWS   figure 4: kill(wrapper, USR1) -> the child's handler runs
 *                                         (--signal TERM, child `sleeper TERM`: figure 4b, SIGTERM
 *                                         as a repeated stop request)
 *   driver stop    ROUNDS          ROWS   figure 5: kill(wrapper, TERM) -> wrapper reaped
 *   driver log     OPTIONS         LOGROWS figure 6: the log path (see fig_log)
 *
 * ROWS are pairs NAME 'PREFIX': PREFIX is split on spaces and the child's command is appended
 * (empty PREFIX = the child alone, the bare case). Options before the rows: --ref NAME,
 * --child 'PATH [ARGS]' (the sleeper of figures 2-5, split on spaces), --errlog FILE (where
 * wrappers' stderr goes), --signal USR1|TERM (what figure 4 sends).
 *
 * Every descriptor the driver opens is close-on-exec, so a wrapper started while others are alive
 * holds none of their pipes. Children start with an empty signal mask and default dispositions. */
#define _GNU_SOURCE
#include "check.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int devnull = -1;
static int errfd = -1;
static const char *child_path;
static char **child_argv;
static int fwd_signal = SIGUSR1;
static const char *ref_name;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "driver: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		die("out of memory");
	return p;
}

static uint64_t rnd(void)
{
	/* xorshift64: a fixed seed keeps the interleaving reproducible run to run. */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void shuffle(int *perm, int n)
{
	for (int i = 0; i < n; i++)
		perm[i] = i;
	for (int i = n - 1; i > 0; i--) {
		int j = (int)(rnd() % (uint64_t)(i + 1));
		int t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
}

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile (q in 0..1) of n values; the median averages the middle pair. */
static double pct(const double *v, int n, double q)
{
	double *s;
	double r;
	if (n <= 0)
		return NAN;
	s = xcalloc((size_t)n, sizeof *s);
	memcpy(s, v, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, cmp_double);
	if (q == 0.5)
		r = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	else {
		int k = (int)ceil(q * n) - 1;
		r = s[k < 0 ? 0 : k >= n ? n - 1 : k];
	}
	free(s);
	return r;
}

static double median(const double *v, int n) { return pct(v, n, 0.5); }

/* Prints a ratio, or a dash when it means nothing (a zero or missing reference). */
static void print_ratio(double num, double den)
{
	if (isnan(num) || isnan(den) || den == 0)
		printf(" — |");
	else
		printf(" %.2f× |", num / den);
}

/* ---- rows and processes ---- */

struct row {
	const char *name;
	char **prefix;
	int nprefix;
};

static char **split(const char *s, int *n)
{
	char *copy = strdup(s), *save = NULL, *tok;
	char **v = xcalloc(strlen(s) + 2, sizeof *v);
	*n = 0;
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		v[(*n)++] = tok;
	return v;
}

static int parse_rows(int argc, char **argv, struct row **rows)
{
	int n = argc / 2;
	if (argc % 2 || n == 0)
		die("rows come as NAME 'PREFIX' pairs");
	*rows = xcalloc((size_t)n, sizeof **rows);
	for (int i = 0; i < n; i++) {
		(*rows)[i].name = argv[2 * i];
		(*rows)[i].prefix = split(argv[2 * i + 1], &(*rows)[i].nprefix);
	}
	return n;
}

static int ref_index(struct row *rows, int n)
{
	if (!ref_name)
		return 0;
	for (int i = 0; i < n; i++)
		if (strcmp(rows[i].name, ref_name) == 0)
			return i;
	die("--ref %s names no row", ref_name);
	return 0;
}

/* PREFIX + child argv, NULL-terminated. */
static char **command(struct row *r, char *const *child)
{
	int n = 0;
	while (child[n])
		n++;
	char **v = xcalloc((size_t)(r->nprefix + n + 1), sizeof *v);
	memcpy(v, r->prefix, (size_t)r->nprefix * sizeof *v);
	memcpy(v + r->nprefix, child, (size_t)n * sizeof *v);
	return v;
}

static void print_command(const char *name, char **argv)
{
	printf("- %s: `", name);
	for (int i = 0; argv[i]; i++)
		printf("%s%s", i ? " " : "", argv[i]);
	printf("`\n");
}

static pid_t spawn(char *const *argv, int in, int out, int err)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		/* Only async-signal-safe calls between fork and exec. */
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		sigset_t none;
		for (int s = 1; s < NSIG; s++)
			sigaction(s, &dfl, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* waitpid with a deadline: 1 when reaped (status filled), 0 on timeout. */
static int wait_for(pid_t pid, int *status, uint64_t timeout_ns)
{
	uint64_t end = now_ns() + timeout_ns;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1;
		if (now_ns() >= end)
			return 0;
		sleep_ns(2000000);
	}
}

/* Reads exactly one 16-byte sleeper record; 0 on timeout or EOF. */
static int read_record(int fd, uint64_t rec[2], int timeout_ms)
{
	size_t got = 0;
	while (got < 16) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		ssize_t n = read(fd, (char *)rec + got, 16 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		got += (size_t)n;
	}
	return 1;
}

/* ---- /proc ---- */

static int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return (int)n;
}

/* A "Key:   123 kB" line of /proc/PID/status or smaps_rollup; -1 if absent. */
static long long proc_field(pid_t pid, const char *file, const char *key)
{
	char path[64], buf[8192], *p;
	size_t kl = strlen(key);
	snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
	if (read_file(path, buf, sizeof buf) < 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, key, kl) == 0 && p[kl] == ':')
			return strtoll(p + kl + 1, NULL, 10);
	return -1;
}

/* utime+stime of the whole process in clock ticks (proc(5) fields 14 and 15); works on a zombie
 * not yet reaped, which is how a finished forwarder's own CPU is read without its children's. */
static long long proc_cpu_ticks(pid_t pid)
{
	char path[64], buf[4096], *p;
	unsigned long long ut, st;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if (read_file(path, buf, sizeof buf) < 0 || !(p = strrchr(buf, ')')))
		return -1;
	/* After ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
	 * utime(14) stime(15). */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

/* Summed over the process's threads: context switches (voluntary + involuntary, from
 * status) and time on CPU in ns (schedstat, field 1). */
static void proc_tasks(pid_t pid, long long *switches, long long *oncpu_ns)
{
	char path[96], buf[256];
	DIR *d;
	struct dirent *e;
	*switches = 0;
	*oncpu_ns = 0;
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	if (!(d = opendir(path))) {
		*switches = *oncpu_ns = -1;
		return;
	}
	while ((e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);
		if (tid <= 0)
			continue;
		char sub[64];
		snprintf(sub, sizeof sub, "task/%d/status", tid);
		*switches += proc_field(pid, sub, "voluntary_ctxt_switches");
		*switches += proc_field(pid, sub, "nonvoluntary_ctxt_switches");
		snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", pid, tid);
		if (read_file(path, buf, sizeof buf) > 0)
			*oncpu_ns += strtoll(buf, NULL, 10);
	}
	closedir(d);
}

/* ---- wrappers kept alive with a sleeping child (figures 2-5) ---- */

struct live {
	pid_t wrapper, child;
	int fd;
};

static void live_start(struct row *r, struct live *l)
{
	char **argv = command(r, child_argv);
	uint64_t rec[2];
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		die("pipe2: %s", strerror(errno));
	l->wrapper = spawn(argv, devnull, p[1], errfd);
	close(p[1]);
	l->fd = p[0];
	if (!read_record(l->fd, rec, 10000) || rec[0] != 1)
		die("%s: the child did not announce itself within 10 s", r->name);
	l->child = (pid_t)rec[1];
	free(argv);
}

/* Kills the child; the wrapper follows it out (SIGKILL after 3 s if it does not). */
static void live_end(struct live *l)
{
	int st;
	kill(l->child, SIGKILL);
	if (!wait_for(l->wrapper, &st, 3000000000u)) {
		kill(l->wrapper, SIGKILL);
		waitpid(l->wrapper, &st, 0);
	}
	close(l->fd);
}

/* ---- figure 1: start-up + exit ---- */

static void fig_startup(int rounds, struct row *rows, int n)
{
	char *child[] = {"/bin/true", NULL};
	char ***argv = xcalloc((size_t)n, sizeof *argv);
	double **t = xcalloc((size_t)n, sizeof *t);
	int *perm = xcalloc((size_t)n, sizeof *perm), *fails = xcalloc((size_t)n, sizeof *fails);
	int ref = ref_index(rows, n), warm = rounds / 10 + 5;

	for (int i = 0; i < n; i++) {
		argv[i] = command(&rows[i], child);
		t[i] = xcalloc((size_t)rounds, sizeof **t);
	}
	for (int round = -warm; round < rounds; round++) {
		shuffle(perm, n);
		for (int k = 0; k < n; k++) {
			int i = perm[k], st;
			uint64_t t0 = now_ns();
			pid_t pid = spawn(argv[i], devnull, devnull, errfd);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			uint64_t t1 = now_ns();
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				fails[i]++;
			if (round >= 0)
				t[i][round] = (double)(t1 - t0) / 1e3;
		}
	}
	printf("| row | median µs | p10 µs | p90 µs | overhead vs %s, µs (median of paired differences) "
	       "| ratio to %s (median of paired ratios) | failed runs |\n",
	       rows[ref].name, rows[ref].name);
	printf("|---|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < n; i++) {
		double *diff = xcalloc((size_t)rounds, sizeof *diff), *ratio = xcalloc((size_t)rounds, sizeof *ratio);
		for (int r = 0; r < rounds; r++) {
			diff[r] = t[i][r] - t[ref][r];
			ratio[r] = t[i][r] / t[ref][r];
		}
		printf("| %s | %.0f | %.0f | %.0f | %+.0f | %.2f× | %d |\n", rows[i].name,
		       median(t[i], rounds), pct(t[i], rounds, 0.1), pct(t[i], rounds, 0.9),
		       median(diff, rounds), median(ratio, rounds), fails[i]);
		free(diff);
		free(ratio);
	}
	printf("\n%d interleaved rounds (after %d warm-up rounds), each row once per round in shuffled order. Commands:\n\n",
	       rounds, warm);
	for (int i = 0; i < n; i++)
		print_command(rows[i].name, argv[i]);
}

/* ---- figure 2: memory ---- */

static void fig_mem(int rounds, struct row *rows, int n)
{
	struct live *l = xcalloc((size_t)n, sizeof *l);
	double *rss[3];
	int *perm = xcalloc((size_t)n, sizeof *perm), ref = ref_index(rows, n);

	for (int m = 0; m < 3; m++)
		rss[m] = xcalloc((size_t)(n * rounds), sizeof *rss[m]);
	for (int round = 0; round < rounds; round++) {
		shuffle(perm, n);
		for (int k = 0; k < n; k++)
			live_start(&rows[perm[k]], &l[perm[k]]);
		sleep_ns(300000000u); /* let every wrapper reach its wait */
		for (int i = 0; i < n; i++) {
			rss[0][i * rounds + round] = (double)proc_field(l[i].wrapper, "status", "VmRSS");
			rss[1][i * rounds + round] = (double)proc_field(l[i].wrapper, "status", "VmHWM");
			rss[2][i * rounds + round] = (double)proc_field(l[i].wrapper, "smaps_rollup", "Pss");
		}
		for (int i = 0; i < n; i++)
			live_end(&l[i]);
	}
	printf("| row | VmRSS KiB | VmHWM KiB | Pss KiB | VmRSS vs %s | Pss vs %s |\n", rows[ref].name,
	       rows[ref].name);
	printf("|---|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < n; i++) {
		double v[3];
		for (int m = 0; m < 3; m++)
			v[m] = median(rss[m] + i * rounds, rounds);
		printf("| %s | %.0f | %.0f | %.0f |", rows[i].name, v[0], v[1], v[2]);
		print_ratio(v[0], median(rss[0] + ref * rounds, rounds));
		print_ratio(v[2], median(rss[2] + ref * rounds, rounds));
		printf("\n");
	}
	printf("\nMedian of %d rounds; in each, all rows run at once, their child asleep in pause(2), "
	       "read 300 ms after the child announced itself.\n",
	       rounds);
}

/* ---- figure 3: idle ---- */

static void fig_idle(int rounds, double seconds, struct row *rows, int n)
{
	struct live *l = xcalloc((size_t)n, sizeof *l);
	double *sw = xcalloc((size_t)(n * rounds), sizeof *sw);
	double *ticks = xcalloc((size_t)(n * rounds), sizeof *ticks);
	double *oncpu = xcalloc((size_t)(n * rounds), sizeof *oncpu);
	long long *s0 = xcalloc((size_t)n, sizeof *s0), *c0 = xcalloc((size_t)n, sizeof *c0),
		  *k0 = xcalloc((size_t)n, sizeof *k0);
	int *perm = xcalloc((size_t)n, sizeof *perm);
	double tick_ms = 1000.0 / (double)sysconf(_SC_CLK_TCK);

	for (int round = 0; round < rounds; round++) {
		shuffle(perm, n);
		for (int k = 0; k < n; k++)
			live_start(&rows[perm[k]], &l[perm[k]]);
		sleep_ns(500000000u);
		for (int i = 0; i < n; i++) {
			proc_tasks(l[i].wrapper, &s0[i], &c0[i]);
			k0[i] = proc_cpu_ticks(l[i].wrapper);
		}
		sleep_ns((uint64_t)(seconds * 1e9));
		for (int i = 0; i < n; i++) {
			long long s1, c1;
			proc_tasks(l[i].wrapper, &s1, &c1);
			sw[i * rounds + round] = (double)(s1 - s0[i]);
			oncpu[i * rounds + round] = (double)(c1 - c0[i]) / 1e3;
			ticks[i * rounds + round] = (double)(proc_cpu_ticks(l[i].wrapper) - k0[i]) * tick_ms;
		}
		for (int i = 0; i < n; i++)
			live_end(&l[i]);
	}
	/* No ratio column: the goal is zero, and zero divides nothing. */
	printf("| row | wake-ups (context switches) in %.0f s | utime+stime ms | on-CPU µs (schedstat) |\n",
	       seconds);
	printf("|---|---:|---:|---:|\n");
	for (int i = 0; i < n; i++)
		printf("| %s | %.0f | %.0f | %.0f |\n", rows[i].name, median(sw + i * rounds, rounds),
		       median(ticks + i * rounds, rounds), median(oncpu + i * rounds, rounds));
	printf("\nMedian of %d rounds; in each, all rows run at once and are measured over the same "
	       "%.0f s window, starting 500 ms after the child announced itself.\n",
	       rounds, seconds);
}

/* ---- figure 4: signal forwarding ---- */

static void fig_signal(int rounds, struct row *rows, int n)
{
	struct live *l = xcalloc((size_t)n, sizeof *l);
	double **lat = xcalloc((size_t)n, sizeof *lat);
	int *perm = xcalloc((size_t)n, sizeof *perm), *got = xcalloc((size_t)n, sizeof *got),
	    *lost = xcalloc((size_t)n, sizeof *lost), ref = ref_index(rows, n), warm = rounds / 10 + 5;

	for (int i = 0; i < n; i++) {
		lat[i] = xcalloc((size_t)rounds, sizeof **lat);
		live_start(&rows[i], &l[i]);
	}
	sleep_ns(300000000u);
	for (int round = -warm; round < rounds; round++) {
		shuffle(perm, n);
		for (int k = 0; k < n; k++) {
			int i = perm[k];
			uint64_t rec[2], t0 = now_ns();
			kill(l[i].wrapper, fwd_signal);
			if (!read_record(l[i].fd, rec, 2000) || rec[0] != 2) {
				lost[i]++;
				continue;
			}
			if (round >= 0)
				lat[i][got[i]++] = (double)(rec[1] - t0) / 1e3;
			/* Let the wrapper finish whatever it does after forwarding before the next row. */
			sleep_ns(200000);
		}
	}
	for (int i = 0; i < n; i++)
		live_end(&l[i]);
	printf("| row | p50 µs | p90 µs | p99 µs | p50 vs %s | p99 vs %s | lost |\n", rows[ref].name,
	       rows[ref].name);
	printf("|---|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < n; i++) {
		double p50 = pct(lat[i], got[i], 0.5), p99 = pct(lat[i], got[i], 0.99);
		printf("| %s | %.1f | %.1f | %.1f |", rows[i].name, p50, pct(lat[i], got[i], 0.9), p99);
		print_ratio(p50, pct(lat[ref], got[ref], 0.5));
		print_ratio(p99, pct(lat[ref], got[ref], 0.99));
		printf(" %d |\n", lost[i]);
	}
	printf("\n%d interleaved rounds (after %d warm-up rounds); all rows alive at once, one %s "
	       "each per round in shuffled order. Latency: kill(2) in the driver -> clock_gettime in the "
	       "child's handler (CLOCK_MONOTONIC); bare = kill(child).%s\n",
	       rounds, warm, fwd_signal == SIGTERM ? "SIGTERM" : "SIGUSR1",
	       fwd_signal == SIGTERM
		   ? " The child traps SIGTERM and survives it, so every SIGTERM after a wrapper's first "
		     "is a repeated stop request: sigshim (no --stop-signal) forwards it, and the first one "
		     "(in the warm-up) started its stop sequence."
		   : "");
}

/* ---- figure 5: stop ---- */

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig)
{
	(void)sig;
	alarmed = 1;
}

static void fig_stop(int rounds, struct row *rows, int n)
{
	double **lat = xcalloc((size_t)n, sizeof *lat);
	int *perm = xcalloc((size_t)n, sizeof *perm), *bad = xcalloc((size_t)n, sizeof *bad),
	    *left = xcalloc((size_t)n, sizeof *left), ref = ref_index(rows, n), warm = rounds / 10 + 3;
	struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART: waitpid returns EINTR */
	sigaction(SIGALRM, &sa, NULL);

	for (int i = 0; i < n; i++)
		lat[i] = xcalloc((size_t)rounds, sizeof **lat);
	for (int round = -warm; round < rounds; round++) {
		shuffle(perm, n);
		for (int k = 0; k < n; k++) {
			int i = perm[k], st = 0;
			struct live l;
			live_start(&rows[i], &l);
			sleep_ns(3000000); /* the wrapper reaches its wait after the child's exec */
			alarmed = 0;
			alarm(5);
			uint64_t t0 = now_ns();
			kill(l.wrapper, SIGTERM);
			pid_t r;
			while ((r = waitpid(l.wrapper, &st, 0)) < 0 && errno == EINTR && !alarmed)
				;
			uint64_t t1 = now_ns();
			alarm(0);
			if (r != l.wrapper) {
				bad[i]++;
				kill(l.wrapper, SIGKILL);
				waitpid(l.wrapper, &st, 0);
			} else if (round >= 0)
				lat[i][round] = (double)(t1 - t0) / 1e3;
			if (l.child != l.wrapper && kill(l.child, 0) == 0) {
				left[i]++;
				kill(l.child, SIGKILL);
			}
			close(l.fd);
		}
	}
	printf("| row | p50 µs | p90 µs | p99 µs | p50 vs %s | p99 vs %s | hung | child left running |\n",
	       rows[ref].name, rows[ref].name);
	printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < n; i++) {
		double p50 = pct(lat[i], rounds, 0.5), p99 = pct(lat[i], rounds, 0.99);
		printf("| %s | %.0f | %.0f | %.0f |", rows[i].name, p50, pct(lat[i], rounds, 0.9), p99);
		print_ratio(p50, pct(lat[ref], rounds, 0.5));
		print_ratio(p99, pct(lat[ref], rounds, 0.99));
		printf(" %d | %d |\n", bad[i], left[i]);
	}
	printf("\n%d interleaved rounds (after %d warm-up rounds); each round starts every row afresh in "
	       "shuffled order. Latency: kill(wrapper, SIGTERM) -> waitpid(wrapper) returns; the child "
	       "dies of SIGTERM's default action; bare = kill(child) -> child reaped.\n",
	       rounds, warm);
}

/* ---- figure 6: the log path ---- */

/* A forwarder: `wrap` runs PREFIX gen N (the forwarder owns gen's pipes); `pipe` runs
 * gen N | PREFIX. IDENT is the journal identifier the row's records carry (journald sink only).
 * A PREFIX token "{JPID}" becomes journald's PID (for nsenter). */
struct logrow {
	const char *name, *mode, *ident;
	char **prefix;
	int nprefix;
};

struct logres {
	double rate, fwd_cpu, sink_cpu, secs;
	struct check c;
};

static const char *gen_path, *sink_path, *sock_path, *journald_sh, *state_dir;
static unsigned long long lines;

/* Spawns the row's pipeline; returns the forwarder's PID, *gen that of a separate gen (or 0). */
static pid_t start_pipeline(struct logrow *r, pid_t jpid, pid_t *gen)
{
	char n[32], jp[32];
	char **argv = xcalloc((size_t)r->nprefix + 3, sizeof *argv);
	pid_t fwd;
	snprintf(n, sizeof n, "%llu", lines);
	snprintf(jp, sizeof jp, "%d", jpid);
	for (int i = 0; i < r->nprefix; i++)
		argv[i] = strcmp(r->prefix[i], "{JPID}") == 0 ? jp : r->prefix[i];
	*gen = 0;
	if (strcmp(r->mode, "pipe") != 0) {
		argv[r->nprefix] = (char *)gen_path;
		argv[r->nprefix + 1] = n;
		fwd = spawn(argv, devnull, errfd, errfd);
	} else {
		char *gargv[] = {(char *)gen_path, n, NULL};
		int p[2];
		if (pipe2(p, O_CLOEXEC) != 0)
			die("pipe2: %s", strerror(errno));
		*gen = spawn(gargv, devnull, p[1], errfd);
		fwd = spawn(argv, p[0], errfd, errfd);
		close(p[0]);
		close(p[1]);
	}
	free(argv);
	return fwd;
}

/* Waits for the forwarder to end, reads its own CPU while it is a zombie (its rusage from
 * wait4 would include gen's, its child in `wrap` mode), then reaps it and gen. The CPU is the
 * zombie's time on CPU from schedstat: the same sum as utime + stime (which the kernel derives
 * from it), in ns rather than 10 ms clock ticks, so a forwarder as light as cat still shows. */
static double finish_pipeline(pid_t fwd, pid_t gen, const char *name)
{
	siginfo_t si;
	int st;
	long long sw, ns;
	while (waitid(P_PID, (id_t)fwd, &si, WEXITED | WNOWAIT) != 0)
		if (errno != EINTR)
			die("waitid: %s", strerror(errno));
	proc_tasks(fwd, &sw, &ns);
	if (ns < 0)
		ns = proc_cpu_ticks(fwd) * (1000000000ll / sysconf(_SC_CLK_TCK));
	waitpid(fwd, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "driver: %s: forwarder ended with status 0x%x\n", name, st);
	if (gen)
		waitpid(gen, &st, 0);
	return (double)ns / 1e9;
}

static int read_line(int fd, char *buf, size_t size, int timeout_ms)
{
	size_t got = 0;
	while (got + 1 < size) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, timeout_ms) <= 0)
			return 0;
		ssize_t n = read(fd, buf + got, 1);
		if (n <= 0)
			return 0;
		if (buf[got] == '\n') {
			buf[got] = 0;
			return 1;
		}
		got++;
	}
	return 0;
}

static unsigned long long field(const char *line, const char *key)
{
	const char *p = strstr(line, key);
	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static void run_syslog(struct logrow *r, struct logres *res)
{
	char n[32], line[512];
	char *sargv[] = {(char *)sink_path, (char *)sock_path, n, NULL};
	int p[2], st;
	pid_t sink, fwd, gen;
	uint64_t t0;

	snprintf(n, sizeof n, "%llu", lines);
	if (pipe2(p, O_CLOEXEC) != 0)
		die("pipe2: %s", strerror(errno));
	sink = spawn(sargv, devnull, p[1], errfd);
	close(p[1]);
	if (!read_line(p[0], line, sizeof line, 10000) || strcmp(line, "ready") != 0)
		die("the sink did not start");
	t0 = now_ns();
	fwd = start_pipeline(r, 0, &gen);
	res->fwd_cpu = finish_pipeline(fwd, gen, r->name);
	/* Everything sent is queued by now; the sink ends by itself once it has every line. */
	if (!read_line(p[0], line, sizeof line, 3000)) {
		kill(sink, SIGUSR1);
		if (!read_line(p[0], line, sizeof line, 10000))
			die("the sink gave no result");
	}
	waitpid(sink, &st, 0);
	close(p[0]);
	check_init(&res->c, 0);
	res->c.sent = lines;
	res->c.delivered = field(line, "delivered=");
	res->c.distinct = field(line, "distinct=");
	res->c.dup = field(line, "dup=");
	res->c.breaks = field(line, "breaks=");
	res->c.other = field(line, "other=");
	res->sink_cpu = (double)field(line, "cpu_us=") / 1e6;
	uint64_t last = field(line, "last_ns=");
	res->secs = last > t0 ? (double)(last - t0) / 1e9 : NAN;
	res->rate = (double)res->c.distinct / res->secs;
	check_free(&res->c);
}

static void journald_cmd(const char *what)
{
	char *argv[] = {"bash", (char *)journald_sh, (char *)what, NULL};
	int st;
	pid_t pid = spawn(argv, devnull, errfd, errfd);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("journald.sh %s failed (see the error log)", what);
}

static pid_t journald_fresh(void)
{
	char path[4096], buf[64];
	/* A fresh journald and empty journal for every run: each run's CPU is its own, and
	 * a million entries per run do not pile up. */
	journald_cmd("stop");
	snprintf(path, sizeof path, "rm -rf '%s/run/log/journal'", state_dir);
	if (system(path) != 0)
		die("cannot clear the journal");
	journald_cmd("start");
	snprintf(path, sizeof path, "%s/daemon.pid", state_dir);
	if (read_file(path, buf, sizeof buf) <= 0)
		die("no journald pid file");
	return (pid_t)atoi(buf);
}

static void run_journald(struct logrow *r, struct logres *res)
{
	pid_t jpid = journald_fresh(), fwd, gen;
	long long j0, j1, sw, ns, last_ns = -1;
	uint64_t t0, t_done, quiet_since;

	sleep_ns(300000000u);
	j0 = proc_cpu_ticks(jpid);
	t0 = now_ns();
	fwd = start_pipeline(r, jpid, &gen);
	res->fwd_cpu = finish_pipeline(fwd, gen, r->name);
	/* journald may still be working through what is queued on its sockets: wait until its
	 * time on CPU has not moved for 500 ms; the end is the last poll where it still did. */
	t_done = quiet_since = now_ns();
	for (;;) {
		proc_tasks(jpid, &sw, &ns);
		uint64_t t = now_ns();
		if (ns != last_ns) {
			last_ns = ns;
			t_done = quiet_since = t;
		} else if (t - quiet_since > 500000000u)
			break;
		if (t - t0 > 600000000000ull)
			die("journald still busy after 10 minutes");
		sleep_ns(20000000);
	}
	j1 = proc_cpu_ticks(jpid);
	res->sink_cpu = (double)(j1 - j0) / (double)sysconf(_SC_CLK_TCK);
	res->secs = (double)(t_done - t0) / 1e9;

	/* Count what the journal holds for this row's identifier, in journal order. */
	char *argv[] = {"bash", (char *)journald_sh, "read", "-t", (char *)r->ident, "-o", "cat", NULL};
	int p[2], st;
	static char buf[1 << 16];
	size_t have = 0;
	if (pipe2(p, O_CLOEXEC) != 0)
		die("pipe2: %s", strerror(errno));
	pid_t jc = spawn(argv, devnull, p[1], errfd);
	close(p[1]);
	check_init(&res->c, lines);
	for (;;) {
		ssize_t n = read(p[0], buf + have, sizeof buf - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		char *s = buf, *nl;
		while ((nl = memchr(s, '\n', (size_t)(buf + have - s)))) {
			check_record(&res->c, s, (size_t)(nl - s));
			s = nl + 1;
		}
		have = (size_t)(buf + have - s);
		memmove(buf, s, have);
		if (have == sizeof buf)
			have = 0; /* a line longer than the buffer is not one of ours */
	}
	close(p[0]);
	waitpid(jc, &st, 0);
	check_free(&res->c);
	res->rate = (double)res->c.distinct / res->secs;
}

static void fig_log(int argc, char **argv)
{
	int rounds = 3, i = 0, n, ref = 0;
	struct logrow *rows;
	const char *ref_row = NULL;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (i + 1 >= argc)
			die("%s needs a value", argv[i]);
		const char *k = argv[i], *v = argv[i + 1];
		if (!strcmp(k, "--lines"))
			lines = strtoull(v, NULL, 10);
		else if (!strcmp(k, "--rounds"))
			rounds = atoi(v);
		else if (!strcmp(k, "--gen"))
			gen_path = v;
		else if (!strcmp(k, "--sink"))
			sink_path = v;
		else if (!strcmp(k, "--socket"))
			sock_path = v;
		else if (!strcmp(k, "--journald-sh"))
			journald_sh = v;
		else if (!strcmp(k, "--state"))
			state_dir = v;
		else if (!strcmp(k, "--ref"))
			ref_row = v;
		else
			die("unknown option %s", k);
	}
	if (!lines || !gen_path || (!journald_sh && (!sink_path || !sock_path)) || (journald_sh && !state_dir))
		die("log: --lines, --gen and either --sink/--socket or --journald-sh/--state are needed");
	if (rounds < 1 || rounds > 64)
		die("log: --rounds must be 1..64");
	if ((argc - i) % 4 || argc == i)
		die("log rows come as NAME MODE IDENT 'PREFIX'");
	n = (argc - i) / 4;
	rows = xcalloc((size_t)n, sizeof *rows);
	for (int k = 0; k < n; k++) {
		rows[k].name = argv[i + 4 * k];
		rows[k].mode = argv[i + 4 * k + 1];
		rows[k].ident = argv[i + 4 * k + 2];
		rows[k].prefix = split(argv[i + 4 * k + 3], &rows[k].nprefix);
		if (ref_row && !strcmp(ref_row, rows[k].name))
			ref = k;
	}
	if (journald_sh)
		setenv("SIGSHIM_DAEMON_STATE", state_dir, 1);

	struct logres *res = xcalloc((size_t)(n * rounds), sizeof *res);
	for (int round = 0; round < rounds; round++) {
		for (int k = 0; k < n; k++) {
			/* Rotated, so each row goes first equally often. */
			int r = (round + k) % n;
			struct logres *x = &res[r * rounds + round];
			if (journald_sh)
				run_journald(&rows[r], x);
			else
				run_syslog(&rows[r], x);
			fprintf(stderr, "  round %d %-28s %9.0f lines/s  forwarder %.2f s  sink %.2f s  lost %llu\n",
				round + 1, rows[r].name, x->rate, x->fwd_cpu, x->sink_cpu,
				(unsigned long long)(lines - x->c.distinct));
		}
	}
	if (journald_sh)
		journald_cmd("stop");

	double per = 1e6 / (double)lines;
	printf("| forwarder | delivered lines/s | vs %s | forwarder CPU s / 1M lines | vs %s | "
	       "%s CPU s / 1M lines | vs %s | lost (worst run) | duplicated | order breaks (worst run) |\n",
	       rows[ref].name, rows[ref].name, journald_sh ? "journald" : "receiver", rows[ref].name);
	printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int k = 0; k < n; k++) {
		double rate[64], fc[64], sc[64], rr[64], fr[64], sr[64];
		unsigned long long lost = 0, dup = 0, breaks = 0;
		int fwd_measured = strcmp(rows[k].mode, "direct") != 0;
		for (int r = 0; r < rounds; r++) {
			struct logres *x = &res[k * rounds + r], *y = &res[ref * rounds + r];
			rate[r] = x->rate;
			fc[r] = x->fwd_cpu * per;
			sc[r] = x->sink_cpu * per;
			/* Paired ratios: each round's rows ran back to back. */
			rr[r] = x->rate / y->rate;
			fr[r] = y->fwd_cpu > 0 ? x->fwd_cpu / y->fwd_cpu : NAN;
			sr[r] = y->sink_cpu > 0 ? x->sink_cpu / y->sink_cpu : NAN;
			if (lines - x->c.distinct > lost)
				lost = lines - x->c.distinct;
			dup += x->c.dup;
			if (x->c.breaks > breaks)
				breaks = x->c.breaks;
		}
		printf("| %s | %.0f | %.2f× |", rows[k].name, median(rate, rounds), median(rr, rounds));
		if (fwd_measured)
			printf(" %.2f | %.2f× |", median(fc, rounds), median(fr, rounds));
		else
			printf(" — | — |");
		printf(" %.2f | %.2f× | %llu | %llu | %llu |\n", median(sc, rounds), median(sr, rounds), lost,
		       dup, breaks);
	}
	printf("\n%llu lines of 100 bytes per run, %d rounds, rows rotated each round; medians, ratios are "
	       "medians of per-round (paired) ratios. Commands:\n\n",
	       lines, rounds);
	for (int k = 0; k < n; k++) {
		printf("- %s: `", rows[k].name);
		if (strcmp(rows[k].mode, "pipe") == 0)
			printf("gen %llu | ", lines);
		for (int t = 0; t < rows[k].nprefix; t++)
			printf("%s%s", t ? " " : "", rows[k].prefix[t]);
		if (strcmp(rows[k].mode, "pipe") != 0)
			printf(" gen %llu", lines);
		printf("`\n");
	}
}

int main(int argc, char **argv)
{
	struct row *rows;
	int i = 2, n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	errfd = devnull;
	if (argc < 2)
		die("usage: driver startup|mem|idle|signal|stop|log ...");
	if (strcmp(argv[1], "log") == 0) {
		/* --errlog comes first here too, then the log options. */
		if (argc > 3 && strcmp(argv[2], "--errlog") == 0) {
			errfd = open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			i = 4;
		}
		fig_log(argc - i, argv + i);
		return 0;
	}
	int rounds = argc > 2 ? atoi(argv[2]) : 0;
	double seconds = 0;
	i = 3;
	if (strcmp(argv[1], "idle") == 0)
		seconds = argc > 3 ? atof(argv[i++]) : 0;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (!strcmp(argv[i], "--ref"))
			ref_name = argv[i + 1];
		else if (!strcmp(argv[i], "--child"))
			child_path = argv[i + 1];
		else if (!strcmp(argv[i], "--signal")) {
			if (!strcmp(argv[i + 1], "USR1"))
				fwd_signal = SIGUSR1;
			else if (!strcmp(argv[i + 1], "TERM"))
				fwd_signal = SIGTERM;
			else
				die("--signal: USR1 or TERM");
		}
		else if (!strcmp(argv[i], "--errlog"))
			errfd = open(argv[i + 1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		else
			die("unknown option %s", argv[i]);
	}
	if (rounds <= 0 || errfd < 0)
		die("bad arguments");
	n = parse_rows(argc - i, argv + i, &rows);
	if (child_path) {
		int nchild;
		child_argv = split(child_path, &nchild);
	}
	if (strcmp(argv[1], "startup") == 0)
		fig_startup(rounds, rows, n);
	else if (!child_path)
		die("--child is needed");
	else if (strcmp(argv[1], "mem") == 0)
		fig_mem(rounds, rows, n);
	else if (strcmp(argv[1], "idle") == 0)
		fig_idle(rounds, seconds, rows, n);
	else if (strcmp(argv[1], "signal") == 0)
		fig_signal(rounds, rows, n);
	else if (strcmp(argv[1], "stop") == 0)
		fig_stop(rounds, rows, n);
	else
		die("unknown figure %s", argv[1]);
	return 0;
}
