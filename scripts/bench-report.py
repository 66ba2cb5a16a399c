#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes BENCHMARKS.md (on stdout) from the results of scripts/bench.

Input: a TSV file, one row per measurement:
    ID  LABEL  UNIT  BETTER(high|low)  DIRECT  NGINX  REGVISOR
and the machine facts in BENCH_* environment variables.
"""

import os
import sys

# Rows within this fraction of nginx count as on par (run-to-run noise on a
# shared 2-core machine is about this large).
PAR = 0.05

# Why regvisor is below nginx on a row, as far as we know: printed for the
# rows where it is below in this run. Keep these true when the proxy changes.
WHY = {
    "rss-idle": "Idle memory (VmRSS counts libssl/libcrypto once per process; see PSS).",
    "pss-idle": "Idle memory.",
    "rss-1k": (
        "Idle keep-alive connections keep their buffers: exchange_finish() "
        "(proxy/worker.c) releases `uin`/`uout` but never `cin`/`cout` (2 x "
        "64 KiB), and the SSL_read that ends every round with WANT_READ makes "
        "OpenSSL allocate its read buffer again (64 KiB, "
        "SSL_CTX_set_default_read_buffer_len in proxy/tls.c), which "
        "SSL_MODE_RELEASE_BUFFERS frees only after a record is read. With "
        "1,000 idle connections the workers' VmSize was 176 MiB (about 170 "
        "KiB per connection), of which about 30 KiB per connection is "
        "resident, against about 16 KiB for nginx, which calls "
        "SSL_free_buffers() when a connection goes idle "
        "(ngx_http_set_keepalive). docs/ARCHITECTURE.md promises no buffers "
        "while idle. A naive fix (release cin/cout and SSL_free_buffers() in "
        "exchange_finish) cut VmSize to 113 MiB but not the resident size, "
        "because the next round's SSL_read allocates the read buffer again: "
        "the release has to come after the last EAGAIN read, and the "
        "needless read has to go (see the pull rows)."),
    "pss-1k": "Per-connection memory: see the RSS row above.",
    "get-v2": (
        "Small keep-alive requests are bounded by CPU shared by wrk, the proxy "
        "and the registry on 2 cores (the registry spends about 1 ms per GET "
        "/v2/, 10x the proxy): compare the CPU rows, which are less noisy."),
    "get-blob": (
        "The registry spends 2-3 ms of CPU per small blob GET, 10-20x either "
        "proxy, so it sets the ceiling on 2 cores and the rate is mostly "
        "noise from other load; compare the CPU rows."),
    "cpu-get-v2": "Per-request proxy CPU.",
    "cpu-get-blob": "Per-request proxy CPU.",
    "hs-ec": (
        "Full handshakes are bounded by ECDHE + ECDSA work in the clients and "
        "the proxy on the same 2 cores; the per-handshake CPU row is the "
        "better comparison."),
    "cpu-hs-ec": (
        "Per full handshake: both are OpenSSL 3.0 doing the same work; "
        "regvisor additionally reads into its 64 KiB default read buffer "
        "(proxy/tls.c). Differences under about 10% were within run-to-run "
        "noise here."),
    "hs-rsa": (
        "Full RSA-4096 handshakes are bounded by the server's RSA signature "
        "(about 160 per second per core here)."),
    "cpu-hs-rsa": "Per RSA handshake: the RSA-4096 signature dominates both.",
    "hs-resume": "Resumed handshakes: noise from other load, see the CPU row.",
    "cpu-hs-resume": "Per resumed handshake.",
    "pull-64m": (
        "regvisor copies every response body byte from `uin` to `cout` "
        "(pump_response_body -> buf_append, proxy/worker.c) and, because "
        "SSL_write with SSL_MODE_ENABLE_PARTIAL_WRITE (proxy/tls.c) returns "
        "after each 16 KiB record, `cout` drains 16 KiB at a time while "
        "buf_append()/buf_prepare() move the remaining <= 48 KiB to the front "
        "before appending the next 16 KiB: about 3 bytes memmoved per byte "
        "forwarded. perf during a 64 MiB pull: __memmove_evex_unaligned_erms "
        "is 15% of the worker's samples. An experimental build that appends "
        "only into the tail room (no compaction, 3 lines in "
        "pump_response_body) used 71-76 clock ticks of CPU per 512 MiB "
        "pulled, against 85-86 for the current code and 75-76 for nginx, and "
        "pulled as fast as nginx. Second cost: conn_run() calls "
        "endpoint_fill(client) (SSL_read -> read()) on every round although "
        "the client sends nothing during a pull: strace counts 4,106 read() "
        "calls failing with EAGAIN per 64 MiB (one per 16 KiB record), and "
        "the registry is read in 16 KiB pieces (4,105 recvfrom per 64 MiB; "
        "nginx: 1,830 readv). Fix: send body bytes from `uin` directly (or "
        "make the buffers rings) and remember readability from epoll edges "
        "instead of probing with a read each round."),
    "pull-big": "Same cause as the 64 MiB pull (above).",
    "cpu-pull-64m": "Same cause as the 64 MiB pull (above).",
    "cpu-pull-big": "Same cause as the 64 MiB pull (above).",
    "push-big": (
        "The registry bounds pushes (it hashes and writes the blob: several "
        "s of CPU per GiB on one core), so the rate is mostly noise; compare "
        "the CPU row."),
    "hs-get": (
        "A new connection per request is bounded by the 16 python clients' "
        "own handshakes on the same 2 cores; see the CPU row."),
    "cpu-hs-get": (
        "Per connection, both do the same OpenSSL 3.0 handshake work (ECDHE "
        "X25519, ECDSA P-256 signature: most of the CPU, perf shows libcrypto "
        "and the kernel's TCP/syscall path as the two large parts). What "
        "regvisor controls was cut (one TLS 1.3 ticket instead of two, no "
        "per-connection TCP_NODELAY, no epoll_ctl DEL before close); what "
        "remains: a new upstream TCP connection per request (as the guide's "
        "nginx: no upstream keep-alive), the response head and body written "
        "as two TLS records, the access-log write."),
    "lat-hs-get": "Latency on a loaded 2-core machine: noise; see the CPU row.",
    "share-cpu": (
        "How evenly the workers share the load: 50 is even; within a few "
        "points is noise."),
    "share-accept": "50 is even.",
    "rss-per-idle": "Per idle connection: see the RSS row with 1,000 connections.",
    "rss-busy": (
        "A stalled bulk download holds regvisor's buffers (the 64 KiB "
        "upstream read buffer and the client-side write buffer) until the "
        "client reads again; nginx with proxy buffering on reads the "
        "response into its buffers and spools the rest to proxy_temp_path, "
        "so its RSS per busy connection is its buffers, not the blob."),
    "rss-per-busy": "See the row above.",
    "rss-10k": "Per idle connection at scale: see the 1,000-connection row.",
    "pss-10k": "See the RSS row above.",
    "rss-per-10k": "See the 1,000-connection row.",
    "tls-aes256": (
        "One pull per round on a shared machine: the rate is noise; the CPU "
        "row below is the comparison."),
    "tls-aes128": "See the AES-256-GCM pull row.",
    "cpu-tls-aes256": "Same cause as the 64 MiB pull (above).",
    "cpu-tls-aes128": "Same cause as the 64 MiB pull (above).",
    "xfloor-aes256": "Same cause as the 64 MiB pull (above).",
    "xfloor-aes128": "Same cause as the 64 MiB pull (above).",
    "xfloorsum-aes256": "Same cause as the 64 MiB pull (above).",
    "xfloorsum-aes128": "Same cause as the 64 MiB pull (above).",
    "cpu-push-big": (
        "Per GiB pushed: the request body goes through the same cin -> uout "
        "copy and compaction as responses (buf_append, proxy/worker.c)."),
}


# Row families (the id's prefix): one explanation for all their rows.
WHY_PREFIX = (
    ("skopeo-", "Wall time of a real client is mostly the client's own work "
     "(skopeo hashes and writes every layer; podman also unpacks it) on "
     "the same 2 cores: compare the CPU row."),
    ("podman-", "See the skopeo rows: the clients' own work dominates."),
    ("cpu-skopeo-", "Per pull: ~22 requests, each a new connection and a full "
     "handshake (see the per-connection row) plus the image's bytes (see "
     "the CPU per GiB rows)."),
    ("cpu-podman-", "See the skopeo CPU rows."),
    ("rss-skopeo-", "Peak RSS of fresh processes: libraries and the "
     "connections of one pull; see the memory rows."),
    ("rss-podman-", "See the skopeo RSS rows."),
    ("grow-", "Growth rows are one run each on a shared machine (no medians): "
     "they show how cost grows, not which proxy wins; a few percent is "
     "noise."),
    ("storm-", "The storm rows count refusals, not speed: see the method."),
)


# Peak RSS with many clients in flight (grow-cN-rss).
GROW_RSS = ("A connection in flight holds up to four 64 KiB buffers in "
            "regvisor (proxy/buf.h: client and registry, each way; allocated on "
            "first use) plus OpenSSL's 64 KiB read buffer (proxy/tls.c), against "
            "nginx's proxy_buffers (8 x 4 KiB by default) and a 16 KiB SSL buffer; "
            "with many clients in flight at once the peak RSS shows it. Also, "
            "nginx with the guide's worker_connections 1024 refuses connections "
            "beyond it (its upstream connections count too): see the failed row. "
            "One run each, no medians.")


def why(rid):
    if rid in WHY:
        return WHY[rid]
    if rid.startswith("grow-c") and rid.endswith("-rss"):
        return GROW_RSS
    for prefix, text in WHY_PREFIX:
        if rid.startswith(prefix):
            return text
    return "not analysed yet."


def num(s):
    try:
        return float(s)
    except ValueError:
        return None


# Rows whose ratio to nginx means nothing (counts of refusals, text).
NO_RATIO = ("storm-", "req-", "conn-")


def fmt(s):
    v = num(s)
    if v is None:
        return s
    if s.strip().lstrip("-").isdigit():
        return "{:,d}".format(int(s))
    if v >= 100:
        return "{:,.0f}".format(v)
    if v >= 10:
        return "{:,.1f}".format(v)
    return "{:,.2f}".format(v)


def main():
    rows = []
    with open(sys.argv[1]) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 7:
                rows.append(parts[:7])

    env = os.environ.get
    out = []
    w = out.append
    w("# Benchmarks: regvisor's proxy against nginx\n")
    w("Generated by `make bench` (scripts/bench); do not edit: run it again.\n")
    w("## Machine and run\n")
    w("| | |")
    w("| --- | --- |")
    for k, v in (
        ("Date", env("BENCH_DATE", "?")),
        ("Command", "`make bench`"),
        ("CPUs (nproc)", env("BENCH_NPROC", "?")),
        ("CPU", env("BENCH_CPU", "?")),
        ("Kernel", env("BENCH_KERNEL", "?")),
        ("OpenSSL", env("BENCH_OPENSSL", "?")),
        ("nginx", env("BENCH_NGINX", "?")),
        ("Registry", env("BENCH_REGISTRY", "?")),
        ("regvisor", env("BENCH_REGVISOR", "?")),
        ("Clients", "%s, %s, %s, %s, openssl s_time, /usr/bin/python3 ssl"
         % (env("BENCH_WRK", "wrk"), env("BENCH_CURL", "curl"),
            env("BENCH_SKOPEO", "skopeo"), env("BENCH_PODMAN_VERSION", "podman"))),
        ("Knobs", env("BENCH_KNOBS", "defaults")),
        ("Load average at the end", env("BENCH_LOAD", "?")),
        ("Duration of the run", "%s s" % env("BENCH_ELAPSED", "?")),
    ):
        w("| %s | %s |" % (k, v))
    w("")

    w("## Results\n")
    w("Higher is better for rates; lower is better for memory and CPU. The "
      "ratio is regvisor / nginx: above 1 is better for rates, below 1 is "
      "better for memory and CPU. \"below\" marks rows where regvisor is "
      "worse than nginx by more than %d%%. The ↳ rows are the CPU time the "
      "processes used during the row above, per unit of work: less sensitive "
      "to other load on the machine than the rates. Where the proxy's CPU "
      "goes (perf profiles of the bulk and the handshake paths, system calls "
      "per connection and per GiB, and how to reproduce them): "
      "[docs/performance.md](docs/performance.md).\n" % round(PAR * 100))
    w("| measurement | unit | registry-direct | nginx | regvisor | regvisor/nginx |")
    w("| --- | --- | ---: | ---: | ---: | ---: |")
    below = []
    parent = ""
    for rid, label, unit, better, direct, nginx, rv in rows:
        n, r = num(nginx), num(rv)
        if rid.startswith("floor-"):
            cell = "(the floor)"
        elif rid.startswith(NO_RATIO) or rid.endswith("-fail"):
            cell = "—"
        elif n and r is not None:
            ratio = r / n
            worse = ratio < 1 - PAR if better == "high" else ratio > 1 + PAR
            cell = "%.2f" % ratio
            if worse:
                cell += " (below)"
                below.append((rid, label, ratio))
        else:
            cell = "—"
        if label.startswith("  "):
            label = "↳ " + label.strip()
            if below and below[-1][0] == rid:
                below[-1] = (rid, "%s — %s" % (parent, label[2:]), below[-1][2])
        else:
            parent = label
        w("| %s | %s | %s | %s | %s | %s |" % (label, unit, fmt(direct), fmt(nginx), fmt(rv), cell))
    w("")

    w("## Where regvisor is below nginx, and why\n")
    if not below:
        w("Nowhere in this run: regvisor is at or above nginx (within %d%%) on "
          "every row.\n" % round(PAR * 100))
    for rid, label, ratio in below:
        w("- **%s** (%.2f x nginx): %s" % (label, ratio, why(rid)))
    w("")

    secs = int(env("BENCH_SECS", "10"))
    text = METHOD.replace("{HALF}", str((secs + 1) // 2)).replace("{SECS}", str(secs))
    for key, var, default in (
        ("{BIG}", "BENCH_BIG_MIB", "1024"), ("{ROUNDS}", "BENCH_ROUNDS", "3"),
        ("{LAYERS}", "BENCH_IMAGE_LAYERS", "20"), ("{MAXMIB}", "BENCH_IMAGE_MAX_MIB", "64"),
        ("{IMGMIB}", "BENCH_IMAGE_MIB", "?"), ("{PAR}", "BENCH_PARALLEL", "8"),
        ("{STORM}", "BENCH_STORM_CLIENTS", "32"), ("{SOURCES}", "BENCH_STORM_SOURCES", "8"),
        ("{IDLE}", "BENCH_IDLE_CONNS", "10000"), ("{BUSY}", "BENCH_BUSY_CONNS", "20"),
        ("{GROWC}", "BENCH_GROW_CLIENTS", "1 10 100 1000"), ("{GROWS}", "BENCH_GROW_SECS", "3"),
    ):
        text = text.replace(key, env(var, default))
    w(text)
    sys.stdout.write("\n".join(out))


METHOD = """## How it was measured

