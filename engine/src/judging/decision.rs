//! Decisions: Cedar judges an operation described by its facts.
//!
//! A [`Scene`] is everything the need-to-know policies may look at: who acted (user and
//! authority, as they stood at that instant), what they did, for what purpose, on which
//! case and in which domain. [`Judge::decide`] turns a scene into a Cedar request and
//! entities, asks the `Authorizer`, and returns the [`Verdict`]: the rule IDs of every
//! forbid policy that applied (none when the operation was lawful).
//!
//! The policies read attributes only, never entity identifiers, so two scenes that differ
//! only in identifiers get the same verdict. The audit relies on that: it gives every event
//! the same stand-in identifiers (`actor`, `case`) and evaluates each distinct scene once.
//! The differential test checks it against scenes with the real identifiers and the full
//! participant list, evaluated event by event.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request,
    RestrictedExpression,
};
use custos_policies::Policies;

use crate::error::{Error, Result};

/// The case side of a scene.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseScene<'a> {
    /// The case's identifier.
    pub id: &'a str,
    /// Its domain.
    pub domain: &'a str,
    /// It holds personal data.
    pub personal_data: bool,
    /// Blocked by the instant of the operation.
    pub blocked: bool,
    /// Deleted by the instant of the operation.
    pub deleted: bool,
    /// The data subject consented.
    pub subject_consent: bool,
    /// The domain's act gives the Commission a role.
    pub commission_participates: bool,
    /// Third countries the domain's act admits.
    pub third_countries: Vec<&'a str>,
    /// Authorities taking part at the instant: identifier, kind, member state.
    pub participants: Vec<(&'a str, &'a str, &'a str)>,
}

/// One operation as the policies see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scene<'a> {
    /// The user's identifier.
    pub user: &'a str,
    /// The user's authority's identifier.
    pub authority: &'a str,
    /// The authority's kind.
    pub authority_kind: &'a str,
    /// The authority's member state.
    pub member_state: &'a str,
    /// Registered and not deactivated at the instant.
    pub user_active: bool,
    /// Domains in which the user holds access rights.
    pub user_domains: Vec<&'a str>,
    /// The operation (`view`, `login`, …).
    pub action: &'a str,
    /// The purpose.
    pub purpose: &'a str,
    /// A legal ground for using blocked data is referenced.
    pub legal_ground: bool,
    /// The case, or `None` for operations on no case.
    pub case: Option<CaseScene<'a>>,
}

/// What Cedar decided about a scene.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// IDs of every forbid policy that applied, sorted; empty when the operation was lawful.
    pub broken: Vec<String>,
}

impl Verdict {
    /// Whether any rule was broken.
    pub fn is_violation(&self) -> bool {
        !self.broken.is_empty()
    }
}

/// The entity type names of the schema, parsed once.
struct Types {
    user: EntityTypeName,
    authority: EntityTypeName,
    case: EntityTypeName,
    domain: EntityTypeName,
    system: EntityTypeName,
    action: EntityTypeName,
}

/// Asks Cedar about scenes.
pub struct Judge {
    policies: Arc<Policies>,
    authorizer: Authorizer,
    types: Types,
}

pub(crate) fn type_name(s: &str) -> Result<EntityTypeName> {
    EntityTypeName::from_str(s).map_err(|e| Error::Internal(format!("entity type `{s}`: {e}")))
}

impl Judge {
    /// A judge applying `policies`.
    pub fn new(policies: Arc<Policies>) -> Result<Judge> {
        Ok(Judge {
            policies,
            authorizer: Authorizer::new(),
            types: Types {
                user: type_name("IMI::User")?,
                authority: type_name("IMI::Authority")?,
                case: type_name("IMI::Case")?,
                domain: type_name("IMI::Domain")?,
                system: type_name("IMI::System")?,
                action: type_name("IMI::Action")?,
            },
        })
    }

