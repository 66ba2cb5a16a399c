/* SPDX-License-Identifier: MIT */
/*
 * Tests for proxy/sandbox.c. Each case forks a child that locks itself down
 * as nobody and then exercises the policy; the parent judges the child by
 * its exit status: 0 for success, a line number for a failed check, SIGSYS
 * for a call the filter killed. Checks inside a locked-down child cannot
 * use cmocka (its failure path is not a sandboxed worker's business), so
 * they print the failing line to stderr and exit.
 *
 * Needs root (setresuid, the bounding set): without it each case fails,
 * saying so (needs-root.h). Runs under
 * ASan/UBSan with `make unit`: the sanitizer runtimes only need calls that
 * a worker needs anyway (mmap without PROT_EXEC, madvise, sched_yield,
 * futex), until they report an error, which then ends in SIGSYS instead of
 * a report; children leave with _exit() so that LeakSanitizer's exit-time
 * scan (which clones and ptraces) never runs under the filter.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "needs-root.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <seccomp.h>

#include "macro.h"
#include "sandbox-test.h"
#include "sandbox.h"
#include "tmpdir.h"

static uid_t nobody_uid;
static gid_t nobody_gid;


/* In a child: lock down or exit 1. */
static void lockdown_or_die(void) {
        int r = proxy_sandbox_lockdown(nobody_uid, nobody_gid);
        if (r < 0) {
                fprintf(stderr, "test-sandbox: lockdown failed: %s\n", strerror(-r));
                _exit(1);
        }
}




static int setup(void **state) {
        if (geteuid() == 0)
                sandbox_test_nobody(&nobody_uid, &nobody_gid);
        return 0;
}

/* setresuid to nobody, libcap on the bounding set, seccomp as a worker does. */
#define SANDBOX_NEEDS_ROOT() REQUIRE_ROOT("a worker's lockdown: setresuid, the bounding set")

/* ---- /proc/PID/status of a locked-down process, read from outside like the integration test */

static int status_ready_pipe[2], status_go_pipe[2];

static void child_status(const void *arg) {
        char c = 1;

        /* Only our ends: when the parent goes away, the read below sees EOF. */
        (void) close(status_ready_pipe[0]);
        (void) close(status_go_pipe[1]);
        lockdown_or_die();
        CHECK(write(status_ready_pipe[1], &c, 1) == 1);
        CHECK(read(status_go_pipe[0], &c, 1) == 1);
}

/* Lets the status child go and reaps it; never leaves a child behind, whatever failed. */
static void release_status_child(pid_t pid, int *ret_status) {
        char c = 1;

        if (write(status_go_pipe[1], &c, 1) != 1)
                (void) kill(pid, SIGKILL);
        (void) close(status_go_pipe[1]);
        (void) close(status_ready_pipe[0]);
        if (waitpid(pid, ret_status, 0) != pid) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, ret_status, 0);
        }
}

/* The value of "Field:" in a /proc status text, up to the end of the line. */
static char *status_field(const char *text, const char *field) {
        char key[64];
        const char *p, *end;

        (void) snprintf(key, sizeof(key), "\n%s:", field);
        p = strstr(text, key);
        assert_non_null(p);
        p += strlen(key);
        p += strspn(p, "\t ");
        end = strchr(p, '\n');
        assert_non_null(end);
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
        return strndup(p, end - p);
}

