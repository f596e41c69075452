"""mjgate's benchmark harness: `python -m bench` (`make bench`). See docs/benchmarks.md.

Module map:

- procs: processes on free 127.0.0.1 ports, readiness, a stop that always runs
- reference_proxy: the bare proxy on mjgate's own stack (the reference)
- lab: the emulator, the reference proxy, mjgate and Redis, started on demand, cleaned up
- wrk, loadgen: closed-loop load (wrk) and the bench's own open-loop generator and pollers
- traffic: request bodies, keys, the HTTP parts' plan, metrics scraping
- throughput, latency, polls: the HTTP figures
- pools, decisions, memory: the Redis figures
- report: rows, the printed table, results.json and the machine's description
"""
