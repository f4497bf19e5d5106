/* sleeper: the wrapped child of figures 2-5. It announces itself, then sleeps in pause(2)
 * forever, and answers SIGUSR1 from its handler; `sleeper TERM` answers SIGTERM the same way
 * and survives it (figure 4b: SIGTERM as a repeated stop request).
 *
 * Everything goes to stdout (a pipe the driver reads) as 16-byte records, which a pipe writes
 * atomically (PIPE_BUF):
 *   {1, pid}                      once, when ready
 *   {2, CLOCK_MONOTONIC in ns}    from the SIGUSR1 handler, the moment it runs
 * stdout rather than an extra descriptor because some wrappers close descriptors above 2.
 * Without the argument SIGTERM keeps its default action: the child of the stop figure dies at
 * once. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void on_signal(int sig)
{
	struct timespec ts;
	uint64_t rec[2];
	(void)sig;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	rec[0] = 2;
	rec[1] = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	/* write(2) and clock_gettime(2) are async-signal-safe. */
	(void)!write(1, rec, sizeof rec);
}

int main(int argc, char **argv)
{
	struct sigaction sa = {0};
	uint64_t rec[2] = {1, (uint64_t)getpid()};

	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	if (argc > 1 && strcmp(argv[1], "TERM") == 0)
		sigaction(SIGTERM, &sa, NULL);
	else if (argc > 1)
		return 2;
	if (write(1, rec, sizeof rec) != sizeof rec)
		return 1;
	for (;;)
		pause();
}