Everything runs on this one machine, over loopback, in one run of
`make bench` (about 15 minutes on an idle 2-core machine; the `BENCH_*`
knobs at the head of scripts/bench shorten it, `BENCH_SECTIONS` picks
parts; the raw rows are kept in build/bench-results.tsv).
The clients share the same {cores} cores with the proxies and the registry,
and other work on the machine adds noise: compare ratios, not absolutes,
and rerun before drawing conclusions from a difference of a few percent.

- **Upstream.** One Distribution registry process (Debian's
  `/usr/bin/docker-registry`, filesystem storage, access log off) on
  127.0.0.1 TCP is the upstream of both proxies and is what
  "registry-direct" measures (plain HTTP, no TLS). The same process and
  the same transport for all three keeps the comparison fair; regvisor's
  default unix socket upstream is not measured here (nginx would need
  `server unix:...` for the same).
- **Certificates.** `regvisor provision --root` writes the PKI twice: EC
  P-256 (all rows) and RSA-4096 (the RSA handshake row only, with a second
  pair of proxies). Both proxies load the same files.
- **regvisor.** `regvisor proxy` with `workers = 2`, `rate = 0`,
  `conn_per_ip = 0`, the proxy user `nobody`; its access log goes to a file
  (stderr), as nginx's does.
