# The need-to-know rules of policies/rules/ntk/*.cedar, written in Rego for the benchmark
# suite's regorus peer (benches/suite.rs). One rule per Cedar forbid policy; `broken` is the
# set of rule IDs that apply, as Cedar's deny reasons are. NTK-ACCESS, Cedar's one permit,
# has no counterpart: every principal is an IMI user, so Cedar denies exactly when a forbid
# applies, and the findings are the forbids that did.
#
# Input: the scene the audit gives Cedar, as JSON:
#   {"principal": {"id", "active", "domains": [...], "authority": {"id", "kind", "member_state"}},
#    "action", "context": {"purpose", "legal_ground"},
#    "resource": null | {"id", "domain", "commission_participates", "third_countries": [...],
#                        "personal_data", "blocked", "deleted", "subject_consent",
#                        "participants": [authority ids]}}
package ntk

case := input.resource

on_case if input.resource != null

commission if input.principal.authority.kind == "commission"

# NTK-USER-ACTIVE, IMI Reg. Art. 9(1), 15(3).
broken contains "NTK-USER-ACTIVE" if not input.principal.active

# NTK-DELETED, IMI Reg. Art. 14(4).
broken contains "NTK-DELETED" if {
	on_case
	case.deleted
}

# NTK-DOMAIN, IMI Reg. Art. 9(3)-(4): on personal data only.
broken contains "NTK-DOMAIN" if {
	on_case
	case.personal_data
	not in_user_domains
	not commission_art_14_6
}

in_user_domains if case.domain in input.principal.domains

# The Commission's Art. 14(6) operations: blocking, deleting and retrieving blocked data by
# technical means, for technical support or a data subject's request.
commission_art_14_6 if {
	commission
	input.action in {"block", "delete", "retrieve_blocked"}
	input.context.purpose in {"technical_support", "data_subject_request"}
}

# NTK-BLOCKED, IMI Reg. Art. 14(3), 14(6), 19(2).
broken contains "NTK-BLOCKED" if {
	on_case
	case.blocked
	not blocked_use_allowed
}

blocked_use_allowed if {
	input.action == "retrieve_blocked"
	input.context.purpose == "proof_of_exchange"
	input.context.legal_ground
	case.subject_consent
}

blocked_use_allowed if {
	input.action == "retrieve_blocked"
	input.context.purpose == "public_interest"
	input.context.legal_ground
}

blocked_use_allowed if commission_art_14_6

blocked_use_allowed if {
	input.action == "update"
	input.context.purpose == "data_subject_request"
}

blocked_use_allowed if input.action == "block"

# NTK-COMMISSION, IMI Reg. Art. 8(3), 14(6).
broken contains "NTK-COMMISSION" if {
	on_case
	commission
	case.personal_data
	not case.commission_participates
	not commission_art_14_6
}

# NTK-INVOLVED, IMI Reg. Art. 9(6): every actor, the Commission included.
broken contains "NTK-INVOLVED" if {
	on_case
	case.personal_data
	not participating
	not commission_art_14_6
}

participating if input.principal.authority.id in case.participants

# NTK-PURPOSE, IMI Reg. Art. 9(5), 13, 6(1)(d).
broken contains "NTK-PURPOSE" if {
	on_case
	input.context.purpose == "statistics"
	input.action in {"view", "export", "print"}
	case.personal_data
}

broken contains "NTK-PURPOSE" if {
	on_case
	input.context.purpose == "technical_support"
	not input.principal.authority.kind in {"commission", "imi_coordinator", "national_coordinator"}
}

# NTK-THIRD-COUNTRY, IMI Reg. Art. 23.
broken contains "NTK-THIRD-COUNTRY" if {
	on_case
	input.principal.authority.kind == "third_country_authority"
	not admitted_country
}

admitted_country if input.principal.authority.member_state in case.third_countries