static void test_status(void **state) {
        char text[8192], path[64], expect_ids[128], *v;
        struct stat st;
        ssize_t n;
        size_t len = 0;
        int status, fd, r;
        pid_t pid;
        char c = 1;

        SANDBOX_NEEDS_ROOT();
        assert_int_equal(pipe2(status_ready_pipe, O_CLOEXEC), 0);
        assert_int_equal(pipe2(status_go_pipe, O_CLOEXEC), 0);

        (void) fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                child_status(NULL);
                _exit(0);
        }
        (void) close(status_ready_pipe[1]);
        (void) close(status_go_pipe[0]);
        if (read(status_ready_pipe[0], &c, 1) != 1) {
                release_status_child(pid, &status);
                assert_exited_ok(status);
                fail_msg("child did not lock down");
        }

        (void) snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                while ((n = read(fd, text + len, sizeof(text) - 1 - len)) > 0)
                        len += n;
                (void) close(fd);
        }
        text[len] = 0;
        if (fd < 0 || len == 0) {
                release_status_child(pid, &status);
                fail_msg("cannot read %s", path);
        }

        /* Non-dumpable: the kernel makes /proc/PID/environ root's, although the process runs as
         * nobody. */
        (void) snprintf(path, sizeof(path), "/proc/%d/environ", (int) pid);
        r = stat(path, &st);
        release_status_child(pid, &status);
        assert_exited_ok(status);
        assert_int_equal(r, 0);
        assert_int_equal(st.st_uid, 0);

        static const struct {
                const char *field, *value;
        } expect[] = {
                {"NoNewPrivs", "1"},
                {"Seccomp", "2"},
                {"CapInh", "0000000000000000"},
                {"CapPrm", "0000000000000000"},
                {"CapEff", "0000000000000000"},
                {"CapBnd", "0000000000000000"},
                {"CapAmb", "0000000000000000"},
                {"Groups", ""},
        };
        for (size_t i = 0; i < ELEMENTSOF(expect); i++) {
                v = status_field(text, expect[i].field);
                if (!streq(v, expect[i].value))
                        fail_msg("%s: \"%s\", expected \"%s\"", expect[i].field, v, expect[i].value);
                free(v);
        }
        (void) snprintf(expect_ids, sizeof(expect_ids), "%u\t%u\t%u\t%u", nobody_uid, nobody_uid,
                        nobody_uid, nobody_uid);
        v = status_field(text, "Uid");
        assert_string_equal(v, expect_ids);
        free(v);
        (void) snprintf(expect_ids, sizeof(expect_ids), "%u\t%u\t%u\t%u", nobody_gid, nobody_gid,
                        nobody_gid, nobody_gid);
        v = status_field(text, "Gid");
        assert_string_equal(v, expect_ids);
        free(v);

}

/* ---- what a worker does after lockdown keeps working */

static volatile sig_atomic_t got_sigusr1;

static void on_sigusr1(int sig) {
        got_sigusr1 = 1;
}

