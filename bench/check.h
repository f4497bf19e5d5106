/* Line-numbering check shared by sink.c (records off a datagram socket) and driver.c (lines
 * read back from journalctl): every line gen.c writes carries "seq=NNNNNNNNNN", and a record
 * is checked for that number alone, whatever header the forwarder put in front of it.
 *
 * delivered  records that carried a sequence number
 * distinct   different numbers among them (lost = sent - distinct)
 * dup        records whose number was seen before
 * breaks     records that did not follow their predecessor (seq != previous + 1): 0 means
 *            every line arrived once and in order; a lost line costs one break
 * other      records without a number (the forwarder's own diagnostics, for example) */
#ifndef SIGSHIM_BENCH_CHECK_H
#define SIGSHIM_BENCH_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct check {
	uint64_t sent;
	uint8_t *seen;
	uint64_t delivered, distinct, dup, breaks, other;
	int64_t last;
};

static inline void check_init(struct check *c, uint64_t sent)
{
	memset(c, 0, sizeof *c);
	c->sent = sent;
	c->seen = calloc(sent ? sent : 1, 1);
	c->last = -1;
	if (!c->seen)
		abort();
}

static inline void check_free(struct check *c)
{
	free(c->seen);
	c->seen = NULL;
}

/* Returns 1 if the record carried a sequence number. */
static inline int check_record(struct check *c, const char *p, size_t len)
{
	const char *s = memmem(p, len, "seq=", 4);
	uint64_t v = 0;
	if (!s || (size_t)(p + len - s) < 14) {
		c->other++;
		return 0;
	}
	for (int i = 4; i < 14; i++) {
		if (s[i] < '0' || s[i] > '9') {
			c->other++;
			return 0;
		}
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	c->delivered++;
	if (v >= c->sent) {
		c->breaks++;
		return 1;
	}
	if (c->seen[v])
		c->dup++;
	else {
		c->seen[v] = 1;
		c->distinct++;
	}
	if ((int64_t)v != c->last + 1)
		c->breaks++;
	c->last = (int64_t)v;
	return 1;
}

#endif
