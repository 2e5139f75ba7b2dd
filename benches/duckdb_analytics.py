"""The peer of Custos's analytics: DuckDB runs the same production SQL files on the same
Parquet files of a Custos store, with the same threads.

Usage: duckdb_analytics.py SPEC.json
SPEC: {"threads": N, "memory_limit_mib": M, "reps": R, "tables": {name: [parquet files]}, "zones": {state: IANA zone},
       "facts": {"sql": text, "params": [...]},
       "queries": [{"name": …, "sql": text, "params": [...]}]}
`facts` is materialised as table `request_facts` first (timed as its own query).
Prints one line of JSON: {name: {"seconds": [...], "rows": [[...], ...], "columns": [...]}},
with "_peak_mib": the peak resident memory of this process.
"""
import datetime
import json
import resource
import sys
import time

import duckdb

spec = json.load(open(sys.argv[1]))
con = duckdb.connect()
con.execute(f"SET threads = {spec['threads']}")
if spec.get("memory_limit_mib"):
    con.execute(f"SET memory_limit = '{spec['memory_limit_mib']}MiB'")
con.execute("SET TimeZone = 'UTC'")
for name, files in spec["tables"].items():
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listed}])")
# end_of_local_day(ts, state): 24:00 of the day of ts in the state's legal time, as Custos's
# function of that name computes it (DuckDB's ICU time zones).
cases = " ".join(f"WHEN '{s}' THEN '{z}'" for s, z in spec["zones"].items())
con.execute(
    f"CREATE MACRO zone_of(state) AS CASE state {cases} ELSE 'UTC' END"
)
# local_year(ts, state): the year of ts in the state's legal time, as Custos's function.
con.execute("CREATE MACRO local_year(ts, state) AS year(timezone(zone_of(state), ts))")
con.execute(
    "CREATE MACRO end_of_local_day(ts, state) AS "
    "timezone(zone_of(state), date_trunc('day', timezone(zone_of(state), ts)) + INTERVAL 1 DAY)"
)


def param(p):
    if isinstance(p, dict) and "timestamp" in p:
        return datetime.datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00"))
    return p


def cell(v):
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(v, (datetime.date, datetime.timedelta)):
        return str(v)
    return v


out = {}
facts = spec["facts"]
seconds = []
for _ in range(spec["reps"] + 1):
    con.execute("DROP TABLE IF EXISTS request_facts")
    t = time.perf_counter()
    con.execute("CREATE TEMP TABLE request_facts AS " + facts["sql"], [param(p) for p in facts["params"]])
    seconds.append(time.perf_counter() - t)
out["request_facts"] = {"seconds": seconds[1:], "rows": None, "columns": None}
for q in spec["queries"]:
    seconds = []
    rows = None
    for _ in range(q.get("reps", spec["reps"]) + 1):
        t = time.perf_counter()
        cur = con.execute(q["sql"], [param(p) for p in q["params"]])
        rows = cur.fetchall()
        seconds.append(time.perf_counter() - t)
    columns = [d[0] for d in cur.description]
    out[q["name"]] = {"seconds": seconds[1:], "columns": columns, "rows": [[cell(v) for v in r] for r in rows]}
out["_peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
