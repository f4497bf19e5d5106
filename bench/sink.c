/* sink SOCKET LINES: the syslog receiver of figure 6, owned by the bench.
 *
 * Binds a unix datagram socket at SOCKET (as /dev/log is), prints "ready", then receives
 * records with recvmmsg(2) and checks each one's gen.c sequence number (check.h). It stops
 * when all LINES distinct numbers have arrived, or on SIGUSR1 (the driver's "the forwarder has
 * exited and nothing more came"), after taking what is still queued. Then it prints one line:
 *
 *   delivered= distinct= dup= breaks= other= last_ns= cpu_us=
 *
 * last_ns is CLOCK_MONOTONIC right after the batch holding the last numbered record; cpu_us the
 * sink's own user+system time (getrusage), i.e. the receiving side's cost. */
#define _GNU_SOURCE
#include "check.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define RECORD 8192 /* sigshim's default --max-line for syslog is 8000 */

static volatile sig_atomic_t stop;

static void on_usr1(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char bufs[BATCH][RECORD];

int main(int argc, char **argv)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sigaction sa = {0};
	struct check c;
	struct rusage ru;
	uint64_t last_ns = 0;
	int fd, size = 8 << 20;

	if (argc != 3 || strlen(argv[1]) >= sizeof addr.sun_path) {
		fprintf(stderr, "usage: sink SOCKET LINES\n");
		return 2;
	}
	check_init(&c, strtoull(argv[2], NULL, 10));
	/* No SA_RESTART: SIGUSR1 must interrupt a blocking recvmmsg. */
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);

	strcpy(addr.sun_path, argv[1]);
	unlink(argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
		perror("sink: socket");
		return 1;
	}
	/* As rsyslogd and journald do; for AF_UNIX datagrams the queue length limit
	 * (net.unix.max_dgram_qlen) is what bounds the backlog, for every sender alike. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	printf("ready\n");
	fflush(stdout);

	for (;;) {
		int flags = stop ? MSG_DONTWAIT : MSG_WAITFORONE;
		int n;
		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = RECORD;
			memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(fd, msgs, BATCH, flags, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && stop)
				break;
			perror("sink: recvmmsg");
			return 1;
		}
		int numbered = 0;
		for (int i = 0; i < n; i++)
			numbered |= check_record(&c, bufs[i], msgs[i].msg_len);
		if (numbered)
			last_ns = now_ns();
		if (c.sent && c.distinct == c.sent)
			break;
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("delivered=%llu distinct=%llu dup=%llu breaks=%llu other=%llu last_ns=%llu cpu_us=%llu\n",
	       (unsigned long long)c.delivered, (unsigned long long)c.distinct,
	       (unsigned long long)c.dup, (unsigned long long)c.breaks,
	       (unsigned long long)c.other, (unsigned long long)last_ns,
	       (unsigned long long)(ru.ru_utime.tv_sec * 1000000ll + ru.ru_utime.tv_usec +
				    ru.ru_stime.tv_sec * 1000000ll + ru.ru_stime.tv_usec));
	unlink(argv[1]);
	return 0;
}
