#!/usr/bin/env python3
"""The three applications of `riffle bench --phase analytics` in peers.

The same rows as Riffle's analytics bench (splitmix64 from seed 42, one
draw per row; TICKER VARCHAR(8), SECTOR VARCHAR(16), CHANGE REAL, PRICE
DOUBLE; ROWTIME advancing step by step at the simulated rate) go through:

- DuckDB, as a batch upper bound: the whole input is a table and each
  query runs once over it (CREATE TABLE ... AS, so every output row is
  materialised):
    filter  WHERE change > 0, three columns
    tumble  GROUP BY ticker, time_bucket(10 s): COUNT/SUM/AVG/MIN/MAX
    slide   AVG(price) OVER (PARTITION BY ticker ORDER BY ts
            RANGE BETWEEN INTERVAL 10 SECONDS PRECEDING AND CURRENT ROW)
- Bytewax, streaming in one worker, rows in batches of --step-rows:
    filter  op.filter + op.map
    tumble  fold_window per ticker, TumblingWindower(10 s) on an
            EventClock of the rows' ROWTIME
    slide   stateful_map per ticker: the rows of the last 10 s and their
            running sum, one average out per row in

Each query prints rows/s in and rows out. With the same --rows, rows out
of filter and tumble equal Riffle's for `--records` of the same count
(slide emits one row per row everywhere). DuckDB's RANGE frame also
counts the rows of the same ROWTIME that come later in the step, which
a stream cannot see yet; the number of rows is the same.

Setup (a virtual environment, nothing installed globally):

    python3 -m venv /tmp/analytics-peers
    /tmp/analytics-peers/bin/pip install duckdb==2.0.1 bytewax==0.21.1

Run, next to the Riffle phase on the same machine:

    /tmp/analytics-peers/bin/python scripts/bench_analytics_peers.py --rows 2000000
    riffle bench --phase analytics --records 2000000

Bytewax gets the first --bytewax-rows (default 600,000: 12 s of ROWTIME,
so windows close during the run) of the same input, since its windowed
fold takes minutes over millions of rows. Without bytewax (or if it fails
to run) the script says why and goes on with DuckDB.
"""

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from collections import deque
from datetime import datetime, timedelta, timezone

T0_MS = 1_700_000_000_000
MASK = (1 << 64) - 1
SECTORS = [
    "TECHNOLOGY",
    "FINANCIAL",
    "HEALTHCARE",
    "ENERGY",
    "RETAIL",
    "INDUSTRIALS",
    "UTILITIES",
    "TELECOM",
]


def generate(n, keys, rate, step_rows, seed):
    """Rows as (ticker, sector, change, price, rowtime in ms)."""
    state = seed
    tickers = [f"T{k:06d}" for k in range(keys)]
    out = []
    for i in range(n):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        r = z ^ (z >> 31)
        k = r % keys
        change = ((r >> 20) % 2001) / 100.0 - 10.0
        price = float(10 + k % 490) + ((r >> 40) % 10_000) / 100.0
        step = i // step_rows
        ts = T0_MS + ((step + 1) * step_rows * 1000) // rate
        out.append((tickers[k], SECTORS[k % len(SECTORS)], change, price, ts))
    return out


def report(engine, name, rows_in, secs, rows_out, extra=""):
    print(
        f"{engine} {name}: {rows_in} rows in {secs:.2f} s = {rows_in / secs:.0f} rows/s in, "
        f"{rows_out} rows out{extra}"
    )


DUCKDB_QUERIES = [
    (
        "filter",
        "SELECT ticker, change, price FROM ticks WHERE change > 0",
    ),
    (
        "tumble",
        "SELECT ticker, time_bucket(INTERVAL 10 SECONDS, ts) AS w, count(*) AS n, "
        "sum(price) AS total, avg(price) AS avg_price, min(price) AS low, max(price) AS high "
        "FROM ticks GROUP BY ticker, w",
    ),
    (
        "slide",
        "SELECT ticker, price, avg(price) OVER (PARTITION BY ticker ORDER BY ts "
        "RANGE BETWEEN INTERVAL 10 SECONDS PRECEDING AND CURRENT ROW) AS avg_price FROM ticks",
    ),
]


def bench_duckdb(rows, threads_list, repeats):
    try:
        import duckdb
    except ImportError as e:
        print(f"duckdb: not run: cannot import duckdb ({e}); see the setup at the top")
        return
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ticks.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["ticker", "sector", "change", "price", "ts_ms"])
            w.writerows(rows)
        con = duckdb.connect()
        con.execute(
            "CREATE TABLE ticks AS SELECT ticker::VARCHAR AS ticker, sector::VARCHAR AS sector, "
            "change::REAL AS change, price::DOUBLE AS price, epoch_ms(ts_ms::BIGINT) AS ts "
            f"FROM read_csv('{path}', header = true, all_varchar = true)"
        )
    n = con.execute("SELECT count(*) FROM ticks").fetchone()[0]
    print(f"duckdb {duckdb.__version__}: {n} rows loaded (not timed); median of {repeats} runs")
    for threads in threads_list:
        con.execute(f"SET threads = {threads}")
        for name, q in DUCKDB_QUERIES:
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                con.execute(f"CREATE OR REPLACE TABLE out AS {q}")
                times.append(time.perf_counter() - t)
            out = con.execute("SELECT count(*) FROM out").fetchone()[0]
            report(
                f"duckdb ({threads} thread{'s' if threads > 1 else ''})",
                name,
                n,
                statistics.median(times),
                out,
            )


