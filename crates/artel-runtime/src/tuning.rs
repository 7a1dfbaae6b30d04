//! Per-task settings changed while the worker runs (Celery's `rate_limit` and
//! `time_limit` control commands): in this worker they replace what the task declares,
//! from the next run on, until the worker stops. A message's own limits still win.
//!
//! It also keeps each task's options as the worker runs them, built once per task and
//! change and shared by its runs (a running task holds a pointer, not its own copy).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artel_core::TaskOptions;

use crate::rate::parse_rate;

/// The settings changed so far, and the options they make, by task name.
#[derive(Debug, Default)]
pub(crate) struct Tuning {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    by_task: HashMap<String, Tuned>,
    /// Each task's options with its changes, built at its first run after a change.
    effective: HashMap<String, Arc<TaskOptions>>,
}

#[derive(Debug, Clone, Default)]
struct Tuned {
    /// `Some(None)`: the task's rate limit is off.
    rate_limit: Option<Option<String>>,
    /// `(soft, hard)`, either off.
    time_limits: Option<(Option<Duration>, Option<Duration>)>,
}

impl Tuning {
    /// `task`'s options as this worker runs it: what `declared` builds (called once per
    /// task and change; `task` must be a registered one, which bounds what is kept) with
    /// this worker's changes.
    pub(crate) fn options(&self, task: &str, declared: impl FnOnce() -> TaskOptions) -> Arc<TaskOptions> {
        let mut state = artel_core::lock(&self.state);
        if let Some(options) = state.effective.get(task) {
            return options.clone();
        }
        let mut options = declared();
        if let Some(tuned) = state.by_task.get(task) {
            if let Some(rate) = &tuned.rate_limit {
                options.rate_limit.clone_from(rate);
            }
            if let Some((soft, hard)) = tuned.time_limits {
                (options.soft_time_limit, options.time_limit) = (soft, hard);
            }
        }
        let options = Arc::new(options);
        state.effective.insert(task.to_owned(), options.clone());
        options
    }

    /// Sets `task`'s rate limit: Celery's `N/s`, `N/m`, `N/h` or a bare `N` (per second);
    /// `0` or nothing turns it off. What is wrong with `rate`, if anything.
    pub(crate) fn set_rate_limit(&self, task: &str, rate: Option<&str>) -> Result<(), String> {
        let rate = rate.map(str::trim).filter(|rate| !rate.is_empty() && *rate != "0");
        let rate = match rate {
            Some(rate) if rate.parse::<u32>().is_ok() => Some(format!("{rate}/s")),
            other => other.map(str::to_owned),
        };
        if let Some(rate) = &rate {
            parse_rate(rate)?;
        }
        self.tuned(task, |tuned| tuned.rate_limit = Some(rate));
        Ok(())
    }

    /// Sets `task`'s soft and hard time limits in seconds (either off with `None`).
    pub(crate) fn set_time_limits(&self, task: &str, soft: Option<f64>, hard: Option<f64>) -> Result<(), String> {
        let secs = |what: &str, s: Option<f64>| {
            s.map(|s| Duration::try_from_secs_f64(s).map_err(|_| format!("{what} time limit {s} is not seconds >= 0")))
                .transpose()
        };
        let limits = (secs("soft", soft)?, secs("hard", hard)?);
        self.tuned(task, |tuned| tuned.time_limits = Some(limits));
        Ok(())
    }

    fn tuned(&self, task: &str, change: impl FnOnce(&mut Tuned)) {
        let mut state = artel_core::lock(&self.state);
        change(state.by_task.entry(task.to_owned()).or_default());
        state.effective.remove(task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuned(tuning: &Tuning, declared: TaskOptions) -> TaskOptions {
        TaskOptions::clone(&tuning.options("t", || declared))
    }

    #[test]
    fn a_changed_rate_limit_replaces_the_declared_one_until_turned_off() {
        let tuning = Tuning::default();
        let declared = TaskOptions { rate_limit: Some("100/s".into()), ..TaskOptions::default() };
        assert_eq!(tuned(&tuning, declared.clone()).rate_limit.as_deref(), Some("100/s"), "nothing changed yet");
        assert_eq!(tuning.set_rate_limit("t", Some("10/m")), Ok(()));
        assert_eq!(tuned(&tuning, declared.clone()).rate_limit.as_deref(), Some("10/m"));
        assert_eq!(tuning.set_rate_limit("t", Some("5")), Ok(()), "a bare number is per second");
        assert_eq!(tuned(&tuning, declared.clone()).rate_limit.as_deref(), Some("5/s"));
        assert_eq!(tuning.set_rate_limit("t", Some("0")), Ok(()));
        assert_eq!(tuned(&tuning, declared.clone()).rate_limit, None, "off, though the task declares one");
        assert!(tuning.set_rate_limit("t", Some("fast")).is_err_and(|e| e.contains("N/s")));
        assert_eq!(tuned(&tuning, declared).rate_limit, None, "a refused rate changes nothing");
    }

    #[test]
    fn a_tasks_options_are_built_once_per_change_and_shared_by_its_runs() {
        let tuning = Tuning::default();
        let built = std::cell::Cell::new(0);
        let declared = || {
            built.set(built.get() + 1);
            TaskOptions { rate_limit: Some("100/s".into()), ..TaskOptions::default() }
        };
        let first = tuning.options("t", declared);
        let second = tuning.options("t", declared);
        assert!(Arc::ptr_eq(&first, &second), "two runs share one copy");
        assert_eq!(built.get(), 1);
        assert_eq!(tuning.set_rate_limit("t", Some("1/s")), Ok(()));
        assert_eq!(tuning.options("t", declared).rate_limit.as_deref(), Some("1/s"), "a change is seen at once");
        assert_eq!(built.get(), 2);
        assert_eq!(first.rate_limit.as_deref(), Some("100/s"), "a run keeps the options it started with");
    }

    #[test]
    fn changed_time_limits_replace_both_declared_ones() {
        let tuning = Tuning::default();
        let declared = TaskOptions { time_limit: Some(Duration::from_secs(60)), ..TaskOptions::default() };
        assert_eq!(tuning.set_time_limits("t", Some(1.5), None), Ok(()));
        let options = tuned(&tuning, declared);
        assert_eq!((options.soft_time_limit, options.time_limit), (Some(Duration::from_millis(1500)), None));
        assert!(tuning.set_time_limits("t", Some(-1.0), None).is_err());
        assert!(tuning.set_time_limits("t", None, Some(f64::NAN)).is_err());
        let other = tuned(&tuning, TaskOptions::default());
        assert_eq!(other.soft_time_limit, Some(Duration::from_millis(1500)), "the refused change left the last");
    }
}
