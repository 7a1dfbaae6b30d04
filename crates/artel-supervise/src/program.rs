//! [`Program`]: what runs in a supervised slot, and the TOML file that lists programs.
//!
//! ```toml
//! grace = "10s"                        # SIGTERM to SIGKILL; optional
//!
//! [[service]]
//! name = "worker"
//! command = ["artel", "--broker", "sqlite://artel.db", "worker", "-c", "8"]
//! copies = 2                           # optional, 1 by default
//! env = { RUST_LOG = "info" }          # optional
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// One named program, run in `copies` slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Unique name; output lines are prefixed with it and the copy number.
    pub name: String,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// How many run at once.
    pub copies: usize,
}

impl Program {
    /// Whether a copy of `self` runs the same process as one of `other` (the copy count
    /// aside): a reload leaves such copies running.
    pub fn runs_as(&self, other: &Program) -> bool {
        (&self.name, &self.command, &self.env) == (&other.name, &other.command, &other.env)
    }
}

/// A supervisor's file: its programs and the grace period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The programs, in file order.
    pub programs: Vec<Program>,
    /// How long a program gets between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    grace: Option<String>,
    #[serde(default)]
    service: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    command: Vec<String>,
    #[serde(default = "one")]
    copies: usize,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

fn one() -> usize {
    1
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text).map_err(|problem| ConfigError::Invalid { path: path.display().to_string(), problem })
    }

    /// Parses a configuration's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let grace = match file.grace.as_deref() {
            None => Duration::from_secs(10),
            Some(text) => parse_duration(text)?,
        };
        let mut programs: Vec<Program> = Vec::new();
        for entry in file.service {
            if entry.name.is_empty() || entry.name.contains(char::is_whitespace) {
                return Err(format!("service name {:?} must be non-empty and without spaces", entry.name));
            }
            if programs.iter().any(|p| p.name == entry.name) {
                return Err(format!("service {:?} is listed twice: names must be unique", entry.name));
            }
            if entry.command.is_empty() {
                return Err(format!(
                    "service {:?} has an empty command: give the program and its arguments",
                    entry.name
                ));
            }
            programs.push(Program { name: entry.name, command: entry.command, env: entry.env, copies: entry.copies });
        }
        if programs.is_empty() {
            return Err("no [[service]] entries: list at least one service to run".to_owned());
        }
        Ok(Self { programs, grace })
    }
}

/// `500ms`, `10s`, `2m`, `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration (e.g. 10s, 500ms, 2m)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        other => Err(format!("unknown duration unit `{other}` in `{text}` (use ms, s, m or h)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_lists_services_with_copies_env_and_grace() {
        let config = Config::parse(
            r#"
            grace = "2s"
            [[service]]
            name = "worker"
            command = ["artel", "worker"]
            copies = 3
            env = { A = "1" }
            [[service]]
            name = "beat"
            command = ["artel", "beat"]
            "#,
        )
        .expect("valid");
        assert_eq!(config.grace, Duration::from_secs(2));
        assert_eq!(config.programs[0].copies, 3);
        assert_eq!(config.programs[0].env.get("A").map(String::as_str), Some("1"));
        assert_eq!((config.programs[1].name.as_str(), config.programs[1].copies), ("beat", 1));
    }

    #[test]
    fn mistakes_are_named() {
        let twice = "[[service]]\nname = \"a\"\ncommand = [\"x\"]\n[[service]]\nname = \"a\"\ncommand = [\"y\"]\n";
        assert!(Config::parse(twice).expect_err("duplicate").contains("listed twice"));
        assert!(
            Config::parse("[[service]]\nname = \"a\"\ncommand = []\n").expect_err("empty").contains("empty command")
        );
        assert!(Config::parse("").expect_err("none").contains("no [[service]]"));
        assert!(Config::parse("grace = \"soon\"\n[[service]]\nname = \"a\"\ncommand = [\"x\"]\n").is_err());
        assert!(
            Config::parse("[[service]]\nname = \"a\"\ncommand = [\"x\"]\ncopy = 2\n").is_err(),
            "typos are refused"
        );
    }
}
