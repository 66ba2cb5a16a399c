/* SPDX-License-Identifier: MIT */
#include <openssl/opensslv.h>
#include <stdio.h>

#include "verbs.h"

int verb_version(int argc, char **argv) {
        (void) argc;
        (void) argv;
        printf("regvisor %s (%s)\n", REGVISOR_VERSION, OPENSSL_VERSION_TEXT);
        return 0;
}
