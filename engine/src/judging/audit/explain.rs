//! One event explained: the audit's facts and policies, with the event's own identifiers.

use super::*;

/// One event explained: its facts, the request Cedar was asked, and what it decided.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The event's facts as the facts query computed them, as JSON.
    pub facts: serde_json::Value,
    /// The Cedar request: principal, action, resource and context.
    pub request: String,
    /// The entities Cedar was given, as JSON.
    pub entities: serde_json::Value,
    /// The decision.
    pub verdict: Verdict,
}

/// Explains one event: the same facts and policies as the audit, with the event's own
/// identifiers in the request. `at`, the event's instant when known (from its finding),
/// lets the query read one month of the access log rather than all of it.
pub async fn explain(store: &Store, judge: &Judge, event_id: &str, at: Option<i64>) -> Result<Explanation> {
    use datafusion::prelude::{col, lit};
    let ctx = query::session(store).await?;
    let lists = Lists::load(&ctx).await?;
    let window = Window { from: at, to: at.map(|t| t + 1) };
    let df = facts(&ctx, window).await?.filter(col("event_id").eq(lit(event_id)))?;
    let batches = df.collect().await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Err(Error::Usage(format!("no granted event has the id `{event_id}`")));
    };
    let c = Columns { batch };
    let facts = RowFacts::of_row(&c, &lists, 0)?;
    let user = c.get("user_key")?.as_primitive::<Int32Type>().value(0);
    let Some(u) = lists.user(user) else {
        return Err(Error::Usage(format!("the event `{event_id}` has no known user")));
    };
    let cases = c.get("case_key")?.as_primitive::<Int32Type>();
    let case_id = if cases.is_null(0) { None } else { lists.case_id(cases.value(0)) };
    let mut s = facts.scene();
    s.user = &u.id;
    s.authority = &u.authority;
    if let Some(case) = s.case.as_mut() {
        case.id = case_id.unwrap_or_default();
        for p in &mut case.participants {
            p.0 = &u.authority;
        }
    }
    let (request, entities) = judge.request(&s)?;
    let verdict = judge.decide(&s)?;
    let mut w = arrow::json::ArrayWriter::new(Vec::new());
    w.write(batch)?;
    w.finish()?;
    let rows: serde_json::Value = serde_json::from_slice(&w.into_inner())?;
    // The row as the query computed it, with what it leaves to `Lists`: the identifiers
    // (after the event's), and the user's profile and the domain's third countries, which
    // stay the same from event to event.
    let row = rows.get(0).and_then(|r| r.as_object()).cloned().unwrap_or_default();
    let mut o = serde_json::Map::new();
    for (name, value) in &row {
        o.insert(name.clone(), value.clone());
        if name == "ts" {
            o.insert("user_id".into(), u.id.clone().into());
            o.insert("authority_id".into(), u.authority.clone().into());
            o.insert("case_id".into(), case_id.into());
        }
    }
    o.insert("authority_kind".into(), facts.authority_kind.clone().into());
    o.insert("member_state".into(), facts.member_state.clone().into());
    o.insert("user_domains".into(), facts.user_domains.clone().into());
    let countries = facts.case.as_ref().map(|c| c.third_countries.clone()).unwrap_or_default();
    o.insert("third_countries".into(), countries.into());
    let facts_json = serde_json::Value::Object(o);
    let mut entity_json = Vec::new();
    entities
        .write_to_json(&mut entity_json)
        .map_err(|e| Error::Internal(format!("the entities as JSON: {e}")))?;
    Ok(Explanation {
        facts: facts_json,
        request: request.to_string(),
        entities: serde_json::from_slice(&entity_json)?,
        verdict,
    })
}
