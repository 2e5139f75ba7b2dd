//! A realistic history of supervisors' reviews of findings, for the demo: about three in ten
//! findings reviewed by the supervisor in charge (the EDPS for Union actors, the member
//! state's DPA otherwise), most of them confirmed, some justified or false positives, some
//! referred to the authority concerned, answered or still waiting (a few past their date).

use chrono::{Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use custos_engine::finding::{Finding, Instant};
use custos_engine::review::{Change, State};

const DAY: i64 = 86_400_000_000;

/// Grounds a DPA finds outside IMI's records.
const GROUNDS: [&str; 4] = [
    "the data subject's written consent, on file at the authority",
    "a decision of the authority's director assigning the case",
    "a court order naming the officer",
    "an agreement between the authorities concerned, outside IMI",
];

/// Reviewers' notes.
const NOTES: [&str; 5] = [
    "checked against the case file",
    "discussed with the authority's DPO",
    "the officer confirmed the access",
    "pattern seen in other cases of this authority",
    "",
];

/// The steps of a history of reviews of `findings` up to `until` (UTC microseconds), in the
/// order they happened: each with the finding's place in `findings`, the change and when.
/// The same findings and seed give the same history.
pub fn review_history(findings: &[Finding], seed: u64, until: i64) -> Vec<(usize, Change, Instant)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5245_5649_4557);
    let mut steps = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        if !rng.random_bool(0.3) {
            continue;
        }
        let ms = f.member_state.clone().unwrap_or_default();
        let (by, role) = if ms == "EU" {
            ("edps".to_owned(), "edps")
        } else {
            (format!("dpa-{}", ms.to_lowercase()), "dpa")
        };
        let base = f.ts.or(f.due_at).map_or(until - 90 * DAY, Instant::micros);
        let mut at = (base + rng.random_range(1..20) * DAY).min(until - DAY);
        let note = |rng: &mut ChaCha8Rng| NOTES[rng.random_range(0..NOTES.len())].to_owned();
        let change = |state: State, note: String| Change {
            state,
            note,
            by: by.clone(),
            role: role.to_owned(),
            ..Change::default()
        };
        steps.push((i, change(State::UnderReview, note(&mut rng)), Instant(at)));
        at += rng.random_range(1..10) * DAY;
        if at >= until || rng.random_bool(0.15) {
            continue; // still under review
        }
        let roll: f64 = rng.random();
        let decided = match roll {
            r if r < 0.60 => change(State::Confirmed, note(&mut rng)),
            r if r < 0.75 => change(State::FalsePositive, note(&mut rng)),
            r if r < 0.85 => Change {
                ground: Some(GROUNDS[rng.random_range(0..GROUNDS.len())].to_owned()),
                ..change(State::Justified, note(&mut rng))
            },
            _ => {
                let due = date(at + 30 * DAY);
                steps.push((
                    i,
                    Change {
                        referred_to: f.authority_id.clone(),
                        answer_due: Some(due),
                        ..change(State::Referred, "asked the authority for its reasons".into())
                    },
                    Instant(at),
                ));
                at += rng.random_range(5..45) * DAY;
                if at >= until || rng.random_bool(0.4) {
                    continue; // waiting for the answer, perhaps past its date
                }
                steps.push((
                    i,
                    Change {
                        answer: Some("the officer handled the case for the requesting authority".into()),
                        ..change(State::Referred, String::new())
                    },
                    Instant(at),
                ));
                at += rng.random_range(1..5) * DAY;
                if at >= until {
                    continue;
                }
                if rng.random_bool(0.5) {
                    change(State::Confirmed, "the answer does not show a need to know".into())
                } else {
                    Change {
                        ground: Some(GROUNDS[1].to_owned()),
                        ..change(State::Justified, "the answer shows the assignment".into())
                    }
                }
            }
        };
        steps.push((i, decided, Instant(at)));
    }
    steps.sort_by_key(|(_, _, at)| *at);
    steps
}

fn date(micros: i64) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    epoch.checked_add_days(Days::new((micros / DAY).max(0) as u64)).unwrap_or(epoch)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_history_is_the_same_for_the_same_seed_and_every_step_is_a_move_the_rules_allow() {
        let findings: Vec<Finding> = (0..400)
            .map(|i| Finding {
                rule: "NTK-DOMAIN".into(),
                subject_id: format!("E-{i}"),
                member_state: Some(if i % 3 == 0 { "EU".into() } else { "DE".into() }),
                authority_id: Some("A-1".into()),
                ts: Some(Instant(1_700_000_000_000_000 + i * DAY)),
                ..Finding::default()
            })
            .collect();
        let until = 1_700_000_000_000_000 + 500 * DAY;
        let h = review_history(&findings, 7, until);
        assert_eq!(h.len(), review_history(&findings, 7, until).len());
        assert!(h.len() > 100, "{}", h.len());
        let dir = tempfile::tempdir().unwrap();
        let store = custos_engine::store::Store::open_or_create(dir.path()).unwrap();
        let mut reviews = custos_engine::review::Reviews::load(&store).unwrap();
        let steps: Vec<_> = h
            .iter()
            .map(|(i, c, at)| custos_engine::review::Step {
                finding: &findings[*i],
                policy_hash: "h",
                change: c.clone(),
                at: *at,
            })
            .collect();
        assert_eq!(reviews.record_history(&store, &steps).unwrap(), h.len());
        let states: std::collections::BTreeSet<State> = reviews.latest_all().map(|d| d.state).collect();
        for s in
            [State::UnderReview, State::Confirmed, State::FalsePositive, State::Justified, State::Referred]
        {
            assert!(states.contains(&s), "no {s} in {states:?}");
        }
        assert!(h.iter().all(|(_, _, at)| at.micros() < until));
    }
}