static void child_allowed(const void *arg) {
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t addr_len = sizeof(addr);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT}, evs[4];
        struct timespec ts;
        struct timeval tv;
        struct stat st;
        uint8_t rnd[64];
        char buf[256];
        int p[2], lfd, ep, fd, cfd, sfd, one = 1, err;
        socklen_t err_len = sizeof(err);
        void *m;
        char *big;

        /* Before lockdown, like the worker: pipes, listening socket, epoll fd, a log line. */
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        CHECK(lfd >= 0);
        CHECK(bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) == 0);
        CHECK(listen(lfd, 8) == 0);
        CHECK(getsockname(lfd, (struct sockaddr *) &addr, &addr_len) == 0);
        ep = epoll_create1(EPOLL_CLOEXEC);
        CHECK(ep >= 0);
        CHECK(signal(SIGUSR1, on_sigusr1) != SIG_ERR);
        fprintf(stderr, "test-sandbox: child %d locking down\n", (int) getpid());

        lockdown_or_die();

        /* Pipes and stderr. */
        CHECK(write(p[1], "x", 1) == 1);
        CHECK(read(p[0], buf, 1) == 1 && buf[0] == 'x');
        fprintf(stderr, "test-sandbox: child %d locked down, logging to stderr\n", (int) getpid());

        /* Memory: small, large (mmap), realloc (mremap), explicit RW mapping, free. */
        big = malloc(4 << 20);
        CHECK(big);
        memset(big, 1, 4 << 20);
        big = realloc(big, 16 << 20);
        CHECK(big);
        free(big);
        m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(m != MAP_FAILED);
        CHECK(mprotect(m, 4096, PROT_READ) == 0);
        CHECK(madvise(m, 1 << 20, MADV_DONTNEED) == 0);
        CHECK(munmap(m, 1 << 20) == 0);

        /* Randomness and time. */
        CHECK(getrandom(rnd, sizeof(rnd), 0) == sizeof(rnd));
        CHECK(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
        CHECK(clock_gettime(CLOCK_BOOTTIME, &ts) == 0);
        CHECK(gettimeofday(&tv, NULL) == 0);
        CHECK(time(NULL) > 0);
        CHECK(syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts) == 0); /* without the vDSO */
        CHECK(usleep(1000) == 0);

        /* Sockets the worker may create. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        CHECK(fd >= 0);
        CHECK(close(fd) == 0);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        CHECK(close(fd) == 0);
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
        CHECK(fd >= 0);
        CHECK(close(fd) == 0);

        /* An upstream connection over loopback TCP, accepted on the inherited listener, through
         * epoll. */
        cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        CHECK(cfd >= 0);
        CHECK(setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0);
        CHECK(connect(cfd, (struct sockaddr *) &addr, sizeof(addr)) == 0 || errno == EINPROGRESS);
        ev.data.fd = cfd;
        CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) == 0);
        CHECK(epoll_wait(ep, evs, ELEMENTSOF(evs), 5000) == 1);
        CHECK(getsockopt(cfd, SOL_SOCKET, SO_ERROR, &err, &err_len) == 0 && err == 0);
        sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        CHECK(sfd >= 0);
        addr_len = sizeof(addr);
        CHECK(getpeername(sfd, (struct sockaddr *) &addr, &addr_len) == 0);
        CHECK(setsockopt(sfd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one)) == 0); /* conn_ack_handshake() */
        CHECK(send(cfd, "ping", 4, MSG_NOSIGNAL) == 4);
        ev.events = EPOLLIN;
        ev.data.fd = sfd;
        CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) == 0);
        CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, cfd, NULL) == 0);
        CHECK(epoll_wait(ep, evs, ELEMENTSOF(evs), 5000) == 1 && evs[0].data.fd == sfd);
        CHECK(ioctl(sfd, FIONREAD, &err) == 0 && err == 4);
        CHECK(recv(sfd, buf, sizeof(buf), 0) == 4 && memcmp(buf, "ping", 4) == 0);
        CHECK(fcntl(sfd, F_SETFL, fcntl(sfd, F_GETFL) & ~O_NONBLOCK) == 0);
        CHECK(shutdown(sfd, SHUT_WR) == 0);
        CHECK(close(sfd) == 0 && close(cfd) == 0);

        /* Signals to ourselves. */
        CHECK(raise(SIGUSR1) == 0);
        CHECK(got_sigusr1);

        /* Probes get an error, not a kill. */
        errno = 0;
        CHECK(isatty(STDERR_FILENO) == 0 && errno == ENOTTY);
        CHECK(fstat(STDIN_FILENO, &st) < 0 && errno == EPERM);
        CHECK(memfd_create("x", MFD_CLOEXEC) < 0 && errno == EPERM);

        /* The journal (no journald here: sendmsg gives ENOENT, which libsystemd hides). */
        CHECK(sd_journal_send("MESSAGE=test-sandbox", "PRIORITY=7", NULL) >= 0);

        /* The test hook is inert without its variable. */
        proxy_sandbox_test_hook();
}

static void test_allowed(void **state) {
        SANDBOX_NEEDS_ROOT();
        assert_exited_ok(run_child(child_allowed, NULL));
}

/* ---- TLS after lockdown, OpenSSL 3 as the worker uses it (keys and contexts made before
 * lockdown, handshakes after): mutual authentication with a CRL check, a full handshake and a
 * resumed one, 100 kB of data, over socketpairs. */

typedef struct TlsCase {
        int version; /* TLS1_2_VERSION or TLS1_3_VERSION */
        int key_type; /* EVP_PKEY_EC or EVP_PKEY_RSA */
} TlsCase;

/* A self-signed certificate for key, valid for an hour. */
static X509 *make_cert(EVP_PKEY *key) {
        X509 *cert = X509_new();

        if (!cert)
                return NULL;
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), -60);
        X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                                   (const unsigned char *) "sandbox.test", -1, -1, 0);
        X509_set_issuer_name(cert, X509_get_subject_name(cert));
        X509_set_pubkey(cert, key);
        if (X509_sign(cert, key, EVP_sha256()) <= 0) {
                X509_free(cert);
                return NULL;
        }
        return cert;
}

/* An empty CRL issued by cert, so that the push port's X509_V_FLAG_CRL_CHECK path runs. */
static X509_CRL *make_crl(X509 *cert, EVP_PKEY *key) {
        X509_CRL *crl = X509_CRL_new();
        ASN1_TIME *t = ASN1_TIME_new();

        if (!crl || !t)
                return NULL;
        X509_CRL_set_version(crl, 1);
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(cert));
        X509_gmtime_adj(t, -60);
        X509_CRL_set1_lastUpdate(crl, t);
        X509_gmtime_adj(t, 3600);
        X509_CRL_set1_nextUpdate(crl, t);
        ASN1_TIME_free(t);
        if (X509_CRL_sign(crl, key, EVP_sha256()) <= 0)
                return NULL;
        return crl;
}

