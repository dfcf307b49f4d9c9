//! Node logs: captured from every node, kept in memory for the console, written to files.
//!
//! Each node's stdout and stderr are read by a task of their own that never waits on anyone:
//! lines go into a bounded queue, and when the queue is full the line is dropped and counted,
//! so a slow consumer can never fill a pipe and freeze a node that is writing its log. One
//! task drains the queue into `logs/<node>.log` under the run's state directory and hands each
//! line on into the feed (the console keeps its own ring of the latest lines).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::io::Write;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use crate::protocol::frame::line_codec;

/// How bad a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Detail.
    Trace,
    /// Debugging.
    Debug,
    /// Normal.
    Info,
    /// A problem.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    fn parse(text: &str) -> Option<Level> {
        [
            ("INFO", Level::Info),
            ("DEBUG", Level::Debug),
            ("WARN", Level::Warn),
            ("ERROR", Level::Error),
            ("TRACE", Level::Trace),
            ("WARNING", Level::Warn),
        ]
        .into_iter()
        .find(|(word, _)| text.eq_ignore_ascii_case(word))
        .map(|(_, level)| level)
    }

    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// One line of a node's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// Milliseconds since the run began.
    pub at_ms: u64,
    pub node: Arc<str>,
    /// Its level (outside programs' lines are `INFO`, or `WARN` on stderr when unparsed).
    pub level: Level,
    pub text: String,
}

impl LogLine {
    /// Reads a line as a node wrote it: a tcluster JSON log line is unpacked into its level
    /// and message (plus fields); anything else is kept as it is.
    pub fn parse(at_ms: u64, node: Arc<str>, stderr: bool, raw: &str) -> LogLine {
        // Read in one pass, values borrowed where nothing is escaped: the line's text is the
        // only thing allocated.
        let line = raw
            .starts_with('{')
            .then(|| serde_json::from_str::<JsonLine>(raw).ok())
            .flatten();
        if let Some(JsonLine {
            level: Some(level),
            text,
        }) = line
        {
            return LogLine {
                at_ms,
                node,
                level,
                text,
            };
        }
        let level = if stderr { Level::Warn } else { Level::Info };
        LogLine {
            at_ms,
            node,
            level,
            text: raw.to_string(),
        }
    }
}

/// A JSON value as text: a string's contents (unescaped), anything else as written.
fn text_of(value: &serde_json::value::RawValue) -> std::borrow::Cow<'_, str> {
    let raw = value.get();
    // Anything but a string (a number, `true`, an object) is shown as written.
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return std::borrow::Cow::Borrowed(raw);
    };
    // Most strings have nothing escaped: their text is what is between the quotes.
    if !inner.as_bytes().contains(&b'\\') {
        return std::borrow::Cow::Borrowed(inner);
    }
    match serde_json::from_str::<String>(raw) {
        Ok(text) => std::borrow::Cow::Owned(text),
        Err(_) => std::borrow::Cow::Borrowed(raw),
    }
}

/// A JSON log line as tracing writes it, read into its level and its text: the message, then
/// ` key=value` for each other field in order (the time, target and spans are left out).
struct JsonLine {
    level: Option<Level>,
    text: String,
}

/// Fields a line's text leaves out.
const NOT_SHOWN: [&str; 7] = [
    "timestamp",
    "target",
    "span",
    "spans",
    "filename",
    "line_number",
    "threadId",
];

impl<'de> serde::Deserialize<'de> for JsonLine {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit(usize);
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = JsonLine;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut line = JsonLine {
                    level: None,
                    text: String::with_capacity(self.0),
                };
                while let Some(key) = map.next_key::<&'de str>()? {
                    let value: &'de serde_json::value::RawValue = map.next_value()?;
                    match key {
                        "level" => line.level = Level::parse(&text_of(value)),
                        // The message leads, wherever it was written.
                        "message" => line.text.insert_str(0, &text_of(value)),
                        _ if NOT_SHOWN.contains(&key) => {}
                        _ => {
                            line.text.push(' ');
                            line.text.push_str(key);
                            line.text.push('=');
                            line.text.push_str(&text_of(value));
                        }
                    }
                }
                Ok(line)
            }
        }
        deserializer.deserialize_map(Visit(64))
    }
}

/// Where captured lines go: a bounded queue in front of the file writer.
#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::Sender<LogLine>,
    /// Lines dropped because the queue was full.
    pub dropped: Arc<AtomicU64>,
    started: std::time::Instant,
    /// Each node's last few lines, kept at once (the file is written a moment later), so that
    /// a node that dies at start can be explained with what it said.
    recent: Arc<std::sync::Mutex<std::collections::HashMap<Arc<str>, Recent>>>,
}

/// A node's last lines: when (ms), how loud, what (formatted only when asked for).
type Recent = std::collections::VecDeque<(u64, Level, String)>;

/// Lines kept per node for [`LogSink::recent`].
const RECENT_LINES: usize = 5;

