/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `regvisor provision`: one table of steps (name, check, apply). The runner
 * walks the table in order: check says whether the host is already right;
 * if not, apply makes it so (unless --dry-run). Each step is small and
 * idempotent, so an interrupted run converges when run again.
 */

#include <openssl/types.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>
#include <systemd/sd-bus.h>

#include "config.h"

typedef struct Provision Provision;
typedef struct ProvisionStep ProvisionStep;

typedef enum {
        OWNER_ROOT,          /* root:root */
        OWNER_ROOT_PROXY,    /* root:proxy_user's group */
        OWNER_ROOT_SERVICE,  /* root:service_user's group */
        OWNER_SERVICE,       /* service_user:service_user */
        OWNER_SERVICE_PROXY, /* service_user:proxy_user's group */
} Owner;

struct Provision {
        const Config *config;
        const char *root; /* NULL: the real host; else a staging tree */
        bool dry_run;
        /* deprovision only: also the data and the PKI (rows STEP_DATA), also
         * the users (rows STEP_USERS). */
        bool purge;
        bool remove_users;
        /* provision --adopt: take over a host set up by the install guide
         * (provision-adopt.c). */
        bool adopt;

        /* Identities, looked up after the user steps (on the host) or from
         * the host's passwd database (under --root, root:root if absent). */
        bool have_service_user;
        bool have_proxy_user;
        uid_t service_uid;
        gid_t service_gid;
        char *service_home;
        uid_t proxy_uid;
        gid_t proxy_gid;

        sd_bus *system_bus;     /* opened on first use */
        char *registry_secret;  /* http.secret, read or made once per run */
};

/* Flags of a step. */
enum {
        STEP_HOST_ONLY = 1 << 0, /* users, D-Bus, image: skipped under --root */
        /* For deprovision: what the row made is data (storage, signatures,
         * the PKI, podman's images), undone only with --purge, and then as
         * a whole directory with everything in it. */
        STEP_DATA = 1 << 1,
        STEP_USERS = 1 << 2, /* a user or its ids: undone only with --remove-users */
        /* A directory in /run: removed with what is in it (sockets). */
        STEP_RUNTIME = 1 << 3,
        STEP_UNDO_ONLY = 1 << 4, /* deprovision alone walks it (units provision never starts) */
};

struct ProvisionStep {
        const char *name;
        unsigned flags;
        /* 1 when already right, 0 when apply is needed, negative errno on
         * error. *ret_detail (optional, allocated) says what differs. */
        int (*check)(Provision *p, const ProvisionStep *s, char **ret_detail);
        /* Makes it right. 0 or negative errno; *ret_detail says what it did
         * or why it failed. */
        int (*apply)(Provision *p, const ProvisionStep *s, char **ret_detail);
        const void *data; /* step-specific description (file, directory) */
        /* `regvisor deprovision` walks the table backwards with these, in
         * the same shape: undo_check is 1 when nothing of the row is left
         * (or what is left is not ours to remove: the detail says so), 0
         * when undo must run, negative errno to refuse (the run stops).
         * NULL: the row leaves nothing of its own (a check), or a STEP_DATA
         * row whose files go with their directory's row. */
        int (*undo_check)(Provision *p, const ProvisionStep *s, char **ret_detail);
        int (*undo)(Provision *p, const ProvisionStep *s, char **ret_detail);
};

/* A file that provisioning owns: rendered from the configuration. */
typedef struct {
        /* Absolute path on the host (before --root) and content. */
        int (*render)(Provision *p, char **ret_path, char **ret_content);
        mode_t mode;
        Owner owner;
} ManagedFile;

/* A directory that provisioning owns. */
typedef struct {
        int (*path)(Provision *p, char **ret_path);
        mode_t mode;
        Owner owner;
} ManagedDirectory;

/* Which of the two users a user step is about (its data). */
typedef enum { USER_SERVICE, USER_PROXY } WhichUser;

typedef struct {
        unsigned ok, changed, failed, skipped;
} ProvisionCounts;

/* What happened to one row. */
typedef enum {
        STEP_RESULT_OK,      /* already right */
        STEP_RESULT_CHANGED, /* made right (applied) */
        STEP_RESULT_WOULD,   /* --dry-run: would be changed */
        STEP_RESULT_SKIPPED, /* not looked at: see ProvisionSkip */
        STEP_RESULT_FAILED,  /* the run stops here */
        STEP_RESULT_NOT_RUN, /* after a failed row */
} StepResult;

/* Why a row was skipped. */
typedef enum {
        SKIP_NONE,
        SKIP_HOST_ONLY, /* --root: the row changes the host itself */
        SKIP_NEEDS_USER, /* a user it needs does not exist (yet) */
        /* deprovision: */
        SKIP_NO_UNDO,    /* the row leaves nothing of its own */
        SKIP_KEPT_DATA,  /* STEP_DATA without --purge */
        SKIP_KEPT_USERS, /* STEP_USERS without --remove-users */
} ProvisionSkip;