/* Both ends trust cert and require the other's certificate: the push port's mTLS, with a CRL
 * check on the server side. */
static SSL_CTX *make_ctx(bool server, int version, X509 *cert, EVP_PKEY *key, X509_CRL *crl) {
        SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
        X509_STORE *store;

        if (!ctx)
                return NULL;
        if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1)
                return NULL;
        store = SSL_CTX_get_cert_store(ctx);
        if (X509_STORE_add_cert(store, cert) != 1)
                return NULL;
        if (server && (X509_STORE_add_crl(store, crl) != 1 ||
                       X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) != 1))
                return NULL;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_min_proto_version(ctx, version);
        SSL_CTX_set_max_proto_version(ctx, version);
        if (server)
                SSL_CTX_set_session_id_context(ctx, (const unsigned char *) "t", 1);
        return ctx;
}

/* One step of a non-blocking handshake: 1 done, 0 wants I/O, -1 error. */
static int tls_step(SSL *ssl) {
        int r = SSL_do_handshake(ssl);
        if (r == 1)
                return 1;
        r = SSL_get_error(ssl, r);
        return r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* A handshake between sctx and cctx over sv (resuming session when given) and 100 kB from
 * client to server. Returns the client's session for resumption. */
static SSL_SESSION *tls_connection(SSL_CTX *sctx, SSL_CTX *cctx, const int sv[2], SSL_SESSION *session) {
        static char out[100000], in[100000];
        size_t got = 0, sent = 0;
        int ds = 0, dc = 0;
        SSL_SESSION *ret;
        SSL *s, *cl;

        s = SSL_new(sctx);
        cl = SSL_new(cctx);
        CHECK(s && cl);
        CHECK(SSL_set_fd(s, sv[0]) == 1 && SSL_set_fd(cl, sv[1]) == 1);
        if (session)
                CHECK(SSL_set_session(cl, session) == 1);
        SSL_set_accept_state(s);
        SSL_set_connect_state(cl);
        for (int i = 0; i < 1000 && !(ds && dc); i++) {
                if (!dc)
                        dc = tls_step(cl);
                if (!ds)
                        ds = tls_step(s);
                if (ds < 0 || dc < 0)
                        ERR_print_errors_fp(stderr);
                CHECK(ds >= 0 && dc >= 0);
        }
        CHECK(ds == 1 && dc == 1);
        CHECK(SSL_get_verify_result(s) == X509_V_OK);
        CHECK(!!SSL_session_reused(cl) == !!session);

        CHECK(getrandom(out, sizeof(out), 0) == sizeof(out));
        while (got < sizeof(in)) {
                size_t n;
                if (sent < sizeof(out) && SSL_write_ex(cl, out + sent, sizeof(out) - sent, &n) == 1)
                        sent += n;
                if (SSL_read_ex(s, in + got, sizeof(in) - got, &n) == 1)
                        got += n;
                else
                        CHECK(SSL_get_error(s, 0) == SSL_ERROR_WANT_READ);
        }
        CHECK(memcmp(in, out, sizeof(in)) == 0);

        /* TLS 1.3 tickets arrive after the handshake: let the client read them. */
        (void) SSL_read_ex(cl, in, 1, &got);
        ret = SSL_get1_session(cl);
        CHECK(ret);
        (void) SSL_shutdown(cl);
        (void) SSL_shutdown(s);
        SSL_free(s);
        SSL_free(cl);
        return ret;
}

static void child_tls(const void *arg) {
        const TlsCase *c = arg;
        SSL_CTX *sctx, *cctx;
        SSL_SESSION *session;
        EVP_PKEY *key;
        X509_CRL *crl;
        X509 *cert;
        int sv1[2], sv2[2];

        /* Before lockdown, like the worker: keys, certificates, contexts, sockets. */
        key = c->key_type == EVP_PKEY_RSA ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
        CHECK(key);
        cert = make_cert(key);
        CHECK(cert);
        crl = make_crl(cert, key);
        CHECK(crl);
        sctx = make_ctx(true, c->version, cert, key, crl);
        cctx = make_ctx(false, c->version, cert, key, crl);
        CHECK(sctx && cctx);
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv1) == 0);
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv2) == 0);

        lockdown_or_die();

        /* A full handshake, then a resumed one. */
        session = tls_connection(sctx, cctx, sv1, NULL);
        SSL_SESSION_free(tls_connection(sctx, cctx, sv2, session));
        SSL_SESSION_free(session);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
        X509_CRL_free(crl);
        X509_free(cert);
        EVP_PKEY_free(key);
}

