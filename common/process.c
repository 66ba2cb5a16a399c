/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "process.h"

#define CAPTURE_MAX PROCESS_CAPTURE_MAX
#define DEFAULT_TIMEOUT_USEC (120ULL * 1000000ULL)
#define EXEC_FAILED 127

typedef struct {
        char *buf;
        size_t size;
        bool tail;    /* keep_tail: the buffer may grow to twice the cap */
        bool dropped; /* tail: bytes before buf[0] were dropped */
} Capture;

static uint64_t now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* Appends data to c: the head up to the cap, or (tail) everything, with the
 * buffer compacted to its last CAPTURE_MAX bytes whenever it would pass
 * twice that: a memmove per cap's worth of output, not per read. */
static int capture_append(Capture *c, const char *data, size_t n) {
        if (!c->tail) {
                if (c->size >= CAPTURE_MAX)
                        return 0;
                if (n > CAPTURE_MAX - c->size)
                        n = CAPTURE_MAX - c->size;
        } else if (c->size + n > 2 * CAPTURE_MAX) {
                size_t keep = c->size < CAPTURE_MAX ? c->size : CAPTURE_MAX;
                memmove(c->buf, c->buf + c->size - keep, keep);
                c->size = keep;
                c->dropped = true;
        }
        char *b = realloc(c->buf, c->size + n + 1);
        if (!b)
                return -ENOMEM;
        memcpy(b + c->size, data, n);
        c->buf = b;
        c->size += n;
        c->buf[c->size] = 0;
        return 0;
}

/* Tail: the last CAPTURE_MAX bytes, from the first whole line among them
 * when anything before was dropped (a cut line could read as another). */
static void capture_finish(Capture *c) {
        if (!c->tail || !c->buf)
                return;
        if (c->size > CAPTURE_MAX) {
                memmove(c->buf, c->buf + c->size - CAPTURE_MAX, CAPTURE_MAX);
                c->size = CAPTURE_MAX;
                c->dropped = true;
        }
        if (c->dropped) {
                char *nl = memchr(c->buf, '\n', c->size);
                size_t skip = nl ? (size_t) (nl - c->buf) + 1 : c->size;
                memmove(c->buf, c->buf + skip, c->size - skip);
                c->size -= skip;
        }
        c->buf[c->size] = 0;
}

static int capture_read(int fd, Capture *c) {
        char tmp[8192];
        ssize_t n = read(fd, tmp, sizeof tmp);

        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 1 : negative_errno();
        if (n == 0)
                return 0;
        return capture_append(c, tmp, (size_t) n) < 0 ? -ENOMEM : 1;
}

/* In the child: become the user and exec. Only async-signal-safe calls
 * (plus execvpe's PATH lookup) between fork and exec. */
_noreturn_ static void child_exec(char *const *argv, const ProcessOptions *o, char **envp, int out_fd, int err_fd) {
        int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
            dup2(err_fd, STDERR_FILENO) < 0)
                _exit(EXEC_FAILED);
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (o && o->uid != 0) {
                if (initgroups(o->user, o->gid) < 0 || setresgid(o->gid, o->gid, o->gid) < 0 ||
                    setresuid(o->uid, o->uid, o->uid) < 0)
                        _exit(EXEC_FAILED);
        }
        /* podman resolves relative paths from here; the home if it exists. */
        if ((!o || !o->home || chdir(o->home) < 0) && chdir("/") < 0)
                _exit(EXEC_FAILED);
        execvpe(argv[0], argv, envp);
        _exit(EXEC_FAILED);
}

static char **build_env(const ProcessOptions *o) {
        size_t n_extra = o ? strv_length(o->env) : 0;
        char **envp;
        size_t i = 0;

        envp = calloc(n_extra + 8, sizeof(char *));
        if (!envp)
                return NULL;
        envp[i++] = strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        envp[i++] = strdup("LANG=C.UTF-8");
        if (o && o->user) {
                if (asprintf(&envp[i++], "USER=%s", o->user) < 0)
                        envp[i - 1] = NULL;
                if (asprintf(&envp[i++], "LOGNAME=%s", o->user) < 0)
                        envp[i - 1] = NULL;
        }
        if (o && o->home && asprintf(&envp[i++], "HOME=%s", o->home) < 0)
                envp[i - 1] = NULL;
        for (size_t k = 0; k < n_extra; k++)
                envp[i++] = strdup(o->env[k]);
        for (size_t k = 0; k < i; k++)
                if (!envp[k]) {
                        strv_free(envp);
                        return NULL;
                }
        return envp;
}

