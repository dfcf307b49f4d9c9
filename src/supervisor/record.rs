//! Recording every run: the feed, one JSON line per item, in the state directory.
//!
//! ```text
//! STATE_DIR/recordings/2026-11-26T10-42-07/
//!   000001.jsonl   {"t":0,"feed":"start","of":{…}}      what the run is
//!                  {"t":3,"feed":"update","of":{…}}     then every feed item, as heard
//!   000002.jsonl   {"t":912345,"feed":"start",…}        each segment starts with the run and a
//!                  …                                    fresh copy of the reading and the nodes
//! ```
//!
//! - **Bounded**: a segment closes after [`SEGMENT_BYTES`] of news; past [`SEGMENTS_KEPT`]
//!   segments the oldest is deleted, so a recording never holds more than [`CAP_BYTES`] of news
//!   (plus each segment's opening copy of the reading, as large as the jobs the cluster keeps)
//!   and always holds the newest part of the run. A replay of a recording that lost its
//!   beginning starts at its oldest segment, which opens with the cluster as it was then.
//! - **Killed safely**: lines are written through a buffer handed to the system every
//!   [`FLUSH_EVERY`]; a run killed with SIGKILL leaves everything up to its last fraction of a
//!   second (the system keeps what was handed to it), and at worst one half-written last line,
//!   which a reader skips.
//! - **Never in the way**: a recording that cannot be written (a full disk) says so once in the
//!   log and stops; the run goes on.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::feed::{Feed, RunInfo, Stamped, at_hand};
use super::timeline::{TimelineEvent, TimelineKind};
use super::{Request, Update};
use crate::cluster::event::ClusterEvent;

/// Where a state directory keeps its recordings.
pub const DIR: &str = "recordings";
/// A segment closes past this much news (its opening reading not counted).
pub const SEGMENT_BYTES: u64 = 32 << 20;
/// Segments kept: the oldest goes past this many.
pub const SEGMENTS_KEPT: u64 = 4;
/// The most news a recording holds.
pub const CAP_BYTES: u64 = SEGMENT_BYTES * SEGMENTS_KEPT;
/// How often buffered lines are handed to the system.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// How often the recorder reads the feed, at most.
const PACE: Duration = Duration::from_millis(10);

/// The directory of a new recording in `state_dir`, named by when it began.
pub fn new_dir(state_dir: &Path) -> PathBuf {
    let stamp = jiff::Zoned::now().strftime("%Y-%m-%dT%H-%M-%S").to_string();
    let base = state_dir.join(DIR);
    let mut dir = base.join(&stamp);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = base.join(format!("{stamp}-{n}"));
    }
    dir
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:06}.jsonl"))
}

/// The recorder's writing end.
struct Writer {
    dir: PathBuf,
    info: RunInfo,
    segment: u64,
    file: BufWriter<File>,
    written: u64,
    /// Where a line written by hand is built.
    scratch: Vec<u8>,
    /// [`SEGMENT_BYTES`], but for tests.
    segment_bytes: u64,
}

impl Writer {
    fn open(dir: PathBuf, info: RunInfo) -> std::io::Result<Writer> {
        std::fs::create_dir_all(&dir)?;
        let file = BufWriter::with_capacity(256 << 10, File::create(segment_path(&dir, 1))?);
        let mut writer = Writer {
            dir,
            info,
            segment: 1,
            file,
            written: 0,
            scratch: Vec::new(),
            segment_bytes: SEGMENT_BYTES,
        };
        writer.start(0)?;
        Ok(writer)
    }

    /// The segment's first line: the run.
    fn start(&mut self, at_ms: u64) -> std::io::Result<()> {
        let mut info = self.info.clone();
        info.segment = self.segment - 1;
        self.line(&Stamped {
            at_ms,
            feed: Feed::Start(info),
        })
        .map(drop)
    }

    /// Writes one line; how long it was.
    fn line(&mut self, item: &Stamped) -> std::io::Result<u64> {
        // Most lines are a coordinator's events: written by hand, as serde would.
        if let Feed::Update(Update::Timeline(timeline)) = &item.feed
            && let TimelineKind::Cluster { event } = &timeline.kind
        {
            self.scratch.clear();
            cluster_line(&mut self.scratch, item.at_ms, timeline, event)
                .map_err(std::io::Error::other)?;
            self.file.write_all(&self.scratch)?;
            return Ok(self.scratch.len() as u64);
        }
        // Straight into the file's buffer: no line is built apart and copied.
        let mut counted = Counted {
            inner: &mut self.file,
            bytes: 0,
        };
        feed_line(&mut counted, item)?;
        Ok(counted.bytes)
    }

