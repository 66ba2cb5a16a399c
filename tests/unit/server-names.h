/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Server names as the configuration hands them to pki (Config.servers[]),
 * written out: the test says what config.c decided, IP or DNS, bytes and
 * all, so that a PKI test does not depend on that parser.
 */
#include <sys/socket.h>

#include "config.h"

#define SN_DNS(n) ((ServerName){.name = (n)})
#define SN_IP4(text, a, b, c, d) \
        ((ServerName){.name = (text), .is_ip = true, .family = AF_INET, .address = {a, b, c, d}})
/* The 16 bytes as an initializer list (designators welcome: [15] = 1). */
#define SN_IP6(text, ...) ((ServerName){.name = (text), .is_ip = true, .family = AF_INET6, .address = {__VA_ARGS__}})