def bench_bytewax(rows, step_rows):
    try:
        import bytewax
        import bytewax.operators as op
        import bytewax.operators.windowing as win
        from bytewax.dataflow import Dataflow
        from bytewax.testing import TestingSink, TestingSource, run_main
    except Exception as e:  # noqa: BLE001 - any import failure is reported
        print(f"bytewax: not run: cannot import bytewax ({type(e).__name__}: {e}); see the setup at the top")
        return
    version = getattr(bytewax, "__version__", "0.21.1")
    utc = timezone.utc
    items = [
        (t, s, c, p, datetime.fromtimestamp(ms / 1000.0, tz=utc)) for (t, s, c, p, ms) in rows
    ]
    print(f"bytewax {version}: {len(items)} rows, 1 worker, batches of {step_rows}")

    def filter_flow(out):
        flow = Dataflow("filter")
        s = op.input("in", flow, TestingSource(items, step_rows))
        s = op.filter("keep", s, lambda r: r[2] > 0)
        s = op.map("project", s, lambda r: (r[0], r[2], r[3]))
        op.output("out", s, TestingSink(out))
        return flow

    def tumble_flow(out):
        flow = Dataflow("tumble")
        s = op.input("in", flow, TestingSource(items, step_rows))
        keyed = op.key_on("key", s, lambda r: r[0])
        # Event time only: the watermark is the latest ROWTIME seen, as
        # on Riffle's simulated clock (by default it also moves with the
        # system clock, and rows of a slow run would arrive late).
        start = datetime(2023, 1, 1, tzinfo=utc)
        clock = win.EventClock(
            lambda r: r[4], wait_for_system_duration=timedelta(0), now_getter=lambda: start
        )
        windower = win.TumblingWindower(
            length=timedelta(seconds=10), align_to=start
        )

        def folder(acc, r):
            n, total, low, high = acc
            p = r[3]
            return (n + 1, total + p, p if low is None or p < low else low,
                    p if high is None or p > high else high)

        def merger(a, b):
            return (a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3]))

        w = win.fold_window(
            "fold", keyed, clock, windower, lambda: (0, 0.0, None, None), folder, merger
        )
        op.output("late", w.late, TestingSink(late))
        s = op.map(
            "emit",
            w.down,
            lambda kv: (kv[0], kv[1][1][0], kv[1][1][1], kv[1][1][1] / kv[1][1][0],
                        kv[1][1][2], kv[1][1][3]),
        )
        op.output("out", s, TestingSink(out))
        return flow

    def slide_flow(out):
        flow = Dataflow("slide")
        s = op.input("in", flow, TestingSource(items, step_rows))
        keyed = op.key_on("key", s, lambda r: r[0])
        span = timedelta(seconds=10)

        def mapper(state, r):
            if state is None:
                state = [deque(), 0.0]
            rows, _ = state
            rows.append((r[4], r[3]))
            state[1] += r[3]
            limit = r[4] - span
            while rows[0][0] < limit:
                state[1] -= rows.popleft()[1]
            return state, (r[3], state[1] / len(rows))

        s = op.stateful_map("avg", keyed, mapper)
        op.output("out", s, TestingSink(out))
        return flow

    late = []
    for name, build in [("filter", filter_flow), ("tumble", tumble_flow), ("slide", slide_flow)]:
        out = []
        late.clear()
        try:
            flow = build(out)
            t = time.perf_counter()
            run_main(flow)
            secs = time.perf_counter() - t
        except Exception as e:  # noqa: BLE001 - a failing peer is reported, not fatal
            print(f"bytewax {name}: failed: {type(e).__name__}: {e}")
            continue
        report("bytewax", name, len(items), secs, len(out), f", {len(late)} late" if late else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000, help="input rows for DuckDB")
    ap.add_argument("--bytewax-rows", type=int, default=600_000, help="input rows for Bytewax")
    ap.add_argument("--keys", type=int, default=10_000, help="distinct tickers")
    ap.add_argument("--rate", type=int, default=50_000, help="simulated rows per second")
    ap.add_argument("--step-rows", type=int, default=1000, help="rows per step (ROWTIME granule)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--duckdb-threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeats", type=int, default=3, help="DuckDB runs per query (median)")
    ap.add_argument("--skip", default="", help="comma-separated: duckdb, bytewax")
    a = ap.parse_args()
    if a.keys < 1 or a.rate < 1 or a.step_rows < 1 or a.rows < 1:
        sys.exit("--keys, --rate, --step-rows and --rows must be positive")
    skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    print(
        f"analytics peers: {a.keys} keys, {a.rate} rows/s simulated, {a.step_rows} rows per step, "
        f"~{10 * a.rate / a.keys:.0f} rows per key in a 10 s window"
    )
    t = time.perf_counter()
    rows = generate(max(a.rows, a.bytewax_rows), a.keys, a.rate, a.step_rows, a.seed)
    positive = sum(1 for r in rows[: a.rows] if r[2] > 0)
    print(
        f"generated {len(rows)} rows in {time.perf_counter() - t:.2f} s (not timed); "
        f"of the first {a.rows}, {positive} have change > 0"
    )
    if "duckdb" not in skip:
        threads = [int(x) for x in a.duckdb_threads.split(",") if x.strip()]
        bench_duckdb(rows[: a.rows], threads, max(1, a.repeats))
    if "bytewax" not in skip:
        bench_bytewax(rows[: a.bytewax_rows], a.step_rows)


if __name__ == "__main__":
    main()