    /// Writes one item; true when a new segment began (the reading should be sent again). A
    /// segment closes after [`SEGMENT_BYTES`] of news: the reading it opens with does not
    /// count, so however many jobs the cluster keeps, a segment is mostly what happened.
    fn write(&mut self, item: &Stamped) -> std::io::Result<bool> {
        let length = self.line(item)?;
        if !matches!(item.feed, Feed::Update(Update::View(_))) {
            self.written += length;
        }
        if self.written < self.segment_bytes {
            return Ok(false);
        }
        self.file.flush()?;
        self.segment += 1;
        self.file = BufWriter::with_capacity(
            256 << 10,
            File::create(segment_path(&self.dir, self.segment))?,
        );
        self.written = 0;
        if self.segment > SEGMENTS_KEPT {
            let _ = std::fs::remove_file(segment_path(&self.dir, self.segment - SEGMENTS_KEPT));
        }
        self.start(item.at_ms)?;
        Ok(true)
    }
}

/// A coordinator's event as the recording's line (with its newline): byte for byte what serde
/// writes for the item, with the event written by [`crate::protocol::hot_write::event`].
fn cluster_line(
    out: &mut Vec<u8>,
    at_ms: u64,
    timeline: &TimelineEvent,
    event: &ClusterEvent,
) -> serde_json::Result<()> {
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(b"{\"t\":");
    out.extend_from_slice(digits.format(at_ms).as_bytes());
    out.extend_from_slice(
        b",\"feed\":\"update\",\"of\":{\"update\":\"timeline\",\"of\":{\"at_ms\":",
    );
    out.extend_from_slice(digits.format(timeline.at_ms).as_bytes());
    out.extend_from_slice(b",\"source\":");
    serde_json::to_writer(&mut *out, &timeline.source)?;
    out.extend_from_slice(b",\"kind\":\"cluster\",\"event\":");
    crate::protocol::hot_write::event(out, event)?;
    out.extend_from_slice(b"}}}\n");
    Ok(())
}

/// Any item as the recording's line (with its newline): byte for byte what serde writes for
/// it, without serde's flattening of the stamp (which buffers every field of every item): the
/// item alone is `{"feed":…,"of":…}`, and the stamp goes in after its opening brace.
fn feed_line(out: &mut impl Write, item: &Stamped) -> std::io::Result<()> {
    out.write_all(b"{\"t\":")?;
    out.write_all(itoa::Buffer::new().format(item.at_ms).as_bytes())?;
    out.write_all(b",")?;
    let mut rest = AfterFirstByte {
        inner: &mut *out,
        skipped: false,
    };
    serde_json::to_writer(&mut rest, &item.feed).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

/// A writer that drops the first byte written to it.
struct AfterFirstByte<W> {
    inner: W,
    skipped: bool,
}

impl<W: Write> Write for AfterFirstByte<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.skipped && !buf.is_empty() {
            self.skipped = true;
            return Ok(1 + self.inner.write(&buf[1..])?);
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A writer that counts what goes through it.
struct Counted<'a, W> {
    inner: &'a mut W,
    bytes: u64,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(buf)?;
        self.bytes += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Records the feed into `dir` until it closes or `shutdown` (then what is queued is written
/// too). `commands` asks the supervisor for a fresh copy of its reading at each segment's start.
///
/// The recorder runs on a thread of its own: writing a segment's opening copy of the reading
/// (every job the cluster keeps) takes tens of milliseconds under load, and the runtime's
/// threads carry the links' proxies and the supervisor, which must not wait for a disk.
pub(super) fn spawn(
    dir: PathBuf,
    info: RunInfo,
    feed: broadcast::Receiver<Arc<Stamped>>,
    commands: mpsc::WeakSender<Request>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::warn!("cannot record this run in {}: {e}", dir.display());
                return;
            }
        };
        runtime.block_on(record(dir, info, feed, commands, shutdown));
    })
}

