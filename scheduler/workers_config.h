/*
 * The workers configuration file (JSON), read at start (a change takes a restart; a DNS pool
 * follows its headless Service without one). It names pools of worker
 * pods; a task runs all its steps on one worker of one pool, so the pool must have an executor for
 * every step's executor name.
 *
 *   {
 *     "pools": [
 *       {
 *         "name": "ocr",
 *         "workers": ["10.0.0.5", "worker-1.local"],   // static addresses, or
 *         "dns": "ocr-workers.default.svc.cluster.local", // a name re-resolved periodically
 *         "resolveIntervalMs": 10000,                      // optional, default 10000
 *         "slots": 1,                                      // tasks at once per worker, default 1
 *         "executors": {"wget": 50051, "tesseract": "50052", "mc": "unix:/pm/mc.sock"}
 *       }
 *     ]
 *   }
 *
 * "workers" and "dns" are exclusive; one is required. An executor is a TCP port (1..65535, a
 * number or a string of digits: the worker's address plus that port) or "unix:PATH" (a socket on
 * the scheduler's own host; meant for the one-machine setup and a scheduler inside the pod).
 * Pool names are unique and non-empty ([A-Za-z0-9_.-]); executor names are non-empty. Comments are
 * not JSON: the // above are only for this header.
 *
 * Also checked: a worker is a host name, an IPv4 address or an IPv6 literal (bare or in brackets,
 * stored bare), never "host:port", and is listed once per pool; "dns" is a host name;
 * "resolveIntervalMs" (1..2^32-1) goes only with "dns"; "slots" is 1..SCH_CONFIG_MAX_SLOTS;
 * "executors" has 1..SCH_CONFIG_MAX_EXECUTORS entries; a unix path is at most 107 bytes (what
 * sun_path holds). "pools": [] and "workers": [] are accepted (an idle configuration). Unknown
 * members are refused. Caps beyond the limits below are -EINVAL with a message.
 */
#ifndef PM_SCHEDULER_WORKERS_CONFIG_H
#define PM_SCHEDULER_WORKERS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define SCH_CONFIG_MAX_POOLS 64
#define SCH_CONFIG_MAX_WORKERS 4096 /* static addresses per pool */
#define SCH_CONFIG_MAX_EXECUTORS 64 /* per pool */
#define SCH_CONFIG_DEFAULT_RESOLVE_MS 10000
#define SCH_CONFIG_MAX_SLOTS 4096

typedef struct {
    char *name;
    uint16_t port;   /* 0 when unix_path is set */
    char *unix_path; /* NULL when port is set */
} sch_exec_ref;

typedef struct {
    char *name;
    char **workers; /* static list, or NULL when dns is set */
    size_t n_workers;
    char *dns; /* or NULL */
    uint32_t resolve_interval_ms;
    uint32_t slots;
    sch_exec_ref *executors;
    size_t n_executors;
} sch_pool_config;

typedef struct {
    sch_pool_config *pools;
    size_t n_pools;
} sch_workers_config;

/*
 * Parses a configuration document. Returns 0 with *out set, or -EINVAL/-EFBIG/-ENOMEM with a
 * message naming the problem and its position ("workers config line 4 column 20: pool \"ocr\":
 * executor \"wget\": port must be 1..65535").
 */
int sch_workers_config_parse(const char *text, size_t len, sch_workers_config **out, char *err,
                             size_t errlen);

/* Reads and parses a file (at most 1 MiB); errors start with the path. */
int sch_workers_config_load(const char *path, sch_workers_config **out, char *err, size_t errlen);

void sch_workers_config_free(sch_workers_config *c);

/*
 * Whether a running scheduler can switch from cur to next without a restart (SIGHUP): the same
 * pools in the same order, each with the same executors (names and ports or socket paths) and
 * found the same way (static list or DNS). Worker lists, slots, DNS names and intervals may
 * change. Returns 0, or -EINVAL with a message naming the first pool that differs and how.
 */
int sch_workers_config_compatible(const sch_workers_config *cur, const sch_workers_config *next,
                                  char *err, size_t errlen);

/* The executor of that name in a pool, or NULL. */
const sch_exec_ref *sch_pool_executor(const sch_pool_config *p, const char *name);

/*
 * The gRPC target for an executor on a worker: "unix:PATH", or "HOST:PORT" ("[HOST]:PORT" when
 * HOST is an IPv6 literal). Writes into buf; returns buf.
 */
const char *sch_exec_target(const sch_exec_ref *e, const char *worker, char *buf, size_t size);

#endif
