/* SPDX-License-Identifier: MIT */
/*
 * scripts/bench-metrics.c: for scripts/bench, which runs `regvisor proxy`
 * alone (no supervisor, hence no /metrics page). Built by scripts/bench
 * against the build's proxy/metrics.o and common/prom.o, so it always has
 * this build's layout.
 *
 *   bench-metrics init FILE    FILE becomes an empty metrics region (its
 *                              header written), for REGVISOR_METRICS_FD
 *   bench-metrics render FILE  the region as the supervisor's /metrics
 *                              renders it (Prometheus text) on stdout
 */

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"

int main(int argc, char **argv) {
        ProxyMetrics *m = NULL, header = {};
        int fd, r;

        if (argc != 3 || (strcmp(argv[1], "init") != 0 && strcmp(argv[1], "render") != 0)) {
                fprintf(stderr, "usage: bench-metrics init|render FILE\n");
                return 2;
        }
        if (strcmp(argv[1], "init") == 0) {
                fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                proxy_metrics_header(&header);
                if (fd < 0 || ftruncate(fd, sizeof(ProxyMetrics)) < 0 ||
                    pwrite(fd, &header, sizeof(header), 0) != (ssize_t)sizeof(header)) {
                        perror(argv[2]);
                        return 1;
                }
                return close(fd) < 0;
        }
        fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        r = fd < 0 ? -1 : proxy_metrics_map_fd(fd, false, &m);
        if (r < 0) {
                fprintf(stderr, "%s: not a metrics region of this build\n", argv[2]);
                return 1;
        }
        return proxy_metrics_render(m, stdout) < 0;
}