/// The recorder's work (see [`spawn`]).
async fn record(
    dir: PathBuf,
    info: RunInfo,
    mut feed: broadcast::Receiver<Arc<Stamped>>,
    commands: mpsc::WeakSender<Request>,
    shutdown: CancellationToken,
) {
    let mut writer = match Writer::open(dir.clone(), info) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("cannot record this run in {}: {e}", dir.display());
            return;
        }
    };
    // The reading asked for at a segment's start, written when it comes back.
    let republish = || {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let commands = commands.upgrade()?;
        commands.try_send(Request::Republish(tx)).ok()?;
        Some(rx)
    };
    let mut reading = republish();
    let mut last_at = 0;
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut lost = 0u64;
    let result: std::io::Result<()> = async {
        'recording: loop {
            tokio::select! {
                view = async { reading.as_mut().expect("guarded").await }, if reading.is_some() => {
                    reading = None;
                    if let Ok(view) = view {
                        let item = Stamped {
                            at_ms: last_at,
                            feed: Feed::Update(Update::View(view)),
                        };
                        if writer.write(&item)? {
                            reading = republish();
                        }
                    }
                }
                item = feed.recv() => {
                    // Everything at hand, then a pause: however busy the run, the recorder
                    // wakes a hundred times a second at most.
                    let mut next = Some(item);
                    while let Some(item) = next.take() {
                        match item {
                            Ok(item) => {
                                last_at = item.at_ms;
                                if writer.write(&item)? {
                                    reading = republish();
                                }
                            }
                            Err(RecvError::Lagged(n)) => lost += n,
                            Err(RecvError::Closed) => break 'recording,
                        }
                        next = at_hand(&mut feed);
                    }
                    tokio::time::sleep(PACE).await;
                }
                _ = flush.tick() => writer.file.flush()?,
                _ = shutdown.cancelled() => {
                    while let Ok(item) = feed.try_recv() {
                        writer.write(&item)?;
                    }
                    break;
                }
            }
        }
        writer.file.flush()
    }
    .await;
    if let Err(e) = result {
        tracing::warn!("the recording in {} stopped: {e}", dir.display());
    }
    if lost > 0 {
        tracing::warn!("the recording missed {lost} feed items (the disk was too slow)");
    }
}

/// A recording read back.
#[derive(Debug)]
pub struct Recording {
    /// Where it was read from.
    pub dir: PathBuf,
    /// The run, as its oldest segment kept describes it.
    pub info: RunInfo,
    /// Every item, oldest first, their times never going back.
    pub items: Vec<Stamped>,
    /// Lines that could not be read (but not a last line cut short by a kill), with where the
    /// first one was and why.
    pub unreadable: Option<(usize, String)>,
}

/// Why a recording cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("no recording in {}: a run records there as it goes (tcluster TOPOLOGY or tcluster run)", .0.display())]
    None(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a tcluster recording: its first line does not describe a run", .0.display())]
    NotARecording(PathBuf),
}

impl Recording {
    /// Reads a recording: a segment file (`000001.jsonl`), a recording's directory, a state
    /// directory (its newest recording; with none, the newest of its earlier runs'), or a state
    /// directory's `recordings/` (its newest).
    pub fn open(path: &Path) -> Result<Recording, RecordingError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RecordingError::Io { path, source }
        };
        if path.is_file() {
            return Self::read(
                path.parent().unwrap_or(Path::new(".")),
                &[path.to_path_buf()],
            );
        }
        let dir = match latest(path).map_err(io(path))? {
            Some(dir) => dir,
            None => path.to_path_buf(),
        };
        let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(io(&dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        segments.sort();
        if segments.is_empty() {
            return Err(RecordingError::None(path.to_path_buf()));
        }
        Self::read(&dir, &segments)
    }

    fn read(dir: &Path, segments: &[PathBuf]) -> Result<Recording, RecordingError> {
        let mut items: Vec<Stamped> = Vec::new();
        let mut unreadable: Option<(usize, String)> = None;
        let mut bad = 0usize;
        for (i, path) in segments.iter().enumerate() {
            let file = File::open(path).map_err(|source| RecordingError::Io {
                path: path.clone(),
                source,
            })?;
            let lines: Vec<String> = BufReader::new(file)
                .split(b'\n')
                .map_while(Result::ok)
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .collect();
            let last_segment = i + 1 == segments.len();
            for (n, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Stamped>(line) {
                    Ok(mut item) => {
                        // Items come from several tasks: a time never goes back.
                        if let Some(last) = items.last() {
                            item.at_ms = item.at_ms.max(last.at_ms);
                        }
                        items.push(item);
                    }
                    // A run killed mid-write leaves its last line short.
                    Err(_) if last_segment && n + 1 == lines.len() => {}
                    Err(e) => {
                        bad += 1;
                        if unreadable.is_none() {
                            unreadable = Some((0, format!("{}:{}: {e}", path.display(), n + 1)));
                        }
                    }
                }
            }
        }
        if let Some((count, _)) = unreadable.as_mut() {
            *count = bad;
        }
        let info = match items.first() {
            Some(Stamped {
                feed: Feed::Start(info),
                ..
            }) => info.clone(),
            _ => {
                return Err(RecordingError::NotARecording(
                    segments.first().cloned().unwrap_or_default(),
                ));
            }
        };
        Ok(Recording {
            dir: dir.to_path_buf(),
            info,
            items,
            unreadable,
        })
    }

    /// When the recording begins and ends (run milliseconds).
    pub fn span(&self) -> (u64, u64) {
        let first = self.items.first().map_or(0, |i| i.at_ms);
        let last = self.items.last().map_or(0, |i| i.at_ms);
        (first, last)
    }
}