static void test_tls(void **state) {
        static const TlsCase cases[] = {
                {TLS1_3_VERSION, EVP_PKEY_EC},
                {TLS1_2_VERSION, EVP_PKEY_EC},
                {TLS1_2_VERSION, EVP_PKEY_RSA},
        };

        SANDBOX_NEEDS_ROOT();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_exited_ok(run_child(child_tls, cases + i));
}

/* ---- what must kill */

/* The forbidden cases tell the parent, through this pipe, that they got past the lockdown and
 * are about to make their one forbidden call, so that a kill anywhere else does not pass. */
static int marker_pipe[2] = {-1, -1};

static void lockdown_and_mark(void) {
        char c = 1;

        lockdown_or_die();
        CHECK(write(marker_pipe[1], &c, 1) == 1);
}

static void forbidden_via_hook(const char *what) {
        CHECK(setenv("REGVISOR_TEST_FORBIDDEN_SYSCALL", what, 1) == 0);
        lockdown_and_mark();
        proxy_sandbox_test_hook();
}

static void forbidden_socket(int family, int type, int protocol) {
        lockdown_and_mark();
        (void) socket(family, type, protocol);
}

static void f_hook_execve(void) { forbidden_via_hook("execve"); }
static void f_hook_ptrace(void) { forbidden_via_hook("ptrace"); }
static void f_hook_netlink(void) { forbidden_via_hook("netlink"); }
static void f_hook_open(void) { forbidden_via_hook("open"); }
static void f_hook_fork(void) { forbidden_via_hook("fork"); }

