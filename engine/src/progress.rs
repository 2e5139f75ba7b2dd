//! How far a long piece of work has got: the step under way, what it counts, its total if
//! known, and how many are done. The work adds to the count once per batch (an atomic add);
//! whoever watches (the command line's progress bar) reads it when it likes. Nobody need
//! watch: a [`Progress`] nobody reads costs those adds and nothing else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A handle on one piece of work's progress; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    step: Mutex<Step>,
    done: AtomicU64,
}

/// The step under way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// What it does, in a few words: `importing access_log`.
    pub name: String,
    /// What it counts: `rows`, `events`.
    pub unit: &'static str,
    /// How many there are, if known.
    pub total: Option<u64>,
    /// 1 for the first step, then one more each time: a watcher sees a new step begin even
    /// when it has the name of the last.
    pub number: u64,
}

impl Progress {
    /// Begins a step, counting from 0.
    pub fn step(&self, name: impl Into<String>, unit: &'static str, total: Option<u64>) {
        if let Ok(mut step) = self.0.step.lock() {
            let number = step.number + 1;
            *step = Step { name: name.into(), unit, total, number };
            self.0.done.store(0, Ordering::Relaxed);
        }
    }

    /// Counts `n` more done.
    pub fn add(&self, n: u64) {
        self.0.done.fetch_add(n, Ordering::Relaxed);
    }

    /// The step under way and how many of it are done (read under the step's lock, so never
    /// one step's name with the next one's count).
    pub fn now(&self) -> (Step, u64) {
        match self.0.step.lock() {
            Ok(step) => (step.clone(), self.0.done.load(Ordering::Relaxed)),
            Err(_) => (Step::default(), 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_counts_from_nothing_and_clones_share_the_count() {
        let p = Progress::default();
        assert_eq!(p.now(), (Step::default(), 0));
        let watcher = p.clone();
        p.step("importing cases", "rows", None);
        p.add(3);
        p.add(4);
        let (step, done) = watcher.now();
        assert_eq!(
            (step.name.as_str(), step.unit, step.total, step.number, done),
            ("importing cases", "rows", None, 1, 7)
        );
        p.step("importing cases", "rows", Some(10));
        assert_eq!(watcher.now().0.number, 2);
        assert_eq!(watcher.now().1, 0);
    }
}
