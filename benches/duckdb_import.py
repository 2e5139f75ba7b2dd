"""The peer of `custos import`: DuckDB reads the same CSV files and writes Parquet.

Usage: duckdb_import.py EXPORT_DIR OUT_DIR THREADS
Prints one line of JSON: {"seconds": …, "rows": …, "peak_mib": …}.
"""
import json
import os
import resource
import sys
import time

import duckdb

export, out, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out, exist_ok=True)
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
started = time.perf_counter()
written = []
for name in sorted(os.listdir(export)):
    if not name.endswith(".csv"):
        continue
    table = name[: -len(".csv")]
    src = os.path.join(export, name)
    dst = os.path.join(out, f"{table}.parquet")
    con.execute(
        f"COPY (SELECT * FROM read_csv('{src}', header = true, auto_detect = true)) "
        f"TO '{dst}' (FORMAT parquet, COMPRESSION zstd)"
    )
    written.append(dst)
seconds = time.perf_counter() - started
rows = sum(con.execute(f"SELECT count(*) FROM read_parquet('{d}')").fetchone()[0] for d in written)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rows": rows, "peak_mib": peak}))
