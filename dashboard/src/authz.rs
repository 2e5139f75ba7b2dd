//! Who may see what: every handler asks the Cedar policies of `policies/rules/view/` about
//! each item it would show, and shows only what they permit.
//!
//! A viewer's decisions depend only on the viewer's role and scope and on the item's
//! attributes, so they are cached per (viewer, item) pair: a page of a thousand findings of
//! thirty member states asks Cedar a few dozen times, once.

use std::collections::HashMap;
use std::sync::Mutex;

use cedar_policy::{Authorizer, Context, Decision, Entities, EntityUid, Request};
use custos_policies::Policies;
use serde::Serialize;
use serde_json::json;

use crate::account::Account;
use crate::error::Result;

/// Someone logged in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Viewer {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: String,
    /// A DPA's member state, else empty.
    pub member_state: String,
    /// A DPO's controller, else empty.
    pub controller: String,
}

impl Viewer {
    /// The viewer an account logs in as.
    pub fn of(a: &Account) -> Viewer {
        Viewer {
            name: a.name.clone(),
            role: a.role.clone(),
            member_state: a.member_state.clone().unwrap_or_default(),
            controller: a.controller.clone().unwrap_or_default(),
        }
    }

    /// The IANA zone dates are shown in: a DPA's member state's; Brussels otherwise.
    pub fn zone(&self) -> chrono_tz::Tz {
        if self.member_state.is_empty() {
            chrono_tz::Europe::Brussels
        } else {
            custos_engine::calendar::zone(&self.member_state)
        }
    }
}

/// Something a page would show.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Item {
    /// `data`, `policies` or `admin`.
    pub kind: &'static str,
    /// A count or indicator, not records.
    pub aggregate: bool,
    /// Holds an identifier of a natural person.
    pub personal: bool,
    /// Counts have passed disclosure control.
    pub protected: bool,
    /// The actor's member state; empty when the item spans several.
    pub member_state: String,
    /// The actor; empty when the item spans several.
    pub controller: String,
}

impl Item {
    /// A statistic over every actor.
    pub fn statistics() -> Item {
        Item::stat("", "")
    }

    /// A statistic over one actor's (or one member state's) records.
    pub fn stat(member_state: &str, controller: &str) -> Item {
        Item {
            kind: "data",
            aggregate: true,
            personal: false,
            protected: false,
            member_state: member_state.to_owned(),
            controller: controller.to_owned(),
        }
    }

    /// The same statistic after disclosure control.
    pub fn protected(mut self) -> Item {
        self.protected = true;
        self
    }

    /// Records of one actor, identifying natural persons when `personal`.
    pub fn detail(member_state: &str, controller: &str, personal: bool) -> Item {
        Item {
            kind: "data",
            aggregate: false,
            personal,
            protected: false,
            member_state: member_state.to_owned(),
            controller: controller.to_owned(),
        }
    }

    /// The rules' text.
    pub fn policies() -> Item {
        Item { kind: "policies", ..Item::statistics() }
    }

    /// Accounts, imports, integrity.
    pub fn admin() -> Item {
        Item { kind: "admin", aggregate: false, ..Item::statistics() }
    }

    /// Custos's own access log: who saw which person's data in Custos.
    pub fn trail() -> Item {
        Item { kind: "trail", aggregate: false, ..Item::statistics() }
    }

    /// The Commission's report to the EDPS (IMI Art. 25(2)): counts, and detail only about
    /// Union controllers' breaches; `commission` is the Commission's authority, whose DPO
    /// reads it.
    pub fn edps_report(commission: &str) -> Item {
        Item {
            kind: "edps_report",
            aggregate: true,
            personal: false,
            protected: false,
            member_state: "EU".to_owned(),
            controller: commission.to_owned(),
        }
    }
}

/// What a viewer asks to do with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// See it.
    View,
    /// Make it (a report).
    Produce,
    /// Dispose of it (a finding): under review, confirmed, justified, false positive.
    Review,
    /// Refer it (a finding) to the authority concerned and record the answer.
    Refer,
    /// Record or complete it (a controller's register entry).
    Record,
}

impl Action {
    /// Every action, as the schema lists them.
    pub const ALL: [Action; 5] =
        [Action::View, Action::Produce, Action::Review, Action::Refer, Action::Record];

    /// The action's Cedar name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Produce => "produce",
            Action::Review => "review",
            Action::Refer => "refer",
            Action::Record => "record",
        }
    }
}

