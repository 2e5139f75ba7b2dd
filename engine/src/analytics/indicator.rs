//! The Single Market Scoreboard's IMI indicators and the benchmarking of authorities.
//!
//! ```text
//! cases, case_participants, authorities
//!        │  request_facts.sql ($1..$6: years, domains, the readings chosen)
//!        ▼
//!  request_facts (one row per request) ──► indicators.sql ──► colours, scores (here)
//!                                      └─► benchmark.sql  ──► ranks, percentiles, trends
//! ```
//!
//! The figures are computed in SQL (so that they can be checked against another engine on
//! the same files); this module binds the parameters, gives each value its colour and each
//! row its overall score exactly as rules.md defines them, and says which readings of the
//! published definitions were used. These are benchmarks, not findings: no policy decides
//! them.

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::query::sql;

/// The domains the Scoreboard counts unless told otherwise.
pub const DEFAULT_DOMAINS: [&str; 4] =
    ["professional_qualifications", "services", "posting_of_workers", "patients_rights"];

/// From which instant IND-2 counts the days to an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerFrom {
    /// From `sent_at`: the Scoreboard's reading (rules.md), the default.
    Sending,
    /// From `accepted_at`.
    Acceptance,
}

/// What "answered by the agreed date" (IND-3) and "late" (benchmarking) compare against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreedDate {
    /// 24:00 of the agreed day in the responding authority's legal time, as RT-LATE reads
    /// IMI Art. 7(1): the default.
    EndOfDay,
    /// The agreed instant itself.
    Instant,
}

/// The choices the published definitions leave open, stated in every output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// Domains counted.
    pub domains: Vec<String>,
    /// IND-2's starting instant.
    pub answer_from: AnswerFrom,
    /// IND-3's and RT-LATE's end of the agreed date.
    pub agreed_date: AgreedDate,
    /// The instant an unanswered request is judged at (microseconds since the epoch, UTC).
    #[serde(skip)]
    pub as_of: i64,
}

impl Options {
    /// The Scoreboard's readings, as of `as_of`.
    pub fn scoreboard(as_of: i64) -> Options {
        Options {
            domains: DEFAULT_DOMAINS.iter().map(|d| (*d).to_owned()).collect(),
            answer_from: AnswerFrom::Sending,
            agreed_date: AgreedDate::EndOfDay,
            as_of,
        }
    }

    /// The readings in words, for a table's header.
    pub fn describe(&self) -> String {
        format!(
            "domains: {}; IND-1: accepted within 7 × 24 hours of sending; IND-2: days from {} to the \
             (final) answer; IND-3 and late: answered by {}; year of sending, Brussels time",
            self.domains.join(", "),
            match self.answer_from {
                AnswerFrom::Sending => "sending",
                AnswerFrom::Acceptance => "acceptance",
            },
            match self.agreed_date {
                AgreedDate::EndOfDay => "24:00 of the agreed day in the responding authority's time",
                AgreedDate::Instant => "the agreed instant",
            }
        )
    }
}

/// Registers `request_facts`: the facts of the requests sent from `first` to `last` (years),
/// as [`Options`] reads them, for [`indicators`] and [`benchmark`] to query.
pub async fn register_request_facts(
    ctx: &SessionContext,
    first: i32,
    last: i32,
    options: &Options,
) -> Result<()> {
    let domains: Vec<ScalarValue> =
        options.domains.iter().map(|d| ScalarValue::Utf8(Some(d.clone()))).collect();
    let params = vec![
        ScalarValue::Int64(Some(i64::from(first))),
        ScalarValue::Int64(Some(i64::from(last))),
        ScalarValue::List(ScalarValue::new_list_nullable(&domains, &arrow::datatypes::DataType::Utf8)),
        ScalarValue::Boolean(Some(options.answer_from == AnswerFrom::Acceptance)),
        ScalarValue::Boolean(Some(options.agreed_date == AgreedDate::EndOfDay)),
        ScalarValue::TimestampMicrosecond(Some(options.as_of), Some(Arc::from("UTC"))),
    ];
    let facts = ctx.sql(sql::REQUEST_FACTS).await?.with_param_values(params)?;
    // A year without requests has no batch: its columns still come from the plan, so the
    // queries over it find them and answer with no rows.
    let planned = Arc::clone(facts.schema().inner());
    // Materialised: both queries read it, and it is small beside the tables it comes from.
    let batches = facts.collect().await?;
    let schema = batches.first().map_or(planned, |b| b.schema());
    let table = datafusion::datasource::MemTable::try_new(schema, vec![batches])?;
    ctx.deregister_table("request_facts")?;
    ctx.register_table("request_facts", Arc::new(table))?;
    Ok(())
}

