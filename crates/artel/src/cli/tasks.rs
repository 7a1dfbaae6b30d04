//! `artel tasks`: what this binary's workers can run, with each task's parameters and
//! declared options; `exec` and `http` are listed as off unless enabled.

use std::process::ExitCode;

use artel_core::{Registry, TaskOptions};
use serde_json::json;

use super::table::render;

/// The options a task declares, as `name=value` words.
fn declared(options: &TaskOptions) -> Vec<String> {
    let seconds = |d: std::time::Duration| format!("{}s", d.as_secs_f64());
    let mut words = Vec::new();
    if let Some(n) = options.max_retries {
        words.push(format!("max_retries={n}"));
    }
    if options.autoretry == Some(true) {
        words.push("autoretry".to_owned());
    }
    if options.process == Some(true) {
        words.push("process".to_owned());
    }
    if options.reject_on_worker_lost == Some(true) {
        words.push("reject_on_worker_lost".to_owned());
    }
    if let Some(d) = options.retry_backoff {
        words.push(format!("retry_backoff={}", seconds(d)));
    }
    if let Some(d) = options.time_limit {
        words.push(format!("time_limit={}", seconds(d)));
    }
    if let Some(d) = options.soft_time_limit {
        words.push(format!("soft_time_limit={}", seconds(d)));
    }
    if let Some(rate) = &options.rate_limit {
        words.push(format!("rate_limit={rate}"));
    }
    if let Some(rate) = &options.rate_limit_global {
        words.push(format!("rate_limit_global={rate}"));
    }
    if let Some(key) = &options.rate_limit_key {
        words.push(format!("rate_limit_key={key}"));
    }
    if let Some(d) = options.cache_for {
        words.push(format!("cache_for={}", seconds(d)));
    }
    if let Some(lock) = &options.lock {
        words.push(format!("lock={lock}"));
    }
    if let Some(d) = options.unique_for {
        words.push(format!("unique_for={}", seconds(d)));
    }
    if let Some(n) = options.max_deliveries {
        words.push(format!("max_deliveries={n}"));
    }
    if let Some(n) = options.max_running_per_group {
        words.push(format!("max_running_per_group={n}"));
    }
    if let Some(queue) = &options.queue {
        words.push(format!("queue={queue}"));
    }
    words
}

pub(crate) fn list(tasks: &Registry, json: bool) -> anyhow::Result<ExitCode> {
    let mut all = tasks.clone();
    let mut off = Vec::new();
    for (name, why) in crate::builtins::GUARDED {
        if tasks.get(name).is_none() {
            crate::builtins::enable(&mut all, name).map_err(anyhow::Error::msg)?;
            off.push((name, why));
        }
    }
    let mut rows = Vec::new();
    for name in all.names() {
        let Some(handler) = all.get(name) else { continue };
        let mut options = declared(&handler.options());
        if let Some((_, why)) = off.iter().find(|(guarded, _)| *guarded == name) {
            options.push(format!("off ({why}): artel worker --enable {name}"));
        }
        rows.push((name.to_owned(), handler.signature().to_owned(), options));
    }
    if json {
        let listed: Vec<_> =
            rows.iter().map(|(name, sig, opts)| json!({"name": name, "signature": sig, "options": opts})).collect();
        println!("{}", serde_json::to_string_pretty(&listed)?);
    } else {
        let rows: Vec<Vec<String>> = rows.into_iter().map(|(n, s, o)| vec![n, s, o.join(", ")]).collect();
        println!("{}", render(&["task", "signature", "options"], &rows));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn declared_options_include_the_limits_across_workers_and_the_cache() {
        let options = TaskOptions {
            rate_limit_global: Some("50/s".to_owned()),
            rate_limit_key: Some("{customer}".to_owned()),
            cache_for: Some(Duration::from_secs(600)),
            lock: Some("report-{customer}".to_owned()),
            unique_for: Some(Duration::from_secs(60)),
            max_running_per_group: Some(2),
            ..TaskOptions::default()
        };
        assert_eq!(
            declared(&options),
            [
                "rate_limit_global=50/s",
                "rate_limit_key={customer}",
                "cache_for=600s",
                "lock=report-{customer}",
                "unique_for=60s",
                "max_running_per_group=2"
            ]
        );
    }
}