/// The newest recording under `path` if it is a state directory (its own `recordings/`, else
/// its earlier runs' in `previous/`); `None` if it has none of either.
fn latest(path: &Path) -> std::io::Result<Option<PathBuf>> {
    let newest_in = |dir: &Path| -> Option<PathBuf> {
        let mut runs: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        runs.sort();
        runs.pop()
    };
    if let Some(run) = newest_in(&path.join(DIR)) {
        return Ok(Some(run));
    }
    // The `recordings/` directory itself.
    if path.file_name().is_some_and(|n| n == DIR) {
        return Ok(newest_in(path));
    }
    let previous = path.join("previous");
    if !previous.is_dir() {
        return Ok(None);
    }
    let mut earlier: Vec<PathBuf> = std::fs::read_dir(&previous)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    earlier.sort();
    Ok(earlier.iter().rev().find_map(|p| newest_in(&p.join(DIR))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(at_ms: u64, feed: Feed) -> Stamped {
        Stamped { at_ms, feed }
    }

    /// `event` from `source`, as the supervisor puts it on the feed.
    fn heard(at_ms: u64, source: &str, event: ClusterEvent) -> Stamped {
        let timeline = TimelineEvent {
            at_ms: at_ms + 1,
            source: source.into(),
            kind: TimelineKind::Cluster { event },
        };
        item(at_ms, Feed::Update(Update::Timeline(Arc::new(timeline))))
    }

    proptest::proptest! {
        #[test]
        fn an_event_line_written_by_hand_is_serdes_line(
            event in crate::protocol::hot::tests::job_event(),
            at_ms in proptest::prelude::any::<u64>(),
            source in ".{0,10}",
        ) {
            let stamped = heard(at_ms, &source, event.clone());
            let mut line = Vec::new();
            let Feed::Update(Update::Timeline(timeline)) = &stamped.feed else { unreachable!() };
            cluster_line(&mut line, at_ms, timeline, &event).unwrap();
            let mut serde = serde_json::to_vec(&stamped).unwrap();
            serde.push(b'\n');
            proptest::prop_assert_eq!(String::from_utf8(line).unwrap(), String::from_utf8(serde).unwrap());
        }
    }

    /// Every other kind of item: the line is serde's, stamp first.
    #[test]
    fn an_item_line_is_serdes_line() {
        use crate::shaper::MessageSeen;
        use crate::supervisor::logs::{Level, LogLine};
        let items = [
            item(
                12,
                Feed::Message(MessageSeen {
                    at_ms: 11,
                    from: "worker-1".into(),
                    to: "coordinator".into(),
                    kind: "result".into(),
                    clock: Some(40),
                    fate: crate::shaper::Fate::Carried,
                    count: 37,
                }),
            ),
            item(
                u64::MAX,
                Feed::Log(LogLine {
                    at_ms: 3,
                    node: "worker-\"2\"".into(),
                    level: Level::Warn,
                    text: "busy: 12 job lines left out\n".into(),
                }),
            ),
            item(0, Feed::Usage(Vec::new())),
            item(5, Feed::Start(RunInfo::default())),
        ];
        for stamped in items {
            let mut line = Vec::new();
            feed_line(&mut line, &stamped).unwrap();
            let mut serde = serde_json::to_vec(&stamped).unwrap();
            serde.push(b'\n');
            assert_eq!(
                String::from_utf8(line).unwrap(),
                String::from_utf8(serde).unwrap()
            );
        }
    }

    #[test]
    fn events_written_by_hand_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::open(dir.path().join("run"), RunInfo::default()).unwrap();
        let events = [
            crate::cluster::event::EventKind::JobAssigned {
                job: crate::protocol::message::JobId(7),
                worker: "worker-\"1\"".into(),
                attempt: 2,
            },
            crate::cluster::event::EventKind::WorkerDead {
                worker: "worker-1".into(),
                reason: "no heartbeat".into(),
            },
        ];
        for (i, kind) in events.iter().enumerate() {
            let event = ClusterEvent {
                at_ms: 3,
                clock: i as u64,
                kind: kind.clone(),
            };
            w.write(&heard(10, "coordinator", event)).unwrap();
        }
        w.file.flush().unwrap();
        let r = Recording::open(&dir.path().join("run")).unwrap();
        assert!(r.unreadable.is_none());
        let read: Vec<_> = r
            .items
            .iter()
            .filter_map(|item| match &item.feed {
                Feed::Update(Update::Timeline(t)) => match &t.kind {
                    TimelineKind::Cluster { event } => Some(event.kind.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert_eq!(read, events);
    }

    #[test]
    fn a_recording_reads_back_and_skips_a_last_line_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let info = RunInfo {
            system: "demo".into(),
            ..RunInfo::default()
        };
        let mut w = Writer::open(dir.path().join("run"), info).unwrap();
        w.write(&item(
            5,
            Feed::Chat(super::super::feed::ChatNews::Up("c".into())),
        ))
        .unwrap();
        w.file.flush().unwrap();
        let path = segment_path(&dir.path().join("run"), 1);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"t\":9,\"feed\":\"ch").unwrap();
        let r = Recording::open(&dir.path().join("run")).unwrap();
        assert_eq!(r.info.system, "demo");
        assert_eq!(r.items.len(), 2);
        assert_eq!(r.span(), (0, 5));
        assert!(r.unreadable.is_none());
    }

    #[test]
    fn a_bad_line_inside_is_counted_with_where_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::open(dir.path().to_path_buf(), RunInfo::default()).unwrap();
        w.file.write_all(b"not json\n").unwrap();
        w.write(&item(
            7,
            Feed::Chat(super::super::feed::ChatNews::Up("c".into())),
        ))
        .unwrap();
        w.file.flush().unwrap();
        let r = Recording::open(dir.path()).unwrap();
        let (count, first) = r.unreadable.unwrap();
        assert_eq!(count, 1);
        assert!(first.contains("000001.jsonl:2"), "{first}");
        assert_eq!(r.items.len(), 2);
    }

    #[test]
    fn what_is_not_a_recording_says_so() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Recording::open(dir.path()),
            Err(RecordingError::None(_))
        ));
        std::fs::write(dir.path().join("x.jsonl"), "{\"t\":1}\n").unwrap();
        let e = Recording::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("not a tcluster recording"), "{e}");
    }

    #[test]
    fn a_segment_closes_on_news_not_on_its_copy_of_the_reading() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::open(dir.path().to_path_buf(), RunInfo::default()).unwrap();
        let view = Update::View(Arc::new(crate::view::ClusterView::new(
            "coordinator",
            1,
            false,
        )));
        let reading = item(1, Feed::Update(view));
        let reading_bytes = serde_json::to_vec(&reading).unwrap().len() as u64;
        w.segment_bytes = reading_bytes;
        // The reading alone, however large, leaves the segment open.
        assert!(!w.write(&reading).unwrap());
        assert!(!w.write(&reading).unwrap());
        assert_eq!(w.segment, 1);
        // News as large closes it.
        let news = item(
            2,
            Feed::Chat(super::super::feed::ChatNews::Refused(
                "x".repeat(reading_bytes as usize),
            )),
        );
        assert!(w.write(&news).unwrap());
        assert_eq!(w.segment, 2);
    }

    #[test]
    fn the_oldest_segment_goes_past_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::open(dir.path().to_path_buf(), RunInfo::default()).unwrap();
        w.segment_bytes = 64 << 10;
        let big = "x".repeat(8 << 10);
        let mut t = 0;
        while w.segment < SEGMENTS_KEPT + 2 {
            t += 1;
            w.write(&item(
                t,
                Feed::Chat(super::super::feed::ChatNews::Refused(big.clone())),
            ))
            .unwrap();
        }
        w.file.flush().unwrap();
        assert!(!segment_path(dir.path(), 1).exists());
        assert!(!segment_path(dir.path(), 2).exists());
        assert!(segment_path(dir.path(), 3).exists());
        let r = Recording::open(dir.path()).unwrap();
        // It begins with the run as the oldest segment kept describes it.
        assert_eq!(r.info.segment, 2);
        assert!(r.span().0 > 0);
    }
}