/// Lines queued between the capture tasks and the writer before lines are dropped.
const SINK_QUEUE: usize = 65_536;

impl LogSink {
    /// Starts the writer: lines go to `dir/<node>.log` and to `updates`.
    pub fn start(
        dir: PathBuf,
        updates: super::feed::News<LogLine>,
        started: std::time::Instant,
    ) -> LogSink {
        let (tx, rx) = mpsc::channel(SINK_QUEUE);
        tokio::spawn(write_logs(dir, rx, updates));
        LogSink {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            started,
            recent: Arc::default(),
        }
    }

    /// Node `name`'s last few lines, as they appear in its log file.
    pub fn recent(&self, name: &str) -> Vec<String> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent
            .get(name)
            .map(|lines| {
                lines
                    .iter()
                    .map(|(at_ms, level, text)| {
                        format!(
                            "{:>9.3} {:<5} {text}",
                            *at_ms as f64 / 1000.0,
                            level.as_str()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Milliseconds since the run began.
    pub fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Queues a line without waiting; a full queue drops it (counted).
    pub fn offer(&self, line: LogLine) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            let lines = recent.entry(line.node.clone()).or_default();
            if lines.len() == RECENT_LINES {
                lines.pop_front();
            }
            lines.push_back((line.at_ms, line.level, line.text.clone()));
        }
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reads `stream` line by line into the sink until it ends. `on_line` sees each raw line
    /// first and may claim it (the `READY` line, say) by returning true.
    pub async fn capture<R: AsyncRead + Unpin>(
        self,
        node: Arc<str>,
        stderr: bool,
        stream: R,
        mut on_line: impl FnMut(&str) -> bool,
    ) {
        let mut lines = FramedRead::new(stream, line_codec(64 * 1024));
        while let Some(line) = lines.next().await {
            let line = match line {
                Ok(line) => line,
                // An overlong line is skipped (the codec resynchronises at the next newline).
                Err(tokio_util::codec::AnyDelimiterCodecError::MaxChunkLengthExceeded) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(_) => break,
            };
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches('\r');
            if on_line(text) {
                continue;
            }
            self.offer(LogLine::parse(self.now(), node.clone(), stderr, text));
        }
    }
}

async fn write_logs(
    dir: PathBuf,
    mut rx: mpsc::Receiver<LogLine>,
    updates: super::feed::News<LogLine>,
) {
    // Plain files, written by this task: a batch is one write per node's file, where going
    // through the runtime's file threads would cost a hand-over to another thread per batch.
    let _ = std::fs::create_dir_all(&dir);
    let mut files: HashMap<Arc<str>, std::io::BufWriter<std::fs::File>> = HashMap::new();
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 1024).await > 0 {
        for line in batch.drain(..) {
            if !files.contains_key(&line.node)
                && let Some(file) = open_log(&dir, &line.node)
            {
                files.insert(line.node.clone(), std::io::BufWriter::new(file));
            }
            if let Some(file) = files.get_mut(&line.node) {
                let _ = writeln!(
                    file,
                    "{:>9.3} {:<5} {}",
                    line.at_ms as f64 / 1000.0,
                    line.level.as_str(),
                    line.text
                );
            }
            updates.send(line);
        }
        for file in files.values_mut() {
            let _ = file.flush();
        }
    }
    for file in files.values_mut() {
        let _ = file.flush();
    }
}

fn open_log(dir: &Path, node: &str) -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{node}.log")))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_unpacked_and_others_kept() {
        let node: Arc<str> = Arc::from("w");
        let json =
            r#"{"timestamp":"t","level":"WARN","message":"job failed","job":"JOB-1","target":"x"}"#;
        let line = LogLine::parse(5, node.clone(), true, json);
        assert_eq!(
            (line.level, line.text.as_str()),
            (Level::Warn, "job failed job=JOB-1")
        );
        let line = LogLine::parse(5, node, true, "Traceback (most recent call last):");
        assert_eq!(line.level, Level::Warn);
        assert_eq!(line.text, "Traceback (most recent call last):");
    }

    #[tokio::test]
    async fn a_full_queue_drops_lines_instead_of_blocking_the_reader() {
        let (tx, _rx) = mpsc::channel(2);
        let sink = LogSink {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            started: std::time::Instant::now(),
            recent: Arc::default(),
        };
        let text: String = (0..10).map(|i| format!("line {i}\n")).collect();
        // Nobody drains the queue: capture still reads to the end.
        sink.clone()
            .capture(Arc::from("n"), false, text.as_bytes(), |_| false)
            .await;
        assert_eq!(sink.dropped.load(Ordering::Relaxed), 8);
        // The last lines are kept for explaining an exit, dropped from the queue or not.
        let recent = sink.recent("n");
        assert_eq!(recent.len(), 5);
        assert!(recent[4].ends_with("line 9"), "{recent:?}");
    }
}
