//! Asking Cedar about deadline subjects: entities, requests, and the order-canonical form
//! that lets one evaluation stand for every subject of the same shape.

use super::*;

/// Asks Cedar about subjects, once per canonical form.
pub struct DeadlineJudge {
    pub(super) policies: Arc<Policies>,
    pub(super) authorizer: Authorizer,
    pub(super) principal: EntityUid,
    pub(super) action: EntityUid,
    pub(super) cache: HashMap<Vec<u8>, Verdicts, foldhash::fast::RandomState>,
    /// Ask Cedar about every subject with its real instants (the differential twin).
    pub(super) naive: bool,
    /// Ends of periods this judge's thread computed before.
    pub(super) memo: period::Memo,
    /// The findings of the batch being judged.
    pub(super) found: Findings,
    /// A subject's instants, in order (kept for the next subject).
    pub(super) instants: Vec<i64>,
    /// A subject's cache key (kept for the next subject).
    pub(super) key: Vec<u8>,
}

pub(super) fn uid(t: &str, id: &str) -> Result<EntityUid> {
    Ok(EntityUid::from_type_name_and_id(crate::decision::type_name(t)?, EntityId::new(id)))
}

impl DeadlineJudge {
    /// A judge applying `policies` (the deadline rules).
    pub fn new(policies: Arc<Policies>) -> Result<DeadlineJudge> {
        Ok(DeadlineJudge {
            authorizer: Authorizer::new(),
            principal: uid("Deadline::Supervisor", "custos")?,
            action: uid("Deadline::Action", "check")?,
            cache: HashMap::default(),
            naive: false,
            memo: period::Memo::default(),
            found: Findings::new(Arc::clone(&policies)),
            policies,
            instants: Vec::new(),
            key: Vec::new(),
        })
    }

    /// A judge that asks Cedar once per subject with its real instants and caches nothing:
    /// slow and obviously right, the twin the canonical form is tested against.
    pub fn naive(policies: Arc<Policies>) -> Result<DeadlineJudge> {
        Ok(DeadlineJudge { naive: true, ..DeadlineJudge::new(policies)? })
    }

    /// The policies applied.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The policies a subject breaks as of `as_of`, and as of `later` when asked (the
    /// horizon of `due_soon`), each sorted.
    pub(super) fn broken(&mut self, s: &Subject, as_of: i64, later: Option<i64>) -> Result<Verdicts> {
        if self.naive {
            let facts = s.facts.iter().map(|(n, f)| (*n, f.clone())).collect::<Vec<_>>();
            let now = self.decide(s.kind, &facts, as_of)?;
            let soon = later.map(|t| self.decide(s.kind, &facts, t)).transpose()?.unwrap_or_default();
            return Ok(Arc::new((now, soon)));
        }
        // The canonical form: every instant replaced by its rank among the subject's instants
        // and the check's instants (now, and the horizon's end), so that one key serves both.
        let (mut instants, mut key) = (std::mem::take(&mut self.instants), std::mem::take(&mut self.key));
        instants.clear();
        key.clear();
        instants.extend(
            s.facts.iter().filter_map(|(_, f)| if let Fact::Instant(t) = f { Some(*t) } else { None }),
        );
        instants.push(as_of);
        instants.extend(later);
        instants.sort_unstable();
        instants.dedup();
        let rank = |t: i64| instants.binary_search(&t).unwrap_or(0) as i64;
        key.extend_from_slice(s.kind.as_bytes());
        for (n, f) in &s.facts {
            // A fact's name by its number (one byte), not its text.
            key.push(*n as u8);
            match f {
                Fact::Bool(b) => key.push(u8::from(*b)),
                Fact::Text(t) => {
                    key.extend_from_slice(t.as_bytes());
                    key.push(0xff);
                }
                Fact::Instant(t) => key.extend_from_slice(&(rank(*t) as u16).to_le_bytes()),
            }
        }
        key.extend_from_slice(&(rank(as_of) as u16).to_le_bytes());
        key.extend_from_slice(&later.map_or(u16::MAX, |t| rank(t) as u16).to_le_bytes());
        let hit = self.cache.get(key.as_slice()).cloned();
        let verdicts = match hit {
            Some(hit) => hit,
            None => self.decide_canonical(s, &key, &rank, as_of, later)?,
        };
        // The buffers serve the next subject.
        (self.instants, self.key) = (instants, key);
        Ok(verdicts)
    }

    /// Asks Cedar about a subject in its canonical form and remembers the answer under `key`.
    pub(super) fn decide_canonical(
        &mut self,
        s: &Subject,
        key: &[u8],
        rank: &dyn Fn(i64) -> i64,
        as_of: i64,
        later: Option<i64>,
    ) -> Result<Verdicts> {
        let canonical: Vec<(Name, Fact)> = s
            .facts
            .iter()
            .map(|(n, f)| {
                (
                    *n,
                    match f {
                        Fact::Instant(t) => Fact::Instant(rank(*t)),
                        other => other.clone(),
                    },
                )
            })
            .collect();
        let now = self.decide(s.kind, &canonical, rank(as_of))?;
        let soon = later.map(|t| self.decide(s.kind, &canonical, rank(t))).transpose()?.unwrap_or_default();
        let verdicts = Arc::new((now, soon));
        self.cache.insert(key.to_vec(), Arc::clone(&verdicts));
        Ok(verdicts)
    }

    pub(super) fn decide(&self, kind: &str, facts: &[(Name, Fact)], as_of: i64) -> Result<Vec<usize>> {
        let cedar = |e: String| Error::Internal(format!("building the Cedar request: {e}"));
        let attrs: HashMap<String, RestrictedExpression> = facts
            .iter()
            .map(|(n, f)| {
                let v = match f {
                    Fact::Bool(b) => RestrictedExpression::new_bool(*b),
                    Fact::Text(s) => RestrictedExpression::new_string(s.clone()),
                    Fact::Instant(t) => RestrictedExpression::new_long(*t),
                };
                (n.as_str().to_owned(), v)
            })
            .collect();
        let resource = uid(&format!("Deadline::{kind}"), "subject")?;
        let schema = Some(self.policies.schema());
        let entities = Entities::from_entities(
            [
                Entity::new(resource.clone(), attrs, HashSet::new()).map_err(|e| cedar(e.to_string()))?,
                Entity::new_no_attrs(self.principal.clone(), HashSet::new()),
            ],
            schema,
        )
        .map_err(|e| cedar(e.to_string()))?;
        let context = Context::from_pairs([("as_of".to_owned(), RestrictedExpression::new_long(as_of))])
            .map_err(|e| cedar(e.to_string()))?;
        let request = Request::new(self.principal.clone(), self.action.clone(), resource, context, schema)
            .map_err(|e| cedar(e.to_string()))?;
        let response = self.authorizer.is_authorized(&request, self.policies.set(), &entities);
        crate::decision::broken(&response)?
            .iter()
            .map(|id| {
                self.policies.place(id).ok_or_else(|| Error::Internal(format!("unknown policy `{id}`")))
            })
            .collect()
    }
}
