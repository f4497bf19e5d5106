/* gen N: writes N numbered lines of exactly 100 bytes (newline included) to stdout:
 *
 *   seq=0000000000 xxxx...xxxx\n
 *
 * through stdio with its default buffering, so on a pipe it writes 4 KiB blocks like any
 * block-buffered service (the case the log path exists for). Exits 0 once everything is written,
 * 1 if stdout fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE 100

int main(int argc, char **argv)
{
	char line[LINE + 1];
	unsigned long long n, i;

	if (argc != 2) {
		fprintf(stderr, "usage: gen LINES\n");
		return 2;
	}
	n = strtoull(argv[1], NULL, 10);
	memset(line, 'x', LINE);
	line[LINE - 1] = '\n';
	line[LINE] = 0;
	for (i = 0; i < n; i++) {
		char num[24];
		snprintf(num, sizeof num, "%010llu", i);
		memcpy(line, "seq=", 4);
		memcpy(line + 4, num, 10);
		line[14] = ' ';
		if (fwrite(line, 1, LINE, stdout) != LINE)
			return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