static void f_open_create(void) {
        char path[TMPDIR_PATH_MAX], name[64];
        /* A name no one made: the seccomp table, not the file system, says no. */
        (void) snprintf(name, sizeof(name), "test-sandbox-%d", (int) getpid());
        CHECK(tmpdir_template(path, sizeof(path), name) == 0);
        lockdown_and_mark();
        (void) open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
}
static void f_open_proc(void) {
        lockdown_and_mark();
        (void) open("/proc/self/status", O_RDONLY | O_CLOEXEC);
}
static void f_execve(void) {
        char *argv[] = {(char *) "/bin/true", NULL};
        lockdown_and_mark();
        (void) execv("/bin/true", argv);
}
static void f_fork(void) {
        lockdown_and_mark();
        (void) fork();
}
static void f_vfork(void) {
        lockdown_and_mark();
        (void) syscall(SYS_vfork);
}
static void f_clone3(void) {
        lockdown_and_mark();
        (void) syscall(SYS_clone3, NULL, 0);
}
static void f_ptrace_traceme(void) {
        lockdown_and_mark();
        (void) syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
}
static void f_netlink_route(void) { forbidden_socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0); }
static void f_netlink_dgram(void) { forbidden_socket(AF_NETLINK, SOCK_DGRAM, 0); }
static void f_packet(void) { forbidden_socket(AF_PACKET, SOCK_RAW, 0); }
static void f_udp(void) { forbidden_socket(AF_INET, SOCK_DGRAM, 0); }
static void f_raw(void) { forbidden_socket(AF_INET, SOCK_RAW, IPPROTO_TCP); }
static void f_sctp(void) { forbidden_socket(AF_INET, SOCK_STREAM, 132 /* IPPROTO_SCTP */); }
static void f_unix_seqpacket(void) { forbidden_socket(AF_UNIX, SOCK_SEQPACKET, 0); }
static void f_vsock(void) { forbidden_socket(40 /* AF_VSOCK */, SOCK_STREAM, 0); }
static void f_mmap_exec(void) {
        lockdown_and_mark();
        (void) mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
static void f_mprotect_exec(void) {
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(m != MAP_FAILED);
        lockdown_and_mark();
        (void) mprotect(m, 4096, PROT_READ | PROT_EXEC);
}
static void f_kill_other(void) {
        lockdown_and_mark();
        (void) kill(1, 0);
}
static void f_tgkill_other(void) {
        lockdown_and_mark();
        (void) syscall(SYS_tgkill, 1, 1, 0);
}
static void f_setuid(void) {
        lockdown_and_mark();
        (void) syscall(SYS_setuid, 65533);
}
static void f_prctl(void) {
        lockdown_and_mark();
        (void) syscall(SYS_prctl, 4 /* PR_SET_DUMPABLE */, 1, 0, 0, 0);
}
static void f_ioctl_tiocsti(void) {
        char c = 'x';
        lockdown_and_mark();
        (void) ioctl(STDIN_FILENO, TIOCSTI, &c);
}
static void f_fcntl_dupfd(void) {
        lockdown_and_mark();
        (void) fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
}
static void f_unshare(void) {
        lockdown_and_mark();
        (void) syscall(SYS_unshare, 0x10000000 /* CLONE_NEWUSER */);
}
static void f_bpf(void) {
        lockdown_and_mark();
        (void) syscall(SYS_bpf, 0, NULL, 0);
}
static void f_io_uring(void) {
        lockdown_and_mark();
        (void) syscall(SYS_io_uring_setup, 1, NULL);
}
static void f_seccomp(void) {
        lockdown_and_mark();
        (void) syscall(SYS_seccomp, 0 /* SECCOMP_SET_MODE_STRICT */, 0, NULL);
}
static void f_stat_path(void) {
        /* stat by path is a probe (errno), but the plain stat syscall has no row at all */
        struct stat st;
        lockdown_and_mark();
        (void) syscall(SYS_stat, "/etc/shadow", &st);
}
/* The i386 ABI from a 64-bit process: a different syscall table the x86_64 rules do not
 * cover; the filter's bad-arch action kills. */
static void f_int80(void) {
        long ret;
        lockdown_and_mark();
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L /* i386 getpid */) : "memory");
}
/* The x32 ABI: syscall numbers with bit 30 set. */
static void f_x32(void) {
        lockdown_and_mark();
        (void) syscall(0x40000000 | SYS_getpid);
}

/* The worker's loop is plain epoll, its signalfd made before lockdown:
 * sd-event's calls have no row. */
static void f_timerfd(void) {
        lockdown_and_mark();
        (void) timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
}
static void f_epoll_pwait(void) {
        lockdown_and_mark();
        (void) syscall(SYS_epoll_pwait, -1, NULL, 0, 0, NULL, 8);
}
static void f_epoll_pwait2(void) {
        lockdown_and_mark();
        (void) syscall(SYS_epoll_pwait2, -1, NULL, 0, NULL, NULL, 8);
}
static void f_signalfd(void) {
        sigset_t mask;

        sigemptyset(&mask);
        lockdown_and_mark();
        (void) signalfd(-1, &mask, SFD_CLOEXEC);
}

static void run_forbidden(const void *arg) {
        void (*fn)(void) = *(void (*const *)(void)) arg;
        fn();
        /* Still here: the call was not killed. */
        _exit(99);
}