typedef struct {
        const char *name; /* the row's name (static) */
        StepResult result;
        ProvisionSkip skip;
        int error;    /* negative errno when failed */
        char *detail; /* what differs, what was done, or why; may be NULL */
} ProvisionResult;

typedef struct {
        ProvisionResult *results; /* one per row, in table order */
        size_t n_results;
        ProvisionCounts counts;
} ProvisionReport;

/* Called after each row, before the next one starts, so a long run can be
 * shown as it goes. */
typedef void (*ProvisionProgress)(const ProvisionResult *r, void *userdata);

/* Runs every step and prints nothing: *ret_report (freed with
 * provision_report_done(), always set, also on failure) holds one result per
 * row; progress (optional) sees each as it is done. Stops at the first
 * failed step (later steps build on earlier ones: they are NOT_RUN).
 * Returns 0 when nothing failed, else the first failure's negative errno. */
int provision_run(Provision *p, ProvisionProgress progress, void *userdata, ProvisionReport *ret_report);
void provision_report_done(ProvisionReport *r);

/* `regvisor deprovision`: the same table walked from its last row to its
 * first with undo_check/undo, so what provision made is removed in the
 * reverse order it was made (units stopped before the files they read,
 * the user manager stopped before its user is removed). Reported like
 * provision_run(); stops at the first refused row. Never under --root. */
int deprovision_run(Provision *p, ProvisionProgress progress, void *userdata, ProvisionReport *ret_report);

/* "ok", "changed", "would", "skipped", "failed", "not-run". */
const char *step_result_to_string(StepResult r);

/* The table, exported for unit tests of its shape. */
extern const ProvisionStep provision_steps[];
extern const size_t provision_n_steps;

/* Helpers shared by the step files. */
char *provision_path(const Provision *p, const char *path); /* root-prefixed */
int provision_owner(const Provision *p, Owner owner, uid_t *ret_uid, gid_t *ret_gid);
int provision_lookup_users(Provision *p);
int provision_system_bus(Provision *p, sd_bus **ret_bus);
void provision_done(Provision *p);

/* Test hook: when $REGVISOR_TEST_KILL_AT equals point, the process kills
 * itself with SIGKILL (to test that an interrupted provision converges). */
void provision_kill_point(const char *point);