    /// The policies applied.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    fn uid(&self, t: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
    }

    /// The Cedar request and entities for a scene.
    pub fn request(&self, scene: &Scene<'_>) -> Result<(Request, Entities)> {
        let t = &self.types;
        let cedar = |e: String| Error::Usage(format!("building the Cedar request: {e}"));
        let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
        let mut entities = Vec::new();
        let authority = |id: &str, kind: &str, ms: &str| -> Result<Entity> {
            let attrs =
                HashMap::from([("kind".to_owned(), string(kind)), ("member_state".to_owned(), string(ms))]);
            Entity::new(self.uid(&t.authority, id), attrs, HashSet::new()).map_err(|e| cedar(e.to_string()))
        };
        entities.push(authority(scene.authority, scene.authority_kind, scene.member_state)?);
        let user_attrs = HashMap::from([
            (
                "authority".to_owned(),
                RestrictedExpression::new_entity_uid(self.uid(&t.authority, scene.authority)),
            ),
            (
                "domains".to_owned(),
                RestrictedExpression::new_set(
                    scene
                        .user_domains
                        .iter()
                        .map(|d| RestrictedExpression::new_entity_uid(self.uid(&t.domain, d))),
                ),
            ),
            ("active".to_owned(), RestrictedExpression::new_bool(scene.user_active)),
        ]);
        let principal = self.uid(&t.user, scene.user);
        entities.push(
            Entity::new(principal.clone(), user_attrs, HashSet::new()).map_err(|e| cedar(e.to_string()))?,
        );
        let resource = match &scene.case {
            None => {
                let system = self.uid(&t.system, "IMI");
                entities.push(Entity::new_no_attrs(system.clone(), HashSet::new()));
                system
            }
            Some(c) => {
                let domain_attrs = HashMap::from([
                    (
                        "commission_participates".to_owned(),
                        RestrictedExpression::new_bool(c.commission_participates),
                    ),
                    (
                        "third_countries".to_owned(),
                        RestrictedExpression::new_set(c.third_countries.iter().map(|s| string(s))),
                    ),
                ]);
                entities.push(
                    Entity::new(self.uid(&t.domain, c.domain), domain_attrs, HashSet::new())
                        .map_err(|e| cedar(e.to_string()))?,
                );
                for (id, kind, ms) in &c.participants {
                    if *id != scene.authority {
                        entities.push(authority(id, kind, ms)?);
                    }
                }
                let case_attrs = HashMap::from([
                    (
                        "domain".to_owned(),
                        RestrictedExpression::new_entity_uid(self.uid(&t.domain, c.domain)),
                    ),
                    ("personal_data".to_owned(), RestrictedExpression::new_bool(c.personal_data)),
                    (
                        "participants".to_owned(),
                        RestrictedExpression::new_set(c.participants.iter().map(|(id, _, _)| {
                            RestrictedExpression::new_entity_uid(self.uid(&t.authority, id))
                        })),
                    ),
                    ("blocked".to_owned(), RestrictedExpression::new_bool(c.blocked)),
                    ("deleted".to_owned(), RestrictedExpression::new_bool(c.deleted)),
                    ("subject_consent".to_owned(), RestrictedExpression::new_bool(c.subject_consent)),
                ]);
                let case = self.uid(&t.case, c.id);
                entities.push(
                    Entity::new(case.clone(), case_attrs, HashSet::new())
                        .map_err(|e| cedar(e.to_string()))?,
                );
                case
            }
        };
        let action = self.uid(&t.action, scene.action);
        let context = Context::from_pairs([
            ("purpose".to_owned(), string(scene.purpose)),
            ("legal_ground".to_owned(), RestrictedExpression::new_bool(scene.legal_ground)),
        ])
        .map_err(|e| cedar(e.to_string()))?;
        let schema = Some(self.policies.schema());
        let request =
            Request::new(principal, action, resource, context, schema).map_err(|e| cedar(e.to_string()))?;
        let entities = Entities::from_entities(entities, schema).map_err(|e| cedar(e.to_string()))?;
        Ok((request, entities))
    }

    /// Decides a scene.
    pub fn decide(&self, scene: &Scene<'_>) -> Result<Verdict> {
        let (request, entities) = self.request(scene)?;
        let response = self.authorizer.is_authorized(&request, self.policies.set(), &entities);
        Ok(Verdict { broken: broken(&response)? })
    }
}

/// The IDs of the forbid policies that decided a denial, sorted; none for an allow. A policy
/// that failed to evaluate is an error, never a silent allow.
pub(crate) fn broken(response: &cedar_policy::Response) -> Result<Vec<String>> {
    if let Some(e) = response.diagnostics().errors().next() {
        return Err(Error::Internal(format!("a policy failed to evaluate: {e}")));
    }
    let mut broken: Vec<String> = match response.decision() {
        Decision::Allow => Vec::new(),
        Decision::Deny => response.diagnostics().reason().map(ToString::to_string).collect(),
    };
    broken.sort();
    Ok(broken)
}