/// A traffic-light colour of the Scoreboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    /// +1 to the overall score.
    Green,
    /// 0.
    Yellow,
    /// -1.
    Red,
}

impl Colour {
    fn points(self) -> i32 {
        match self {
            Colour::Green => 1,
            Colour::Yellow => 0,
            Colour::Red => -1,
        }
    }
}

/// The five indicators, in order.
pub const INDICATORS: [&str; 5] = ["IND-1", "IND-2", "IND-3", "IND-4", "IND-5"];

/// The colour rules.md gives value `v` of indicator `ind` (0-based: 0 is IND-1).
///
/// IND-1, IND-3: ≥ 80 green, 60-79 yellow, under 60 red (percent). IND-2: under 16 green,
/// 16-25 yellow, over 25 red (days). IND-4, IND-5: under 5 green, 5-14 yellow, ≥ 15 red
/// (percent). The bands are
/// read as half-open intervals so that every value has exactly one colour (79.5 % is yellow;
/// 25.5 days is red).
pub fn colour(ind: usize, v: f64) -> Colour {
    match ind {
        0 | 2 if v >= 80.0 => Colour::Green,
        0 | 2 if v >= 60.0 => Colour::Yellow,
        0 | 2 => Colour::Red,
        1 if v < 16.0 => Colour::Green,
        1 if v <= 25.0 => Colour::Yellow,
        1 => Colour::Red,
        _ if v < 5.0 => Colour::Green,
        _ if v < 15.0 => Colour::Yellow,
        _ => Colour::Red,
    }
}

/// The overall rating of a score: ≥ 2 good, -1..1 medium, ≤ -2 poor.
pub fn rating(score: i32) -> &'static str {
    match score {
        s if s >= 2 => "good",
        s if s <= -2 => "poor",
        _ => "medium",
    }
}

/// One row of the indicators: a member state and domain, a member state, a domain, or all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indicators {
    /// `member_state_domain`, `member_state`, `domain` or `overall`.
    pub level: String,
    /// Member state of the responding authority, unless the row spans them.
    #[serde(default)]
    pub member_state: Option<String>,
    /// Domain, unless the row spans them.
    #[serde(default)]
    pub domain: Option<String>,
    /// Requests received (sent in the year).
    pub received: u64,
    /// Of which accepted within 7 days.
    pub accepted_in_7_days: u64,
    /// Answered.
    pub answered: u64,
    /// With an agreed date.
    pub with_due: u64,
    /// Of which answered by it.
    pub on_time: u64,
    /// Rated for timeliness.
    pub rated_timeliness: u64,
    /// Of which negatively.
    pub negative_timeliness: u64,
    /// Rated for effort.
    pub rated_effort: u64,
    /// Of which negatively.
    pub negative_effort: u64,
    /// IND-1 (%).
    #[serde(default)]
    pub ind1: Option<f64>,
    /// IND-2 (days).
    #[serde(default)]
    pub ind2: Option<f64>,
    /// IND-3 (%).
    #[serde(default)]
    pub ind3: Option<f64>,
    /// IND-4 (%).
    #[serde(default)]
    pub ind4: Option<f64>,
    /// IND-5 (%).
    #[serde(default)]
    pub ind5: Option<f64>,
    /// The colour of each indicator; none where there is no value.
    #[serde(default)]
    pub colours: [Option<Colour>; 5],
    /// Green +1, yellow 0, red -1, summed over the indicators that have a value; none when
    /// no indicator has one.
    #[serde(default)]
    pub score: Option<i32>,
    /// `good`, `medium` or `poor`, with the score.
    #[serde(default)]
    pub rating: Option<String>,
}

impl Indicators {
    /// The five values, in order.
    pub fn values(&self) -> [Option<f64>; 5] {
        [self.ind1, self.ind2, self.ind3, self.ind4, self.ind5]
    }
}