static void test_forbidden(void **state) {
        static const struct {
                const char *name;
                void (*fn)(void);
        } cases[] = {
                {"hook execve", f_hook_execve},
                {"hook ptrace", f_hook_ptrace},
                {"hook netlink", f_hook_netlink},
                {"hook open", f_hook_open},
                {"hook fork", f_hook_fork},
                {"open O_CREAT of a new file", f_open_create},
                {"open of /proc/self/status", f_open_proc},
                {"execve /bin/true", f_execve},
                {"fork", f_fork},
                {"vfork", f_vfork},
                {"clone3", f_clone3},
                {"ptrace TRACEME", f_ptrace_traceme},
                {"socket AF_NETLINK raw", f_netlink_route},
                {"socket AF_NETLINK dgram", f_netlink_dgram},
                {"socket AF_PACKET", f_packet},
                {"socket UDP", f_udp},
                {"socket raw IP", f_raw},
                {"socket SCTP", f_sctp},
                {"socket AF_UNIX seqpacket", f_unix_seqpacket},
                {"socket AF_VSOCK", f_vsock},
                {"mmap PROT_EXEC", f_mmap_exec},
                {"mprotect PROT_EXEC", f_mprotect_exec},
                {"kill pid 1", f_kill_other},
                {"tgkill pid 1", f_tgkill_other},
                {"setuid", f_setuid},
                {"prctl", f_prctl},
                {"ioctl TIOCSTI", f_ioctl_tiocsti},
                {"fcntl F_DUPFD_CLOEXEC", f_fcntl_dupfd},
                {"unshare", f_unshare},
                {"bpf", f_bpf},
                {"io_uring_setup", f_io_uring},
                {"seccomp", f_seccomp},
                {"stat by path", f_stat_path},
                {"int 0x80", f_int80},
                {"x32 syscall", f_x32},
                {"timerfd_create", f_timerfd},
                {"epoll_pwait", f_epoll_pwait},
                {"epoll_pwait2", f_epoll_pwait2},
                {"signalfd", f_signalfd},
        };

        SANDBOX_NEEDS_ROOT();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int status;
                char c;

                assert_int_equal(pipe2(marker_pipe, O_CLOEXEC | O_NONBLOCK), 0);
                status = run_child(run_forbidden, &cases[i].fn);
                if (read(marker_pipe[0], &c, 1) != 1)
                        fail_msg("%s: child died before its forbidden call", cases[i].name);
                (void) close(marker_pipe[0]);
                (void) close(marker_pipe[1]);
                /* A kernel without IA32 emulation (CONFIG_IA32_EMULATION off, or
                 * ia32_emulation=0) faults `int 0x80` before seccomp sees it: the call
                 * never runs either way. */
                if (cases[i].fn == f_int80 && WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV)
                        continue;
                assert_killed_by(status, SIGSYS, cases[i].name);
        }
}

/* ---- the hook never passes silently, and the log mode logs instead of killing */

static void child_hook_unfiltered(const void *arg) {
        CHECK(setenv("REGVISOR_TEST_FORBIDDEN_SYSCALL", "open", 1) == 0);
        proxy_sandbox_test_hook(); /* no lockdown: the open works, the hook aborts */
}

static void child_hook_unknown(const void *arg) {
        CHECK(setenv("REGVISOR_TEST_FORBIDDEN_SYSCALL", "no-such-call", 1) == 0);
        lockdown_or_die();
        proxy_sandbox_test_hook();
}

static void test_hook_is_loud(void **state) {
        SANDBOX_NEEDS_ROOT();
        assert_killed_by(run_child(child_hook_unfiltered, NULL), SIGABRT, "hook without sandbox");
        assert_killed_by(run_child(child_hook_unknown, NULL), SIGABRT, "hook with unknown value");
}

static void child_log_mode(const void *arg) {
        CHECK(setenv("REGVISOR_SECCOMP_LOG", "1", 1) == 0);
        lockdown_or_die();
        /* Not in the table: logged by the kernel, executed. */
        CHECK(syscall(SYS_getppid) > 0);
        CHECK(syscall(SYS_getuid) == (long) nobody_uid);
}

static void test_log_mode(void **state) {
        SANDBOX_NEEDS_ROOT();
        assert_exited_ok(run_child(child_log_mode, NULL));
}

/* ---- refusals */

static void child_refuses_root(const void *arg) {
        CHECK(proxy_sandbox_lockdown(0, 0) == -EINVAL);
        CHECK(proxy_sandbox_lockdown(nobody_uid, 0) == -EINVAL);
        CHECK(proxy_sandbox_lockdown(0, nobody_gid) == -EINVAL);
        CHECK(getuid() == 0);
}

static void test_refuses_root(void **state) {
        SANDBOX_NEEDS_ROOT();
        assert_exited_ok(run_child(child_refuses_root, NULL));
}

/* ---- the table and policy/proxy-syscalls.md name the same rules */

static void test_table(void **state) {
        assert_table_matches_doc(proxy_sandbox_rule_get, "policy/proxy-syscalls.md", "sandbox.c", 40);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_refuses_root),
                cmocka_unit_test(test_status),
                cmocka_unit_test(test_allowed),
                cmocka_unit_test(test_tls),
                cmocka_unit_test(test_forbidden),
                cmocka_unit_test(test_hook_is_loud),
                cmocka_unit_test(test_log_mode),
        };

        return cmocka_run_group_tests(tests, setup, NULL);
}
