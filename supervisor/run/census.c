/* SPDX-License-Identifier: MIT */
/*
 * The signed-image census for /metrics: `regvisor health --check
 * image-signatures` as a child (its perfdata read back), shortly after start, every
 * CENSUS_INTERVAL_USEC and after each reload, its counts kept for pages.c.
 *
 * Why a child and not a call: verifying runs gpg once per signature
 * (GPGME forks it) and reads the whole storage tree (a shared store's
 * through the registry's API), seconds on a large registry; the loop must keep answering probes, signals and /readyz
 * meanwhile. The child's output is read through a pipe, bounded; a child
 * that outlives its deadline is killed and the last counts stay.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "supervisor.h"

#define CENSUS_FIRST_DELAY_USEC (15 * USEC_PER_SEC)
#define CENSUS_INTERVAL_USEC (600 * USEC_PER_SEC)
/* The child's own --timeout; it is killed a little after. */
#define CENSUS_TIMEOUT_SEC 60
#define CENSUS_KILL_USEC ((CENSUS_TIMEOUT_SEC + 10) * USEC_PER_SEC)

/* The Nagios line health prints first: "REGVISOR STATE - reason|perfdata",
 * where perfdata holds tags=N signed_tags=N unsigned_tags=N;0. */
static bool census_parse(Supervisor *s, const char *out) {
        unsigned long long tags = 0, signed_tags = 0, unsigned_tags = 0;
        const char *bar = strchr(out, '|'), *eol = strchr(out, '\n');
        unsigned found = 0;

        if (!eol)
                eol = out + strlen(out);
        if (!bar || bar > eol)
                return false;
        /* Only the first line's perfdata: the check's own line below it is
         * prose. */
        for (const char *p = bar + 1; p && p < eol; p = memchr(p, ' ', (size_t) (eol - p)), p = p ? p + 1 : NULL) {
                char label[32];
                unsigned long long v;

                if (sscanf(p, "%31[a-z_]=%llu", label, &v) != 2)
                        continue;
                if (streq(label, "tags"))
                        tags = v, found |= 1;
                else if (streq(label, "signed_tags"))
                        signed_tags = v, found |= 2;
                else if (streq(label, "unsigned_tags"))
                        unsigned_tags = v, found |= 4;
        }
        if (found != 7)
                return false;
        s->census_tags = tags;
        s->census_signed = signed_tags;
        s->census_unsigned = unsigned_tags;
        s->census_wall = time(NULL);
        return true;
}

/* The check's own line (after the summary line), or the summary. */
static const char *census_reason(const char *out) {
        const char *l = strstr(out, "image-signatures: ");
        return l ? l : out;
}

static void census_reset(Supervisor *s) {
        s->census_io = sd_event_source_disable_unref(s->census_io);
        s->census_child = sd_event_source_disable_unref(s->census_child);
        s->census_kill_timer = sd_event_source_disable_unref(s->census_kill_timer);
        if (s->census_fd >= 0)
                (void) close(s->census_fd);
        s->census_fd = -EBADF;
        s->census_len = 0;
        s->census_pid = 0;
}

static int on_census_output(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Supervisor *s = userdata;
        ssize_t n;

        if (s->census_len >= sizeof s->census_buf - 1) {
                s->census_io = sd_event_source_disable_unref(s->census_io);
                return 0;
        }
        n = read(fd, s->census_buf + s->census_len, sizeof s->census_buf - 1 - s->census_len);
        if (n > 0)
                s->census_len += (size_t) n;
        else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                s->census_io = sd_event_source_disable_unref(s->census_io);
        return 0;
}

static int on_census_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        Supervisor *s = userdata;

        /* What is left in the pipe after the child's exit. */
        while (s->census_io && s->census_len < sizeof s->census_buf - 1) {
                size_t before = s->census_len;
                (void) on_census_output(NULL, s->census_fd, EPOLLIN, s);
                if (s->census_len == before)
                        break;
        }
        s->census_buf[s->census_len] = '\0';
        /* health exits 0 OK, 1 WARNING (unsigned tags): both counted. */
        if (si->si_code == CLD_EXITED && si->si_status <= 1 && census_parse(s, s->census_buf))
                log_event(LOG_INFO, "census", "%llu of %llu stored tags carry a valid signature",
                          s->census_signed, s->census_tags);
        else
                log_event(LOG_WARNING, "census-failed", "the signature census %s %d: counts not updated: %.*s",
                          si->si_code == CLD_EXITED ? "exited with status" : "was killed by signal",
                          si->si_status, (int) strcspn(census_reason(s->census_buf), "\n"),
                          census_reason(s->census_buf));
        census_reset(s);
        return 0;
}

static int on_census_kill(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        if (s->census_pid > 0)
                (void) kill(s->census_pid, SIGKILL);
        return 0;
}

static void census_spawn(Supervisor *s) {
        char timeout[16];
        int p[2];
        pid_t pid;

        if (s->census_pid > 0)
                return; /* the last one is still counting */
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
                log_warning("signature census: pipe: %m");
                return;
        }
        (void) snprintf(timeout, sizeof timeout, "%d", CENSUS_TIMEOUT_SEC);
        pid = child_fork("signature census");
        if (pid == 0) {
                char *argv[] = {(char *) "regvisor", (char *) "health", (char *) "--config",
                                (char *) s->config_path, (char *) "--check", (char *) "image-signatures",
                                (char *) "--timeout", timeout, NULL};
                /* The unit gives root no CAP_DAC_OVERRIDE: the signature
                 * store (0750) and the storage are read through the
                 * service user's group, and only that group. A shared
                 * store is counted through the registry's socket, whose
                 * directory is the proxy group's (2750): that group too,
                 * the one supplementary group the loop joined. */
                gid_t groups[2] = {s->gid};
                int n_groups = 1;

                if (config_storage_is_shared(&s->config) && getgroups(1, &groups[1]) == 1)
                        n_groups = 2;
                if (dup2(p[1], STDOUT_FILENO) < 0 || setgroups(n_groups, groups) < 0 || setgid(s->gid) < 0)
                        _exit(127);
                execv("/proc/self/exe", argv);
                _exit(127);
        }
        (void) close(p[1]);
        if (pid < 0) { /* logged */
                (void) close(p[0]);
                return;
        }
        s->census_pid = pid;
        s->census_fd = p[0];
        if (sd_event_add_io(s->event, &s->census_io, p[0], EPOLLIN, on_census_output, s) < 0 ||
            sd_event_add_child(s->event, &s->census_child, pid, WEXITED, on_census_exit, s) < 0 ||
            sd_event_add_time_relative(s->event, &s->census_kill_timer, CLOCK_MONOTONIC, CENSUS_KILL_USEC, 0,
                                       on_census_kill, s) < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                census_reset(s);
                log_warning("signature census: cannot watch its child");
        }
}

static int on_census_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        census_spawn(s);
        (void) sd_event_source_set_time_relative(src, CENSUS_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
        return 0;
}

void census_start(Supervisor *s) {
        if (sd_event_add_time_relative(s->event, &s->census_timer, CLOCK_MONOTONIC, CENSUS_FIRST_DELAY_USEC, 0,
                                       on_census_timer, s) < 0)
                log_warning("signature census: no timer; /metrics counts no signed images");
}

void census_now(Supervisor *s) {
        census_spawn(s);
}

void census_end(Supervisor *s) {
        s->census_timer = sd_event_source_disable_unref(s->census_timer);
        if (s->census_pid > 0) {
                (void) kill(s->census_pid, SIGKILL);
                (void) waitpid(s->census_pid, NULL, 0);
        }
        census_reset(s);
}
