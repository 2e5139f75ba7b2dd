//! Long work's progress on a terminal: the step under way, its count out of its total (a bar)
//! or alone (a spinner), the rate and the time it has taken, redrawn ten times a second from
//! a [`Progress`] the work adds to. Nothing at all when standard error is not a terminal or
//! `--quiet` was given: a pipe or a log file gets the final summary only.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use custos_engine::Progress;
use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// A progress display; dropping it clears it (before the command prints its summary).
pub struct Shown {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Shows `progress` on standard error until the returned value is dropped, if standard error
/// is a terminal and `quiet` is false.
pub fn show(progress: &Progress, quiet: bool) -> Shown {
    let stop = Arc::new(AtomicBool::new(false));
    if quiet || !std::io::stderr().is_terminal() {
        return Shown { stop, thread: None };
    }
    let (progress, stopped) = (progress.clone(), Arc::clone(&stop));
    let thread =
        std::thread::Builder::new().name("progress".into()).spawn(move || draw(&progress, &stopped)).ok();
    Shown { stop, thread }
}

fn draw(progress: &Progress, stop: &AtomicBool) {
    // Drawn from the first step on: nothing before the work says what it does.
    let mut bar: Option<ProgressBar> = None;
    let mut number = 0;
    while !stop.load(Ordering::Relaxed) {
        let (step, done) = progress.now();
        if step.number != number {
            number = step.number;
            let b =
                bar.get_or_insert_with(|| ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()));
            b.reset();
            b.set_style(style(step.unit, step.total.is_some()));
            match step.total {
                Some(total) => b.set_length(total),
                None => b.unset_length(),
            }
            b.set_message(step.name);
        }
        if let Some(b) = &bar {
            b.set_position(done);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

/// A bar when the total is known, else a spinner; counts only for a step that counts.
fn template(unit: &str, total: bool) -> String {
    match (unit.is_empty(), total) {
        (true, _) => "{spinner} {msg} … {elapsed}".to_owned(),
        (false, true) => format!(
            "{{spinner}} {{msg}} [{{bar:20}}] {{human_pos}}/{{human_len}} {unit}, {{rate}}/s, {{elapsed}}, {{eta}} to go"
        ),
        (false, false) => format!("{{spinner}} {{msg}}: {{human_pos}} {unit}, {{rate}}/s, {{elapsed}}"),
    }
}

fn style(unit: &str, total: bool) -> ProgressStyle {
    ProgressStyle::with_template(&template(unit, total))
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}", HumanCount(state.per_sec() as u64));
        })
        .progress_chars("=> ")
}

impl Drop for Shown {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_is_one_indicatif_reads() {
        for (unit, total) in [("", false), ("", true), ("rows", false), ("events", true)] {
            let template = template(unit, total);
            assert!(ProgressStyle::with_template(&template).is_ok(), "{template}");
        }
    }
}