/// The view policies and the decisions taken so far.
pub struct Guard {
    policies: Policies,
    authorizer: Authorizer,
    cache: Mutex<HashMap<(Viewer, Action, Item), bool>>,
}

impl Guard {
    /// The shipped view policies.
    pub fn new() -> Result<Guard> {
        Ok(Guard {
            policies: Policies::views()?,
            authorizer: Authorizer::new(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The policies consulted.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// Whether `viewer` may see `item`.
    pub fn allows(&self, viewer: &Viewer, item: &Item) -> bool {
        self.allows_to(viewer, Action::View, item)
    }

    /// Whether the view policies let `viewer` do `action` with `item`.
    pub fn allows_to(&self, viewer: &Viewer, action: Action, item: &Item) -> bool {
        let key = (viewer.clone(), action, item.clone());
        if let Some(&d) = self.cache.lock().ok().and_then(|c| c.get(&key).copied()).as_ref() {
            return d;
        }
        let decision = self.decide(viewer, action, item).unwrap_or_else(|e| {
            tracing::error!(%e, "a view decision failed: refused");
            false
        });
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, decision);
        }
        decision
    }

    fn decide(&self, viewer: &Viewer, action: Action, item: &Item) -> Result<bool> {
        let schema = self.policies.schema();
        let bad = |e: &dyn std::fmt::Display| crate::error::Error::Internal(e.to_string());
        let principal: EntityUid = r#"Dashboard::Viewer::"v""#.parse().map_err(|e| bad(&e))?;
        let resource: EntityUid = r#"Dashboard::Item::"i""#.parse().map_err(|e| bad(&e))?;
        let action: EntityUid =
            format!(r#"Dashboard::Action::"{}""#, action.as_str()).parse().map_err(|e| bad(&e))?;
        let entities = Entities::from_json_value(
            json!([
                {"uid": {"type": "Dashboard::Viewer", "id": "v"}, "parents": [], "attrs": {
                    "role": viewer.role, "member_state": viewer.member_state, "controller": viewer.controller}},
                {"uid": {"type": "Dashboard::Item", "id": "i"}, "parents": [], "attrs": {
                    "kind": item.kind, "aggregate": item.aggregate, "personal": item.personal,
                    "protected": item.protected, "member_state": item.member_state, "controller": item.controller}},
            ]),
            Some(schema),
        )
        .map_err(|e| bad(&e))?;
        let request =
            Request::new(principal, action, resource, Context::empty(), Some(schema)).map_err(|e| bad(&e))?;
        let response = self.authorizer.is_authorized(&request, self.policies.set(), &entities);
        Ok(response.decision() == Decision::Allow)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn viewer(role: &str, ms: &str, ctl: &str) -> Viewer {
        Viewer { name: role.into(), role: role.into(), member_state: ms.into(), controller: ctl.into() }
    }

    #[test]
    fn the_roles_of_product_md() {
        let g = Guard::new().unwrap();
        let (edps, dpa, dpo, com, admin) = (
            viewer("edps", "", ""),
            viewer("dpa", "DE", ""),
            viewer("dpo", "", "A-FR-1"),
            viewer("commission", "", ""),
            viewer("admin", "", ""),
        );
        let eu = Item::detail("EU", "A-EU-COM", true);
        let de = Item::detail("DE", "A-DE-1", true);
        let fr = Item::detail("FR", "A-FR-1", true);
        assert!(g.allows(&edps, &Item::statistics()) && g.allows(&dpa, &Item::statistics()));
        assert!(!g.allows(&com, &Item::statistics()) && g.allows(&com, &Item::statistics().protected()));
        assert!(g.allows(&edps, &eu) && !g.allows(&edps, &de));
        assert!(g.allows(&dpa, &de) && !g.allows(&dpa, &fr) && !g.allows(&dpa, &eu));
        assert!(g.allows(&dpo, &fr) && !g.allows(&dpo, &de) && !g.allows(&dpo, &Item::statistics()));
        assert!(g.allows(&dpo, &Item::stat("FR", "A-FR-1")));
        assert!(!g.allows(&com, &fr) && !g.allows(&admin, &fr) && !g.allows(&admin, &Item::statistics()));
        assert!(g.allows(&admin, &Item::admin()) && !g.allows(&dpa, &Item::admin()));
        for v in [&edps, &dpa, &dpo, &com, &admin] {
            assert!(g.allows(v, &Item::policies()));
        }
        // Twice: the cached decision is the same.
        assert!(g.allows(&dpa, &de) && !g.allows(&dpa, &fr));
    }
}