- **nginx.** The guide's step 2.5 configuration with `worker_processes 2`,
  the `limit_req`/`limit_conn` lines removed, paths under the run's
  temporary directory, and two fixes without which `nginx -t` refuses the
  guide's file: `deny all;` instead of `return 403;` in `limit_except`,
  and `access_log` inside `http` (it is not allowed at the main level).
  Everything else as written, including what the guide gets wrong for
  speed: no upstream keepalive (its `location` drops `Connection ""`, so
  nginx opens a new TCP connection to the registry per request: see the
  registry CPU rows) and response buffering on (with curl reading as fast
  as loopback allows, strace showed nginx passing blobs through its memory
  buffers without temp-file writes in these runs; a slower client makes it
  spool up to 1 GiB per response to `proxy_temp_path`). `listen ... ssl http2` as
  in the guide; all clients here speak HTTP/1.1.
- **Alternation.** The wrk and s_time rows run twice per server for
  {HALF} s each (`BENCH_SECONDS` = {SECS} split in two), in the order
  direct, nginx, regvisor, direct, nginx, regvisor, and keep the best rate
  and the lowest CPU per unit, so that a burst of other load does not hit
  only one of them.
- **Small GETs.** `wrk -t2 -c50`, keep-alive, of `/v2/` and of a
  4 KiB blob.
