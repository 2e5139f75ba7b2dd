//! The engine, opened once: a store, the built-in policy sets parsed and validated, and the
//! clock. Every operation Custos performs on a store is a method here, so that the binary,
//! the dashboard, the reports, the tests and the benches never build policies or judges by
//! hand, and a rule is applied the same way wherever it is asked.
//!
//! ```text
//! Engine::import(root, inputs, options) ──► a store
//! Engine::open(root) ──► audit ──► record        (need-to-know: the Cedar judge)
//!                    ├─► explain(event)
//!                    ├─► check(options), deadlines(as_of)   (the deadline policies)
//!                    └─► store() for the queries and the read model
//! ```

use std::path::Path;
use std::sync::Arc;

use custos_policies::Policies;

use crate::audit::{Audit, Explanation, Window};
use crate::deadline::{Check, Defaults, Options};
use crate::decision::Judge;
use crate::error::{Error, Result};
use crate::finding::Finding;
use crate::import::{Input, Report};
use crate::manifest::Entry;
use crate::progress::Progress;
use crate::store::Store;

/// Where "now" comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The wall clock, read when asked.
    Wall,
    /// A fixed instant (UTC microseconds): `--as-of`, tests, reproducible runs.
    Fixed(i64),
}

impl Clock {
    /// The instant now, UTC microseconds.
    pub fn now(&self) -> i64 {
        match self {
            Clock::Wall => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            Clock::Fixed(t) => *t,
        }
    }

    /// The instant now as RFC 3339 (UTC, whole seconds), as the manifest records commits.
    pub fn rfc3339(&self) -> String {
        crate::manifest::rfc3339(self.now().div_euclid(1_000_000))
    }
}

/// The policy sets every engine of a process shares: parsed and validated once.
#[derive(Clone)]
struct Rules {
    judge: Arc<Judge>,
    deadlines: Arc<Policies>,
}

impl Rules {
    fn built_in() -> Result<Rules> {
        let policies = |set: std::result::Result<Policies, custos_policies::Error>, name: &str| {
            set.map_err(|e| Error::Internal(format!("the built-in {name} policies: {e}")))
        };
        Ok(Rules {
            judge: Arc::new(Judge::new(Arc::new(policies(Policies::need_to_know(), "need-to-know")?))?),
            deadlines: Arc::new(policies(Policies::deadlines(), "deadline")?),
        })
    }
}

/// A store with the rules Custos applies to it and the clock it answers by.
#[derive(Clone)]
pub struct Engine {
    store: Store,
    rules: Rules,
    clock: Clock,
    progress: Progress,
}

/// How far ahead a deadline is `due_soon`: 30 days.
pub const DUE_SOON: i64 = 30 * 24 * 3_600_000_000;

impl Engine {
    /// Opens the store at `root` with the built-in policy sets and the wall clock.
    pub fn open(root: impl AsRef<Path>) -> Result<Engine> {
        Ok(Engine {
            store: Store::open(root)?,
            rules: Rules::built_in()?,
            clock: Clock::Wall,
            progress: Progress::default(),
        })
    }

    /// Validates `inputs` and imports them into the store at `root` (made if absent) in one
    /// commit, as of the wall clock; see [`crate::import::import_with`].
    pub fn import(root: &Path, inputs: &[Input], options: &crate::import::Options) -> Result<Report> {
        crate::import::import_with(root, inputs, &Clock::Wall.rfc3339(), options)
    }

    /// The same engine answering by `clock`.
    pub fn with_clock(self, clock: Clock) -> Engine {
        Engine { clock, ..self }
    }

    /// The same engine telling `progress` how its long operations (audit, check) go.
    pub fn with_progress(self, progress: Progress) -> Engine {
        Engine { progress, ..self }
    }

    /// The same engine over the store as it is now (after a commit), sharing the parsed
    /// policies.
    pub fn reopen(&self) -> Result<Engine> {
        Ok(Engine { store: Store::open(self.store.root())?, ..self.clone() })
    }

    /// The store, as it was when the engine was opened.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The need-to-know judge.
    pub fn judge(&self) -> &Judge {
        &self.rules.judge
    }

    /// The deadline policy set.
    pub fn deadline_policies(&self) -> &Arc<Policies> {
        &self.rules.deadlines
    }

    /// Judges every granted access event in `window` with the need-to-know policies.
    pub async fn audit(&self, window: Window) -> Result<Audit> {
        let judge = self.judge();
        crate::audit::audit_by(&self.store, judge, window, |scene| judge.decide(scene), &self.progress).await
    }

    /// Commits the findings of `audit` to the store, as run now.
    pub fn record(&self, audit: &Audit) -> Result<Entry> {
        crate::audit::record(&self.store, audit, self.judge(), self.clock.now())
    }

    /// The facts, Cedar request and verdict of the event `event_id` at `at` (its own
    /// instant when `None`).
    pub async fn explain(&self, event_id: &str, at: Option<i64>) -> Result<Explanation> {
        crate::audit::explain(&self.store, self.judge(), event_id, at).await
    }

    /// Checks every deadline as `options` say.
    pub async fn check(&self, options: &Options) -> Result<Check> {
        crate::deadline::check_with(&self.store, Arc::clone(&self.rules.deadlines), options, &self.progress)
            .await
    }

    /// The deadline findings as of `as_of` with the default periods, due-soon within
    /// [`DUE_SOON`]: what the dashboard and the reports show.
    pub async fn deadlines(&self, as_of: i64) -> Result<Vec<Finding>> {
        let options =
            Options { as_of, horizon: DUE_SOON, defaults: Defaults::default(), registers_only: false };
        Ok(self.check(&options).await?.findings.to_vec())
    }

    /// [`deadlines`](Engine::deadlines) of the controllers' registers only (the BRE and DSR
    /// rules): what a breach or request saved in Custos changes, judged in a moment whatever
    /// the size of the access log.
    pub async fn register_deadlines(&self, as_of: i64) -> Result<Vec<Finding>> {
        let options =
            Options { as_of, horizon: DUE_SOON, defaults: Defaults::default(), registers_only: true };
        Ok(self.check(&options).await?.findings.to_vec())
    }
}
