//! The internal-market areas Custos ships: the acts listed in the Annex of the IMI Regulation
//! as they stood when this table was written, with the facts the rules need about each.
//!
//! An imported `domains` row replaces the default with the same code, and new codes extend the
//! list (`data-model.md`). The values below are Custos's reading of each act and are marked as
//! defaults wherever they are shown: a supervisor who reads an act differently imports a row.

/// One shipped default for the `domains` table.
#[derive(Debug, Clone, Copy)]
pub struct DomainDefault {
    /// The code.
    pub domain: &'static str,
    /// A human name.
    pub name: &'static str,
    /// The act that provides for the use of IMI.
    pub legal_act: &'static str,
    /// Months after formal closure by which personal data must be blocked (IMI Art. 14(1):
    /// six; Solvit eighteen under Art. 29(2)).
    pub retention_months: i64,
    /// The act gives the Commission a role in the procedures (IMI Art. 8(3)).
    pub commission_participates: bool,
    /// The act provides a legal basis for special categories of data (IMI Art. 16).
    pub special_categories_basis: bool,
    /// Third countries taking part under an international agreement (IMI Art. 23).
    pub third_countries: &'static [&'static str],
    /// The act provides a repository kept beyond the normal period (IMI Art. 14(2)).
    pub repository: bool,
}

const fn d(
    domain: &'static str,
    name: &'static str,
    legal_act: &'static str,
    retention_months: i64,
    commission_participates: bool,
    special_categories_basis: bool,
) -> DomainDefault {
    DomainDefault {
        domain,
        name,
        legal_act,
        retention_months,
        commission_participates,
        special_categories_basis,
        third_countries: &[],
        repository: false,
    }
}

/// The shipped defaults.
pub const DOMAINS: &[DomainDefault] = &[
    d("services", "Services", "Directive 2006/123/EC", 6, true, false),
    DomainDefault {
        // Switzerland exchanges on professional qualifications through IMI under the
        // EU-Swiss Agreement on the free movement of persons (Annex III).
        third_countries: &["CH"],
        ..d(
            "professional_qualifications",
            "Professional qualifications",
            "Directive 2005/36/EC",
            6,
            false,
            true,
        )
    },
    d(
        "patients_rights",
        "Patients' rights in cross-border healthcare",
        "Directive 2011/24/EU",
        6,
        false,
        true,
    ),
    d("euro_cash", "Cross-border transport of euro cash", "Regulation (EU) No 1214/2011", 6, true, false),
    d("solvit", "SOLVIT", "Commission Recommendation 2013/461/EU", 18, true, false),
    d(
        "posting_of_workers",
        "Posting of workers",
        "Directive 96/71/EC and Directive 2014/67/EU",
        6,
        false,
        false,
    ),
    d("public_documents", "Public documents", "Regulation (EU) 2016/1191", 6, false, false),
    d(
        "gdpr_cooperation",
        "Cooperation under the GDPR",
        "Regulation (EU) 2016/679, Arts. 56, 60-66 and 70(1)",
        6,
        false,
        true,
    ),
    DomainDefault {
        // The common register of SDG Art. 6(4) is kept beyond the normal period.
        repository: true,
        ..d(
            "sdg",
            "Single Digital Gateway",
            "Regulation (EU) 2018/1724, Arts. 6(4), 15 and 19",
            6,
            false,
            false,
        )
    },
    d("ecommerce", "Electronic commerce", "Directive 2000/31/EC, Art. 3(4)-(6)", 6, true, false),
];

/// The default for `code`, if Custos ships one.
pub fn domain(code: &str) -> Option<&'static DomainDefault> {
    DOMAINS.iter().find(|d| d.domain == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solvit_keeps_eighteen_months_and_no_default_exceeds_it() {
        assert_eq!(domain("solvit").map(|d| d.retention_months), Some(18));
        assert!(DOMAINS.iter().all(|d| (1..=18).contains(&d.retention_months)));
    }
}
