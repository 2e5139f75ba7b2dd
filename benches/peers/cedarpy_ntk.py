"""The need-to-know audit as a Python user would write it with cedarpy (Cedar's Python
bindings, PyPI): read the store's tables, build each granted event's request and entities
with its real identifiers and every authority taking part in the case at that instant, and
call `cedarpy.is_authorized` once per event. Policies and schema are parsed once, as
cedarpy's documentation advises. Mirrors `audit::naive` in Rust.

Usage: cedarpy_ntk.py SPEC.json
SPEC: {"tables": {name: [parquet files]}, "domains": [[code, commission_participates,
       [third countries]], ...], "policies": [[rule id, text], ...], "schema": text,
       "to_micros": first event time left out (or null)}
Prints one line of JSON: {"seconds", "events", "findings", "digest", "peak_mib"}; the digest
is the SHA-256 of the sorted lines "event_id<TAB>rule<LF>", as the suite computes it.
"""
import hashlib
import json
import resource
import sys
import time

import cedarpy
import duckdb

spec = json.load(open(sys.argv[1]))
started = time.perf_counter()
con = duckdb.connect()


def rows(table, columns, where=""):
    files = ", ".join("'" + f.replace("'", "''") + "'" for f in spec["tables"][table])
    return con.execute(f"SELECT {columns} FROM read_parquet([{files}]) {where}").fetchall()


def micros(column):
    return f"epoch_us({column})"


policies = cedarpy.PolicySet.from_str("\n".join(text for _, text in spec["policies"]))
rule_of = {f"policy{i}": rule for i, (rule, _) in enumerate(spec["policies"])}
schema = cedarpy.Schema.from_str(spec["schema"])

authorities = {a: (kind, ms) for a, kind, ms in rows("authorities", "authority_id, kind, member_state")}
domains = {code: (commission, countries or []) for code, commission, countries in spec["domains"]}
users = {
    u: (a, domains_ or [], registered, deactivated)
    for u, a, domains_, registered, deactivated in rows(
        "users", f"user_id, authority_id, domains, {micros('registered_at')}, {micros('deactivated_at')}"
    )
}
cases = {
    c: (domain, bool(pd), blocked, deleted, bool(consent))
    for c, domain, pd, blocked, deleted, consent in rows(
        "cases",
        f"case_id, domain, personal_data, {micros('blocked_at')}, {micros('deleted_at')}, subject_consent",
    )
}
participants = {}
for c, a, joined, left in rows(
    "case_participants", f"case_id, authority_id, {micros('joined_at')}, {micros('left_at')}"
):
    participants.setdefault(c, []).append((a, joined, left))

where = "WHERE outcome = 'granted'"
if spec.get("to_micros") is not None:
    where += f" AND epoch_us(ts) < {int(spec['to_micros'])}"
events = rows(
    "access_log", f"event_id, {micros('ts')}, user_id, case_id, action, purpose, legal_ground", where
)


def ref(kind, id_):
    return {"__entity": {"type": f"IMI::{kind}", "id": id_}}


def authority_entity(id_):
    kind, ms = authorities.get(id_, ("", ""))
    return {"uid": {"type": "IMI::Authority", "id": id_}, "attrs": {"kind": kind, "member_state": ms}, "parents": []}


findings = []
judged = 0
for event_id, ts, user_id, case_id, action, purpose, ground in events:
    user = users.get(user_id)
    if user is None:
        continue
    authority, user_domains, registered, deactivated = user
    entities = {authority: authority_entity(authority)}
    entities[user_id] = {
        "uid": {"type": "IMI::User", "id": user_id},
        "attrs": {
            "authority": ref("Authority", authority),
            "domains": [ref("Domain", d) for d in user_domains],
            "active": registered <= ts and (deactivated is None or ts < deactivated),
        },
        "parents": [],
    }
    if case_id is None:
        resource_uid = 'IMI::System::"IMI"'
        entities["IMI"] = {"uid": {"type": "IMI::System", "id": "IMI"}, "attrs": {}, "parents": []}
    else:
        case = cases.get(case_id)
        if case is None:
            continue
        domain, personal_data, blocked, deleted, consent = case
        commission, countries = domains.get(domain, (False, []))
        here = [a for a, joined, left in participants.get(case_id, []) if joined <= ts and (left is None or ts < left)]
        entities["domain:" + domain] = {
            "uid": {"type": "IMI::Domain", "id": domain},
            "attrs": {"commission_participates": bool(commission), "third_countries": list(countries)},
            "parents": [],
        }
        for a in here:
            entities.setdefault(a, authority_entity(a))
        entities["case:" + case_id] = {
            "uid": {"type": "IMI::Case", "id": case_id},
            "attrs": {
                "domain": ref("Domain", domain),
                "personal_data": personal_data,
                "participants": [ref("Authority", a) for a in dict.fromkeys(here)],
                "blocked": blocked is not None and blocked <= ts,
                "deleted": deleted is not None and deleted < ts,
                "subject_consent": consent,
            },
            "parents": [],
        }
        resource_uid = f'IMI::Case::"{case_id}"'
    request = {
        "principal": f'IMI::User::"{user_id}"',
        "action": f'IMI::Action::"{action}"',
        "resource": resource_uid,
        "context": {"purpose": purpose, "legal_ground": ground is not None},
    }
    result = cedarpy.is_authorized(request, policies, list(entities.values()), schema)
    if result.diagnostics.errors:
        sys.exit(f"event {event_id}: {result.diagnostics.errors}")
    judged += 1
    if not result.allowed:
        for reason in result.diagnostics.reasons:
            findings.append(f"{event_id}\t{rule_of[reason]}\n")
seconds = time.perf_counter() - started
findings.sort()
digest = hashlib.sha256("".join(findings).encode()).hexdigest()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "events": judged, "findings": len(findings), "digest": digest, "peak_mib": peak}))