/// The indicators of `year`, from the registered `request_facts`, coloured and scored.
pub async fn indicators(ctx: &SessionContext, year: i32) -> Result<Vec<Indicators>> {
    let mut rows: Vec<Indicators> = rows(ctx, sql::INDICATORS, year).await?;
    for row in &mut rows {
        let values = row.values();
        row.colours = std::array::from_fn(|i| values[i].map(|v| colour(i, v)));
        let colours: Vec<Colour> = row.colours.iter().flatten().copied().collect();
        row.score = (!colours.is_empty()).then(|| colours.iter().map(|c| c.points()).sum());
        row.rating = row.score.map(|s| rating(s).to_owned());
    }
    Ok(rows)
}

/// One authority's or member state's figures against its peers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Benchmark {
    /// `authority` or `member_state`.
    pub level: String,
    /// The responding authority, at authority level.
    #[serde(default)]
    pub authority_id: Option<String>,
    /// Its member state.
    pub member_state: String,
    /// The domain: peers are compared within one.
    pub domain: String,
    /// Requests received.
    pub received: u64,
    /// Median days to accept.
    #[serde(default)]
    pub accept_median: Option<f64>,
    /// 90th percentile of days to accept.
    #[serde(default)]
    pub accept_p90: Option<f64>,
    /// Median days to answer.
    #[serde(default)]
    pub answer_median: Option<f64>,
    /// 90th percentile of days to answer.
    #[serde(default)]
    pub answer_p90: Option<f64>,
    /// Requests with an agreed date.
    pub with_due: u64,
    /// Of which late (RT-LATE).
    pub late: u64,
    /// `late / with_due`.
    #[serde(default)]
    pub share_late: Option<f64>,
    /// Peers in the domain and year, itself included.
    pub peers: u64,
    /// 1 = shortest median answer.
    pub rank: u64,
    /// 100 = fastest, 0 = slowest.
    pub percentile: f64,
    /// Median days to answer, minus last year's.
    #[serde(default)]
    pub answer_median_change: Option<f64>,
    /// Share late, minus last year's.
    #[serde(default)]
    pub share_late_change: Option<f64>,
}

/// The benchmarking of `year` (against `year - 1` for trends), from the registered
/// `request_facts`, which must cover both years.
pub async fn benchmark(ctx: &SessionContext, year: i32) -> Result<Vec<Benchmark>> {
    rows(ctx, sql::BENCHMARK, year).await
}

/// Runs `query` with the year bound and reads its rows into `T` by column name.
async fn rows<T: serde::de::DeserializeOwned>(
    ctx: &SessionContext,
    query: &str,
    year: i32,
) -> Result<Vec<T>> {
    let df = ctx.sql(query).await?.with_param_values(vec![ScalarValue::Int64(Some(i64::from(year)))])?;
    let batches = df.collect().await?;
    let mut json = Vec::new();
    {
        let mut w = arrow::json::ArrayWriter::new(&mut json);
        for b in &batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_slice(&json)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_follow_the_bands_of_rules_md_at_their_edges() {
        use Colour::*;
        // IND-1 and IND-3: ≥ 80 green, 60-79 yellow, < 60 red.
        for ind in [0, 2] {
            assert_eq!(colour(ind, 80.0), Green);
            assert_eq!(colour(ind, 79.99), Yellow);
            assert_eq!(colour(ind, 60.0), Yellow);
            assert_eq!(colour(ind, 59.99), Red);
            assert_eq!(colour(ind, 100.0), Green);
        }
        // IND-2: < 16 green, 16-25 yellow, > 25 red.
        assert_eq!(colour(1, 15.99), Green);
        assert_eq!(colour(1, 16.0), Yellow);
        assert_eq!(colour(1, 25.0), Yellow);
        assert_eq!(colour(1, 25.01), Red);
        // IND-4 and IND-5: < 5 green, 5-14 yellow, ≥ 15 red.
        for ind in [3, 4] {
            assert_eq!(colour(ind, 4.99), Green);
            assert_eq!(colour(ind, 5.0), Yellow);
            assert_eq!(colour(ind, 14.99), Yellow);
            assert_eq!(colour(ind, 15.0), Red);
            assert_eq!(colour(ind, 0.0), Green);
        }
    }

    #[test]
    fn overall_rating_bands() {
        assert_eq!(rating(5), "good");
        assert_eq!(rating(2), "good");
        assert_eq!(rating(1), "medium");
        assert_eq!(rating(-1), "medium");
        assert_eq!(rating(-2), "poor");
        assert_eq!(rating(-5), "poor");
    }
}
