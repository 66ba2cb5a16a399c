/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * How long `systemctl stop regvisor` may take, and how that time is shared
 * out. One place, because three bounds must add up: systemd kills the
 * service at TimeoutStopSec=, and before that `regvisor run` must have let
 * the proxy drain and then stopped the registry's unit. If the sum ran
 * over, systemd would kill the supervisor mid-stop and leave the registry
 * to its own (the bug this fixes: 35 s + 30 s against 60 s).
 *
 *   SIGTERM -> proxy drains      <= REGVISOR_PROXY_STOP_SEC, then SIGKILL
 *           -> StopUnit(registry) <= [supervise] stop_timeout, at most
 *                                    REGVISOR_STOP_TIMEOUT_MAX_SEC
 *           -> exit, with REGVISOR_STOP_MARGIN_SEC to spare
 *
 * tests/unit/test-stop.c reads units/regvisor.service and the rendered
 * registry unit and checks them against these numbers.
 */

/* units/regvisor.service's TimeoutStopSec=. */
#define REGVISOR_TIMEOUT_STOP_SEC 90

/* The proxy's own stop: its workers finish requests in flight for
 * PROXY_DRAIN_SECONDS (proxy.h, 30), the parent kills what is left 5 s
 * later and exits (PROXY_STOP_SECONDS). The supervisor waits this long,
 * then kills the proxy itself (a compile-time check in supervisor/run/table.c
 * ties the two). */
#define REGVISOR_PROXY_STOP_SEC 35

/* Left after both: the supervisor's exit, the journal, a slow machine. */
#define REGVISOR_STOP_MARGIN_SEC 10

/* The ceiling of [supervise] stop_timeout: what the budget leaves for the
 * registry's StopUnit job. */
#define REGVISOR_STOP_TIMEOUT_MAX_SEC \
        (REGVISOR_TIMEOUT_STOP_SEC - REGVISOR_PROXY_STOP_SEC - REGVISOR_STOP_MARGIN_SEC)
