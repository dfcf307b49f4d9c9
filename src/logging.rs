//! Logs through `tracing`: readable lines on a terminal, or JSON lines for a launcher to
//! collect. The level comes from the topology's `LOG_LEVEL` unless `RUST_LOG` says otherwise.
//! Logs always go to stderr; stdout is kept for results and `READY` lines.

use tracing_subscriber::EnvFilter;

use crate::topology::LogLevel;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per event.
    Json,
}

/// Installs the global logger. Calling it twice is harmless (the second call does nothing).
pub fn init(level: LogLevel, format: LogFormat) {
    let level = match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,tcluster={level}")));
    let _ = match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(use_colour())
            .try_init(),
        LogFormat::Json => {
            use tracing_subscriber::util::SubscriberInitExt;
            json_lines(filter, std::io::stderr)
                .try_init()
                .map_err(|e| e.into())
        }
    };
}

/// The JSON lines a node writes for its launcher, into `writer`: one object per event with its
/// level, message and fields, and the node's span (`"span":{"node":…}`), which names the node
/// for whoever gathers the lines of many. Nothing the launcher would throw away: no time (it
/// stamps each line when it arrives), no target, no list of spans — a line costs half as much
/// to read.
pub fn json_lines<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .finish()
}

/// JSON lines kept in memory rather than written out: what a test or a benchmark reads back
/// of what a node logged. A clone writes into the same lines.
#[derive(Clone, Default)]
pub struct InMemory(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl InMemory {
    /// Everything written so far, taken out.
    pub fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut bytes| std::mem::take(&mut *bytes))
            .unwrap_or_default()
    }
}

impl std::io::Write for InMemory {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut kept) = self.0.lock() {
            kept.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn use_colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// Installs the global logger writing to `path` (the console owns the terminal, so nothing may
/// be printed on it). Does nothing if the file cannot be opened or a logger is installed.
pub fn init_to_file(path: &std::path::Path) {
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    else {
        return;
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,tcluster=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}
