"""gunicorn's configuration for the bridge, as the container runs it:

    gunicorn --config gunicorn.conf.py 'bridge:create_app()'

Every value comes from the BRIDGE_* environment through `bridge.settings.Settings`
and `bridge.server.serving.gunicorn_options`, the same table ``python -m bridge serve`` uses,
so this file only exports it: BRIDGE_HOST, BRIDGE_PORT, BRIDGE_WORKERS, BRIDGE_THREADS,
BRIDGE_WORKER_CLASS and BRIDGE_LOG_LEVEL set the server; the others set the app.
SIGTERM stops gracefully: in-flight requests get `bridge.server.serving.GRACEFUL_TIMEOUT`.

Worker model: gthread, chosen by measurement (BRIDGE_WORKER_CLASS=sync remains possible).
``python bench/worker_models.py`` runs this file's command for sync, gthread (8 threads)
and gevent in turn, 2 workers each, on one private redis-server, under wrk (2 threads,
16 keep-alive connections): 10 s of inserts, then 5 s of one-task leases, then 5 s of
deletes, 3 repetitions, medians. Two runs on 2026-11-28, on the 2-core machine shared
with other jobs (load average 7-12, hence the spread between runs); requests/s with the
ratio to gthread, and p99 latency in ms:

    run 1       insert                 lease                  delete
    sync     363 (0.74x) p99 196    326 (0.72x) p99 168    374 (0.76x) p99 121
    gthread  489 (1.00x) p99 120    452 (1.00x) p99 144    495 (1.00x) p99 139
    gevent   401 (0.82x) p99 421    316 (0.70x) p99 642    411 (0.83x) p99 303

    run 2       insert                 lease                  delete
    sync     267 (0.78x) p99 301    232 (0.78x) p99 302    178 (0.33x) p99 400
    gthread  340 (1.00x) p99 174    297 (1.00x) p99 218    537 (1.00x) p99  94
    gevent   430 (1.26x) p99 328    356 (1.20x) p99 271    300 (0.56x) p99 281

    run 3, 2026-11-29, after the hot-path work (orjson, hiredis, cheaper hooks), load
    average 1-4:
                insert                 lease                  delete
    sync    1068 (1.08x) p99  24    1133 (0.94x) p99  22    1283 (1.01x) p99  18
    gthread  985 (1.00x) p99  52    1202 (1.00x) p99  45    1274 (1.00x) p99  31
    gevent  1173 (1.19x) p99  36    1207 (1.00x) p99  48    1512 (1.19x) p99  21

Under heavy load from other jobs (runs 1 and 2) sync trails gthread in every cell; on a
quieter machine (run 3) the three models serve within the noise of each other, sync
and gevent with a lower p99. Throughput therefore does not decide it; the rest does.
sync closes every connection and lets one slow client hold a whole worker, which is
only safe behind a buffering proxy, and the bridge is often reached directly (compose,
staging). gevent must monkey-patch before redis and ssl are imported, which gunicorn's
worker does too late for this app, and a request is about a millisecond of Python
around one Redis round trip, so greenlets have little I/O to overlap. So gthread is the
default, sync stays selectable, gevent is not offered, and workers are the knob: give
BRIDGE_WORKERS one per core.

Slow and idle clients: the bridge's own gthread worker (`bridge.server.workers`), chosen by
measurement. gunicorn's gthread hands a connection to a thread as soon as one byte
arrives, and the thread then blocks until the request head is complete; so a client
that opens connections and sends one byte takes a thread each, and more threads only
raise the number it needs. ``python bench/hostile.py idle|trickle`` holds connections
open (idle ones sent ``G``; trickling ones send a header byte a second) and probes
``/healthz`` and ``taskqueues.get`` from a normal client twice a second (30 s: no
answer). 2 workers, on Redis, 2026-11-29, the machine shared with other jobs:

    worker                       held           worst /healthz   worst API   closed by server
    gunicorn gthread, 8 threads   32 idle, 20 s  30 s (none)     30 s (none)   0
    gunicorn gthread, 64 threads 256 idle, 20 s  30 s (none)     0.014 s       0
    gunicorn gthread, 8 threads   16 trickle     30 s (none)     0.010 s       0
    bridge head-first, 8 threads 256 idle, 60 s  0.181 s         0.339 s     256 (after 10 s)
    bridge head-first, 8 threads 256 trickle, 60 s 0.099 s       0.076 s     256 (after 10 s)

The head-first worker reads each request head in its event loop, without blocking,
and gives a thread only a connection whose head is complete; a head not complete
BRIDGE_HEAD_TIMEOUT (10) seconds after its first byte is closed. A worker holds up to
1,000 connections (gunicorn's worker_connections); past that, new ones wait in the
listen backlog until the deadline frees places. A request *body* reads in its thread,
each read waiting at most the same number of seconds for its next byte: a body that
stops arriving is a 400 and frees the thread (like nginx's client_body_timeout), while
one trickled faster than that holds its thread until it ends (at most
BRIDGE_MAX_BODY_BYTES). gunicorn also closes a connection by reading from it until
the client closes, up to 2 s, inside the event loop: 20 clients that sent a bad request
and kept their sockets open delayed /healthz 35.8 s; the bridge's worker does those
reads without blocking (0.005 s). The sync worker has none of this and belongs behind
a buffering proxy. The same worker
answers GET /healthz on a thread of its own, so a stalled Redis that holds every API
thread does not delay liveness, and it renders gunicorn's own error pages (400, 414,
431, 501) in Google's JSON envelope.

What the head-first worker costs per request, measured 2026-11-29 (load 2-4) on
bench/reference_app.py, 2 workers x 8 threads, wrk 16 connections, POST /incr: CPU
per request from /proc, three 4 s runs each, gunicorn gthread 391 / 398 / 382 µs
against this worker 401 / 417 / 598 µs (the last a noisy run), so within the noise;
system calls per request other than futex (strace -c -f on one worker) gthread 16.5,
this worker 18.9: it re-registered a kept-alive connection with the selector to read
its next head. It now reads that head at once on the registration the connection
already has: 16.4, gthread's count (ioctl 5, epoll_ctl 2). The worker is kept; the
bridge's CPU above the reference under gunicorn lies elsewhere (see bench/README.md).
"""

from bridge.server.serving import gunicorn_options
from bridge.settings import Settings

globals().update(gunicorn_options(Settings.from_env()))