static int find_in_path(const char *name) {
        static const char *const dirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"};
        char p[4096];

        if (strchr(name, '/'))
                return access(name, X_OK) == 0 ? 0 : -ENOENT;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                (void) snprintf(p, sizeof p, "%s/%s", dirs[i], name);
                if (access(p, X_OK) == 0)
                        return 0;
        }
        return -ENOENT;
}

/* Reads the child's stdout and stderr into out and err until both
 * close: 0; 1 when the deadline came first (the child is killed); a
 * negative errno (the child is killed, not reaped). */
static int capture_all(pid_t pid, int out_fd, int err_fd, uint64_t deadline, Capture *out, Capture *err) {
        struct pollfd pfd[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = err_fd, .events = POLLIN}};
        int r;

        while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
                uint64_t n = now_usec();
                if (n >= deadline) {
                        (void) kill(pid, SIGKILL);
                        return 1;
                }
                r = poll(pfd, 2, (int) ((deadline - n) / 1000) + 1);
                if (r < 0 && errno != EINTR) {
                        r = negative_errno();
                        (void) kill(pid, SIGKILL);
                        return r;
                }
                for (int i = 0; i < 2; i++) {
                        if (pfd[i].fd < 0 || !pfd[i].revents)
                                continue;
                        r = capture_read(pfd[i].fd, i == 0 ? out : err);
                        if (r < 0) {
                                (void) kill(pid, SIGKILL);
                                return r;
                        }
                        if (r == 0)
                                pfd[i].fd = -1;
                }
        }
        return 0;
}

/* Reaps the child: its exit status, 128 + the signal that killed it, or
 * -ETIMEDOUT when it was killed for the deadline (timed_out). */
static int wait_exit(pid_t pid, bool timed_out) {
        int status;

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        if (timed_out)
                return -ETIMEDOUT;
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return 128 + WTERMSIG(status);
}

int process_run(char *const *argv, const ProcessOptions *opts, char **ret_stdout, char **ret_stderr) {
        _cleanup_strv_free_ char **envp = NULL;
        int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
        bool tail = opts && opts->keep_tail;
        Capture out = {.tail = tail}, err = {.tail = tail};
        uint64_t timeout = opts && opts->timeout_usec ? opts->timeout_usec : DEFAULT_TIMEOUT_USEC;
        uint64_t deadline = now_usec() + timeout;
        int r;
        pid_t pid;

        /* A missing tool is an error with a name, not exit status 127. */
        r = find_in_path(argv[0]);
        if (r < 0)
                return r;

        envp = build_env(opts);
        if (!envp)
                return -ENOMEM;
        if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) {
                r = negative_errno();
                goto out;
        }

        pid = fork();
        if (pid < 0) {
                r = negative_errno();
                goto out;
        }
        if (pid == 0)
                child_exec(argv, opts, envp, out_pipe[1], err_pipe[1]);

        (void) close(TAKE_FD(out_pipe[1]));
        (void) close(TAKE_FD(err_pipe[1]));

        r = capture_all(pid, out_pipe[0], err_pipe[0], deadline, &out, &err);
        if (r < 0) {
                (void) waitpid(pid, NULL, 0);
                goto out;
        }
        r = wait_exit(pid, r == 1);
        if (r < 0 && r != -ETIMEDOUT)
                goto out;

        capture_finish(&out);
        capture_finish(&err);
        if (ret_stdout) {
                *ret_stdout = out.buf ? TAKE_PTR(out.buf) : strdup("");
        }
        if (ret_stderr) {
                *ret_stderr = err.buf ? TAKE_PTR(err.buf) : strdup("");
        }
out:
        for (int i = 0; i < 2; i++) {
                closep(&out_pipe[i]);
                closep(&err_pipe[i]);
        }
        free(out.buf);
        free(err.buf);
        return r;
}