/* Step functions, one file per concern. */
int step_user_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_user_apply(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_subids_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_subids_apply(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_linger_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_linger_apply(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_user_manager_reload_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_user_manager_reload_apply(Provision *p, const ProvisionStep *s, char **ret_detail);
/* regvisor.socket loaded, enabled, and started where regvisor.service is
 * installed and not holding the ports itself (provision-systemd.c). */
/* provision-egress.c: the egress table loaded (a shared store), or none
 * left (the filesystem store, or undone). */
int step_egress_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_egress_apply(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_egress_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_egress_undo(Provision *p, const ProvisionStep *s, char **ret_detail);

int step_proxy_socket_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_proxy_socket_apply(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_proxy_socket_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_proxy_socket_undo(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_pki_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_pki_apply(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_signing_keys_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_signing_keys_apply(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_policy_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_policy_apply(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_image_archive_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_image_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_image_apply(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_podman_info_check(Provision *p, const ProvisionStep *s, char **ret_detail);

/* provision --adopt (provision-adopt.c): the guide's layout checked first
 * (a plain provision refuses a guide host), its registry unit and what
 * held 443/4443 (registry-proxy.service, nginx sites) stopped and disabled. */
int step_guide_layout_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_guide_registry_unit_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_guide_registry_unit_apply(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_guide_proxy_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_guide_proxy_apply(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_guide_storage_modes_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_guide_storage_modes_apply(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_guide_registry_unit_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_guide_registry_unit_undo(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_guide_proxy_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_guide_proxy_undo(Provision *p, const ProvisionStep *s, char **ret_detail);
/* The ports of every listen directive in nginx configuration text (at most
 * max, in *ret_n): "listen [::]:443 ssl;" is 443, a host alone 80, a unix
 * socket none. Comments are skipped. */
int nginx_conf_listen_ports(const char *text, unsigned *ret_ports, size_t max, size_t *ret_n);
/* A key or certificate below [tls] dir (rel), as the PKI rows read it. */
int provision_pki_load_key(const Provision *p, const char *rel, EVP_PKEY **ret);
int provision_pki_load_cert(const Provision *p, const char *rel, X509 **ret);

/* Their undo pairs, for deprovision (same contract as check/apply). */
int step_signing_keys_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_signing_keys_undo(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_user_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_user_undo(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_subids_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_subids_undo(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_linger_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_linger_undo(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_policy_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_policy_undo(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_registry_unit_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_registry_unit_undo(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_system_units_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail);
int step_system_units_undo(Provision *p, const ProvisionStep *s, char **ret_detail);

/* Deprovision of a file provision writes with exactly data (at full):
 * 1 when it is gone, 0 when it is ours to remove, -EEXIST (with the
 * detail) when its content is not what provision writes, so someone
 * changed it: it is left alone. The second removes it. */
int provision_file_undo_check(const char *full, const void *data, size_t size, char **ret_detail);
int provision_file_undo(const char *full, char **ret_detail);

/* regvisor pki: a new client key and certificate (private/clients/NAME.key,
 * clients/NAME.crt), or its revocation (added to the CRL, certificate kept
 * as NAME.crt.revoked, key removed). Issuing for a name whose last
 * certificate was revoked fails with -EPERM unless reissue. A CRL that does
 * not parse or is not the client CA's fails the revocation and is left as
 * it is. *ret_detail says what was done or what is wrong. */
int pki_files_issue_client(Provision *p, const char *name, bool reissue, char **ret_detail);
int pki_files_revoke_client(Provision *p, const char *name, char **ret_detail);

/* regvisor pki sign: NAME's certificate for the public key of a request
 * made on the client (client request), whose key never leaves it. The
 * request's self-signature must verify and its CN be name (NULL: its CN,
 * which must be a valid client name); everything else it asks is ignored:
 * subject, validity and extensions are this host's, as for issue-client.
 * days: the validity, at most [tls] cert_days (-EPERM beyond); 0: that.
 * The name in *ret_name (may be NULL). */
int pki_files_sign_request(Provision *p, const char *csr_pem, size_t size, const char *name, unsigned days,
                           bool reissue, char **ret_name, char **ret_detail);

/* A client certificate as `regvisor pki list` shows it. */
typedef struct {
        char *name;
        char *serial; /* hex */
        char *cn;     /* the subject's CN */
        time_t not_after;
        bool revoked; /* on the CRL, or kept as clients/NAME.crt.revoked */
} PkiClient;

/* Every clients/NAME.crt and NAME.crt.revoked, sorted by name. *ret_detail
 * may be set on success too: then the CRL could not be trusted (why), and
 * only the .revoked files said who is revoked. Free with pki_clients_free. */
int pki_files_list_clients(Provision *p, PkiClient **ret, size_t *ret_n, char **ret_detail);
void pki_clients_free(PkiClient *c, size_t n);

/* regvisor pki renew NAME: a new certificate for NAME, same CN, new serial,
 * for the key of its current one (no key needed here: a signed client's
 * stays on the client) or, with rekey, for a new key written 0600 before
 * any byte of it (only when the key is kept here). The previous certificate
 * is not revoked: it works until it expires. A revoked NAME is refused
 * (-EPERM). */
int pki_files_renew_client(Provision *p, const char *name, bool rekey, char **ret_detail);

/* regvisor pki renew --server: the server certificate again (new serial)
 * with the configuration's names and CRL distribution point, for its key or
 * a new one (rekey: 0640 root:proxy group, as provision makes it). */
int pki_files_renew_server(Provision *p, bool rekey, char **ret_detail);

/* regvisor pki renew --crl: both CRLs again now (same entries, number one
 * up, nextUpdate [pki] crl_validity ahead). */
int pki_files_renew_crls(Provision *p, char **ret_detail);

/* What regvisor run renews by itself at time now: the server certificate
 * (same key) and each CRL whose end is within [pki] renew_before (at most
 * half its validity). The number renewed (0: nothing due) with *ret_detail
 * saying what, or a negative errno with *ret_detail saying why (a CRL that
 * is not genuine is left alone, as provision does). */
int pki_files_renew_due(Provision *p, time_t now, char **ret_detail);

/* The tree's fixed certificates and CRLs, as `pki list` shows them. */
#define PKI_TREE_ENTRIES 5
typedef struct {
        const char *what; /* server-ca, server, client-ca, server-ca-crl, client-ca-crl */
        char *path;
        bool is_crl;
        time_t not_before, not_after; /* a CRL: thisUpdate, nextUpdate */
        long margin;                  /* renewed (or to be) this long before not_after */
        char *serial, *cn;            /* certificates */
        long crl_number;              /* CRLs */
        unsigned n_revoked;
        char *error; /* could not be read (missing, not genuine): why; the rest unset */
} PkiTreeEntry;

/* Fills every entry (each entry's error says what could not be read);
 * -ENOMEM only. Release with pki_tree_done(). */
int pki_files_list_tree(Provision *p, PkiTreeEntry ret[static PKI_TREE_ENTRIES]);
void pki_tree_done(PkiTreeEntry e[static PKI_TREE_ENTRIES]);
