//! Progress bars on stderr (shown only when stderr is a terminal).

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytesize::ByteSize;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use spillframe_engine::{JobHandle, Query, Session};

/// Delay before a bar appears, so that quick queries print nothing extra.
const SHOW_AFTER: Duration = Duration::from_millis(750);
const TICK: Duration = Duration::from_millis(150);

/// A bar that follows a running query from a background thread.
pub struct ProgressReporter {
    /// Dropped to stop the thread: it wakes at once, not at its next tick.
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl ProgressReporter {
    /// Follows `query` (rows read out of the inputs' rows, memory in use, spill on disk).
    pub fn follow(query: Arc<Query>, session: Session, label: &str) -> Self {
        Self::watch(session, label, "rows read", move || {
            let p = query.progress();
            (p.rows_read, p.rows_total)
        })
    }

    /// Follows a job (partitions, batches, items or rows done out of the total).
    pub fn follow_job<T: Send + 'static>(job: &JobHandle<T>, label: &str) -> Self {
        let watched = job.clone();
        let unit = job.progress().unit.to_string();
        Self::watch(job.session().clone(), label, &unit, move || {
            let p = watched.progress();
            (p.done, p.total)
        })
    }

    /// Draws `probe`'s (done, total) in `unit`s with the session's memory and spill use.
    fn watch(
        session: Session,
        label: &str,
        unit: &str,
        probe: impl Fn() -> (u64, Option<u64>) + Send + 'static,
    ) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let label = label.to_string();
        let unit = unit.to_string();
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            let mut bar: Option<ProgressBar> = None;
            // Every tick until the reporter is finished (its sender dropped); a finished
            // query does not wait for the tick (it would add up to 150 ms to every query).
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                if start.elapsed() < SHOW_AFTER {
                    continue;
                }
                let (done, total) = probe();
                let b = bar.get_or_insert_with(|| new_bar(total, &label, &unit));
                if let Some(total) = total {
                    b.set_length(total);
                }
                b.set_position(done);
                b.set_message(format!(
                    "mem {} · spill {}",
                    ByteSize(session.governor().reserved()),
                    ByteSize(dir_bytes(&session))
                ));
            }
            if let Some(b) = bar {
                b.finish_and_clear();
            }
        });
        ProgressReporter {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Removes the bar.
    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn dir_bytes(session: &Session) -> u64 {
    session
        .spill_files()
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

fn new_bar(total: Option<u64>, label: &str, unit: &str) -> ProgressBar {
    let bar = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = if total.is_some() {
        format!(
            "{{prefix}} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} {unit} · {{msg}}"
        )
    } else {
        format!("{{prefix}} [{{elapsed_precise}}] {{spinner}} {{human_pos}} {unit} · {{msg}}")
    };
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.set_prefix(label.to_string());
    bar
}

/// A bar for a known amount of work (used by data generation).
pub fn count_bar(total: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(label.to_string());
    bar
}
