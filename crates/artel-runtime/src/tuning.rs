//! Per-task settings changed while the worker runs (Celery's `rate_limit` and
//! `time_limit` control commands): in this worker they replace what the task declares,
//! from the next run on, until the worker stops. A message's own limits still win.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use artel_core::TaskOptions;

use crate::rate::parse_rate;

/// The settings changed so far, by task name.
#[derive(Debug, Default)]
pub(crate) struct Tuning {
    by_task: Mutex<HashMap<String, Tuned>>,
}

#[derive(Debug, Clone, Default)]
struct Tuned {
    /// `Some(None)`: the task's rate limit is off.
    rate_limit: Option<Option<String>>,
    /// `(soft, hard)`, either off.
    time_limits: Option<(Option<Duration>, Option<Duration>)>,
}

impl Tuning {
    /// `options` (what `task` declares) with this worker's changes.
    pub(crate) fn apply(&self, task: &str, options: &mut TaskOptions) {
        let by_task = self.by_task.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tuned) = by_task.get(task) else { return };
        if let Some(rate) = &tuned.rate_limit {
            options.rate_limit.clone_from(rate);
        }
        if let Some((soft, hard)) = tuned.time_limits {
            (options.soft_time_limit, options.time_limit) = (soft, hard);
        }
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
        change(self.by_task.lock().unwrap_or_else(|e| e.into_inner()).entry(task.to_owned()).or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuned(tuning: &Tuning, declared: TaskOptions) -> TaskOptions {
        let mut options = declared;
        tuning.apply("t", &mut options);
        options
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