- **Handshakes.** Two `openssl s_time -time {HALF}` clients in parallel
  (s_time is single-threaded; two load both cores), counting completed
  connections over the wall time. Full: `-new`, TLS 1.3, no resumption.
  Resumed: `-reuse -tls1_2` (session tickets); TLS 1.2 because s_time never
  reads a TLS 1.3 NewSessionTicket, so it cannot resume 1.3. Each handshake
  is a connection with no HTTP request.
- **Pull.** `curl --http1.1 -o /dev/null` of a 64 MiB and a {BIG} MiB random
  blob, best of 3, MB/s = bytes / curl's time_total / 10^6.
- **Push.** `POST /v2/.../blobs/uploads/` then one monolithic `PUT
  ...&digest=` of the {BIG} MiB file (`curl -T`, streamed, `Expect:` off),
  over mTLS with the client certificate on the proxies, best of 3. The
  registry hashes and writes the blob, so this row is bounded by the
  registry as much as by the proxy.
- **New connection per request.** What Debian's podman, skopeo, docker
  and containerd do for every request of a pull (their registry transport
  sets DisableKeepAlives and keeps no TLS session cache): 16
  `scripts/bench-hs.py` client processes, each a loop of connect (with
  TCP_NODELAY, as Go's net package sets it), a full TLS 1.3 handshake
  (ECDSA P-256, X25519), `GET /v2/`, read to the close. 3 rounds of
  `BENCH_HS_SECS` (5) s, nginx and regvisor interleaved, medians of the
  3 rounds. CPU per connection is the proxy's (parent + workers, from
  /proc) over the connections answered 200.
