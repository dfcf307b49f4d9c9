//! `tcluster replay [RUN]`: the console on a recording, or the screen (`--dump`) or the state
//! (`--json`) at one moment of it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::console::replay::{self, Player};
use crate::supervisor::record::{self, Recording};

/// `tcluster replay` arguments.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// What to replay: a topology (its state directory's latest run), a state directory, a
    /// recording's directory or one of its files. Default: the newest recording of any cluster
    /// in the default state directories.
    #[arg(value_name = "RUN")]
    pub run: Option<PathBuf>,

    /// The moment to open at, print or dump, in run time: `12.5s`, `1m30s`, `1:30`.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,

    /// Print the screen at --at as text (the console as it looked then) instead of opening it.
    #[arg(long, conflicts_with = "json")]
    pub dump: bool,

    /// Print the state at --at as JSON: nodes with the cluster's verdicts, jobs, alarms.
    #[arg(long)]
    pub json: bool,

    /// The screen's size for --dump, WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH", default_value = "160x48", value_parser = parse_size)]
    pub size: (u16, u16),

    /// The state directory, when RUN is a topology whose runs went elsewhere (--state-dir);
    /// without RUN, the newest recording in it.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Personal settings (default: $XDG_CONFIG_HOME/tcluster/config.toml).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

fn parse_size(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{text}` is not a size: write WIDTHxHEIGHT, such as 120x36");
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u16, u16) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if !(20..=1000).contains(&w) || !(5..=500).contains(&h) {
        return Err(format!(
            "`{text}`: a screen is 20 to 1000 columns wide and 5 to 500 rows high"
        ));
    }
    Ok((w, h))
}

/// Runs `tcluster replay`.
pub fn run(args: ReplayArgs) -> ExitCode {
    let Some(recording) = open(&args) else {
        return ExitCode::from(1);
    };
    if let Some((count, first)) = &recording.unreadable {
        eprintln!("warning: {count} lines of the recording could not be read (the first: {first})");
    }
    let config = match crate::console::load_config(args.config.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let bindings = match crate::console::keymap::bindings(&config.keys) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: config: {e}");
            return ExitCode::from(1);
        }
    };
    let (start, end) = recording.span();
    let at = match &args.at {
        None if args.dump || args.json => end,
        None => start,
        Some(text) => match replay::parse_time(text, start) {
            Ok(at) if at > end || at < start => {
                eprintln!(
                    "error: --at {text}: the recording runs from {} to {}",
                    crate::console::draw::scrubber::clock(start),
                    crate::console::draw::scrubber::clock(end)
                );
                return ExitCode::from(1);
            }
            Ok(at) => at,
            Err(e) => {
                eprintln!("error: --at: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let mut player = Player::new(recording, config);
    player.seek(at);
    if args.dump {
        let (w, h) = args.size;
        out!("{}", replay::screen_text(&mut player, &bindings, w, h));
        return ExitCode::SUCCESS;
    }
    if args.json {
        match serde_json::to_string_pretty(&player.state()) {
            Ok(text) => outln!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
        return ExitCode::SUCCESS;
    }
    {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
            eprintln!(
                "error: the replay console needs a terminal; without one, use --dump or --json"
            );
            return ExitCode::from(1);
        }
    }
    match replay::run(player, &bindings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the terminal failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// The recording RUN names, or the newest one; what went wrong is said.
fn open(args: &ReplayArgs) -> Option<Recording> {
    // Without RUN, a state directory given is where to look.
    let run = args.run.clone().or_else(|| args.state_dir.clone());
    let path = match &run {
        Some(path) if path.extension().is_some_and(|x| x == "top") && path.is_file() => {
            let (topology, _) = super::check::load(path)?;
            super::state_dir_of(&topology, args.state_dir.as_deref())
        }
        Some(path) if !path.exists() => {
            eprintln!("error: {}: no such file or directory", path.display());
            return None;
        }
        Some(path) => path.clone(),
        None => match newest() {
            Some(dir) => dir,
            None => {
                eprintln!(
                    "error: no recording found in the default state directories; name one: tcluster replay TOPOLOGY (or a state directory, or a recording)"
                );
                return None;
            }
        },
    };
    Recording::open(&path)
        .map_err(|e| eprintln!("error: {e}"))
        .ok()
}

/// The newest recording in the default state directories (`…/tcluster/<system>/recordings/`).
fn newest() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("tcluster");
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    std::fs::read_dir(base)
        .ok()?
        .filter_map(|e| e.ok())
        .flat_map(|system| {
            std::fs::read_dir(system.path().join(record::DIR))
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok().map(|e| e.path()))
        })
        .filter(|p| p.is_dir())
        .max_by_key(|p| modified(p))
}
