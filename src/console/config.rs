//! Personal settings: `$XDG_CONFIG_HOME/tcluster/config.toml` (or `--config PATH`).
//!
//! ```toml
//! theme = "projector"      # "default", "projector" (high contrast, bold) or "mono"
//! confirm = false          # ask before kill, restart and partition (true by default)
//! log_history = 100000     # log lines kept in memory (all of them are in STATE_DIR/logs)
//!
//! [keys]                   # rebind an action to another key
//! kill = "K"
//! ```
//!
//! `NO_COLOR` (set and not empty) turns colours off whatever the theme says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The colour scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// Colours for a screen.
    #[default]
    Default,
    /// High contrast and bold, for a projector in a lit room.
    Projector,
    /// No colours at all (also what `NO_COLOR` gives).
    Mono,
}

/// Personal settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The colour scheme.
    pub theme: Theme,
    /// Ask before destructive actions.
    pub confirm: bool,
    /// Log lines kept in memory (default 100,000: the console stays small on a cluster that runs
    /// for days; every line is also in the nodes' log files).
    pub log_history: usize,
    /// Rebound keys: action name → key (`"K"`, `"ctrl-k"`, `"f5"`).
    pub keys: BTreeMap<String, String>,
    /// Where to write the frame times when the console quits (`--frame-stats`, not a setting
    /// of the file).
    #[serde(skip)]
    pub frame_stats: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            theme: Theme::Default,
            confirm: true,
            log_history: 100_000,
            keys: BTreeMap::new(),
            frame_stats: None,
        }
    }
}

/// Settings that cannot be used, and where they are.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid settings.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where in it.
        reason: SettingsError,
    },
}

/// Text that is not valid settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Not TOML, or an unknown or mistyped setting (toml says which, and where).
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// A setting out of range.
    #[error("log_history must be at least 1")]
    LogHistory,
}

impl Config {
    /// Reads the settings: from `path` if given (it must exist), else from the default place
    /// (which may be missing). `NO_COLOR` is applied last.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, required) = match path {
            Some(p) => (Some(p.to_path_buf()), true),
            None => (default_path(), false),
        };
        let mut config = match path {
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(text) => Config::parse(&text).map_err(|reason| ConfigError::Invalid {
                    path: path.clone(),
                    reason,
                })?,
                Err(source) if required || source.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ConfigError::Read { path, source });
                }
                Err(_) => Config::default(),
            },
            None => Config::default(),
        };
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            config.theme = Theme::Mono;
        }
        Ok(config)
    }

    /// Parses settings from TOML text.
    pub fn parse(text: &str) -> Result<Config, SettingsError> {
        let config: Config = toml::from_str(text)?;
        if config.log_history == 0 {
            return Err(SettingsError::LogHistory);
        }
        Ok(config)
    }
}

fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("tcluster/config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_bad_ones_say_where() {
        let c = Config::parse("theme = \"projector\"\nconfirm = false\n[keys]\nkill = \"K\"\n")
            .unwrap();
        assert_eq!(
            (c.theme, c.confirm, c.log_history),
            (Theme::Projector, false, 100_000)
        );
        assert_eq!(c.keys["kill"], "K");
        let said = |text: &str| Config::parse(text).unwrap_err().to_string();
        assert!(said("theme = \"neon\"").contains("neon"));
        assert!(said("colour = 1").contains("colour"));
        assert!(Config::parse("log_history = 0").is_err());
        assert!(Config::load(Some(Path::new("/nonexistent/tcluster.toml"))).is_err());
    }
}