- **Spread over the workers.** Under that load, the busiest worker's share
  of the two workers' CPU (both proxies) and of the connections accepted
  (regvisor only: `regvisor_proxy_connections_accepted_total{worker}` on
  /metrics; scripts/bench-metrics.c renders the proxy's counters, which
  `regvisor proxy` alone keeps in a file here). Before commit f29a7db
  (EPOLLEXCLUSIVE with the workers always in the same order in the
  listening socket's wait queue, and up to 32 accepts per wake-up), worker
  0 took 58-60% of the connections in two 6 s rounds of 16 `openssl s_time
  -new` clients (857/574, 950/682 connections), 64% in a round of 16
  bench-hs.py clients; with the socket requeued every 16 accepts (as
  nginx's ngx_reorder_accept_events()) and one accept per wake-up, 49-51%
  (819/839, 897/826) in the same test.
- **TLS 1.3 tickets.** OpenSSL sends two tickets after every full TLS 1.3
  handshake; regvisor now sends one (proxy/tls.c says why not zero: with
  none, a client without TCP_NODELAY waited 40 ms for the delayed ACK of
  its Finished before its request went out: 59 ms per connection against
  nginx's 13-19 ms, one python client without TCP_NODELAY; with one ticket
  15-21 ms against 18 ms). strace of one connection before the change:
  accept4, setsockopt, 3 epoll_ctl, 5 reads, 7 writes (server flight, 2
  tickets, response head, body, close_notify, access log), 9 getpid
  (OpenSSL's fork check per random draw), socket/connect/setsockopt/sendto/
  recvfrom to the registry, shutdown, 2 closes; after (strace -c, one
  connection): 28 calls besides epoll_wait instead of 36: 6 writes (one
  ticket), 6 getpid, 2 epoll_ctl (the ADDs), 1 setsockopt (the registry's
  socket). Old (main before f29a7db) against new binary, outside `make
  bench`, on the same loaded machine, 3 interleaved rounds each, proxy
  CPU per connection: `openssl s_time -new` (2 clients, 4 s) 789/754/699
  µs old, 659/741/630 new (median 754 -> 659, -13%); bench-hs.py (16
  clients, handshake + GET /v2/) 1350/1292/1332 old, 1224/1265/1013 new
  (median 1332 -> 1224, -8%).
- **Memory.** VmRSS summed over the parent (master) and its 2 workers,
  idle after start and with 1,000 keep-alive TLS connections that each made
  one `GET /v2/` (scripts/bench-conns.py). VmRSS counts shared library
  pages once per process; PSS (from smaps_rollup) splits them.
- **Real clients.** `scripts/bench-image.py` pushes `bench/img:1` straight
  to the registry (no network): {LAYERS} layers, uncompressed tars of
  random bytes growing geometrically from 1 KiB to {MAXMIB} MiB ({IMGMIB}
  MiB in all). `skopeo copy docker://…/bench/img:1 dir:…` and `podman pull`
  (as root with a throwaway `--root`/`--runroot`/`--tmpdir` each, overlay
  storage unless `BENCH_PODMAN_DRIVER` says otherwise, so every pull
  downloads and unpacks every layer) with the CA in
  `--cert-dir` (direct: plain HTTP, `--tls-verify=false`), 1 client and
  then {PAR} at once, {ROUNDS} rounds interleaved (direct, nginx,
  regvisor), medians. Each tool and client count gets a fresh nginx and
  regvisor (see Memory). Wall time is the first client's start to the last
  one's end; CPU per pull is the proxy's (parent + workers; direct: the
  registry's); peak RSS is VmHWM summed over the proxy's processes, reset
  (`/proc/PID/clear_refs` 5) before each run. Requests per pull come from
  regvisor's counters and nginx's access log; connections per request is
  `regvisor_proxy_connections_accepted_total` over
  `regvisor_proxy_requests_total`: 1.00 is a new TCP connection and a full
  TLS handshake for every request, which is what Debian's skopeo and
  podman (containers/image 5.23, DisableKeepAlives) do.
- **Pull storm.** `scripts/bench-pull.py`: {STORM} clients pull
  `bench/storm:1` (30 layers, 1 KiB to 1 MiB) at once (a barrier), client
  i from 127.0.0.(2 + i mod {SOURCES}): the limits are per address, and
  skopeo and podman cannot be given a source address, so the clients make
  the requests containers/image makes, as it makes them: every request on
  a new connection with a full TLS 1.3 handshake, `GET /v2/`, the
  manifest, the config, the layers at most 6 at a time. They do not retry
  (ctr does not; skopeo retries some errors): a refused request fails the
  pull. First with limits off (the main pair), then with limits on: a
  regvisor with regvisor.conf's `[pull]` defaults and an nginx with the
  guide's `limit_req zone=reg_read burst=20 nodelay` (10 r/s) and
  `limit_conn perip 20`, which answer 503 (nginx's default status for
  both). "Slowed" is a pull that succeeded but took more than twice as
  long as the slowest pull of the same storm with limits off (neither
  configuration delays requests: nginx's `nodelay`, regvisor's `delay =
  no`; regvisor's `rate_delayed` counter says so). The refusals are counted
  twice: by the clients (what they got) and by the servers (nginx's access
  log; regvisor's `rate_limited`, `rate_delayed`, `connection_limited` and
  `connection_ceiling` counters). Last, the same storm with every client
  from one address, as a site behind one NAT address looks to the proxy.
- **The crypto floor and the cipher suite.** `openssl speed -evp
  aes-256-gcm` and `aes-128-gcm` with 16 KiB blocks (a full TLS record)
  for 3 s each, on one core, in the same run, as CPU seconds per GiB: what
  encrypting a GiB costs at least, with nothing else. Then the {BIG} MiB
  blob pulled with `curl --tlsv1.3 --tls13-ciphers SUITE`, each suite
  forced, {ROUNDS} interleaved rounds, medians; "That CPU / the floor" is
  the proxy's total CPU per GiB (reading the registry, copies, system
  calls, encryption) over the floor. Both servers pick by their own order
  (SSL_OP_CIPHER_SERVER_PREFERENCE) and OpenSSL's default TLS 1.3 order
  puts TLS_AES_256_GCM_SHA384 first, so a client offering both (curl, Go's
  crypto/tls) gets AES-256-GCM; the last row of that group is what
  preferring AES-128-GCM would save per GiB.
- **The copy floor.** The crypto floor leaves out what any user-space TLS
  proxy must also do: read the blob from the registry's socket and write
  it to the client's, two kernel copies and loopback TCP on both sockets.
  `scripts/bench-relay.c` does only that, with no TLS and no HTTP (64 KiB
  `recv()`s, blocking `write()`s of 16 KiB as the proxy writes records, or
  of up to 64 KiB), and the {BIG} MiB blob is pulled through it in plain
  HTTP in the same rounds as the cipher rows ({ROUNDS}, medians; the
  relay's CPU only). "Crypto floor + copy floor" adds the cheaper of the
  two relays to the encryption floor: a proxy at 1.00 of it would spend
  nothing beyond encrypting and copying.
- **Memory per connection.** Idle: (RSS with 1,000 idle connections - RSS
  idle) / 1,000. Busy: {BUSY} `GET`s of the 64 MiB blob that read 1 MiB
  and then stop reading (`scripts/bench-conns.py`), held while RSS is
  read. {IDLE} idle keep-alive TLS connections from 100 loopback
  addresses (127.0.0.2-101); nginx with `worker_connections` raised to
  hold them (the guide's 1024 would refuse them); the run raises
  RLIMIT_NOFILE to its hard limit (regvisor's `max_connections = auto` is
  half of it per worker; units/regvisor.service sets LimitNOFILE=65536).
  The busy and 10,000-connection rows, the real-client rows and the growth
  rows use a fresh nginx and regvisor each: malloc keeps the pages of a
  heap that once held many connections, so a process that already held
  1,000 connections shows no growth for the next 1,000, and its peak RSS
  is history.
- **Growth.** `scripts/bench-hs.py` with {GROWC} concurrent clients (up to
  16 processes, threads beyond), from 50 loopback addresses, each pulling
  the 1 MiB blob over and over on a new TLS connection per pull for
  {GROWS} s; then one client pulling each blob size from 1 KiB to {BIG}
  MiB the same way (at least one pull each). Direct is the registry over
  plain HTTP. One run each, no medians: these rows show how CPU and RSS
  grow with the work, not a winner. nginx keeps the guide's
  `worker_connections 1024`, which counts its upstream connections too.
"""

if __name__ == "__main__":
    METHOD = METHOD.replace("{cores}", os.environ.get("BENCH_NPROC", "2"))
    main()
