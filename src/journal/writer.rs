//! The journal's own thread: the coordinator hands it each step's events and goes on serving;
//! the thread commits them and says how far it got. Whatever is handed over while one commit is
//! being forced to disk goes into the next one together (a group commit), so under load one
//! fsync covers many clients' jobs, and a message that promises nothing (a `ping`, another
//! client's `status`) never waits for one.
//!
//! Under `sync`, a lone step whose job has already left for its worker ([`Linger::Result`])
//! waits up to one commit's time for the next hand-over before it is written: a quick job's
//! result then shares its submission's fsync instead of queueing behind it, so a lone job pays
//! one fsync instead of two (its `accepted` waits up to that much longer; it is still sent
//! only once the submission is on disk).
//!
//! Under `none` and `periodic` there is no such thread: the loop writes each batch's lines
//! itself (one `write` into the kernel's cache), before any of the batch's replies go out,
//! which costs less than handing them to a thread and being woken when they are written;
//! nothing is held. Under `periodic` a thread of its own forces the file to disk on its timer.
//!
//! ```text
//!  coordinator loop ──(ticket, entries)──▶ journal thread: gather, one transaction, commit
//!        ▲                                                      │
//!        └──────────── durable up to ticket N (watch) ◀─────────┘
//! ```

use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::Journal;
use crate::cluster::event::ClusterEvent;
use crate::role::coordinator::{JournalOp, Output};
use crate::topology::policies::Durability;

/// One thing a step asks of the journal, in order.
#[derive(Debug)]
pub enum Entry {
    /// Append this event.
    Event(std::sync::Arc<ClusterEvent>),
    /// Compact or restart.
    Op(JournalOp),
    /// Forget everything (a master that starts over from its new primary).
    Reset,
}

/// What a step's outputs ask of the journal (events that are not kept are left out). Empty:
/// the step promised nothing that must be written, and its replies need not wait.
pub fn entries_of(outputs: &[Output]) -> Vec<Entry> {
    let mut entries = Vec::new();
    add_entries(outputs, &mut entries);
    entries
}

/// [`entries_of`] added to `entries` (one batch's in one vector); how many were added.
pub fn add_entries(outputs: &[Output], entries: &mut Vec<Entry>) -> usize {
    let before = entries.len();
    for output in outputs {
        match output {
            Output::Event(e) if e.kind.is_durable() => entries.push(Entry::Event(e.clone())),
            Output::Journal(op) => entries.push(Entry::Op(op.clone())),
            Output::Follow { reset: true, .. } => entries.push(Entry::Reset),
            _ => {}
        }
    }
    entries.len() - before
}

/// Whether a hand-over may wait a moment for the next one to share its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linger {
    /// Commit as soon as the thread is free.
    No,
    /// A job of this step has left for its worker: its result may come within a commit's time.
    Result,
}

/// One hand-over: its ticket, its entries, and whether it may wait for the next.
type Work = (u64, Vec<Entry>, Linger);

/// The coordinator's side of the journal: its thread, or (under `none` and `periodic`) the
/// journal itself.
pub struct JournalWriter {
    committer: Committer,
    /// The last ticket handed over.
    next: u64,
    /// The last ticket whose entries are committed (on disk, under `sync` and `group`).
    done: watch::Receiver<u64>,
}

/// Who commits what is handed over.
enum Committer {
    /// The journal's thread (`sync`, `group`): a commit there never holds up the loop, and
    /// what is handed over during one goes into the next.
    Thread {
        work: Option<std_mpsc::Sender<Work>>,
        thread: Option<JoinHandle<()>>,
        /// The thread's moving average of its commits, in nanoseconds (0: none yet, or not
        /// `sync`).
        commit_nanos: std::sync::Arc<std::sync::atomic::AtomicU64>,
    },
    /// The loop itself (`none`, `periodic`): a commit is a `write` into the kernel's cache,
    /// cheaper than handing it to another thread and being woken when it is done. Under
    /// `periodic` a [`Syncer`] forces the file to disk on its timer.
    Inline(Journal, watch::Sender<u64>, Option<Syncer>),
}

/// Under `periodic` with the journal written inline: a thread that forces the journal's file
/// to disk every interval, if anything was written since it last did.
struct Syncer {
    /// The journal's file as it is now (a second descriptor of it; replaced after a
    /// compaction or a reset, which may put a new file in its place).
    file: std::sync::Arc<std::sync::Mutex<Option<std::fs::File>>>,
    /// Written since the last sync.
    dirty: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Dropped to stop the thread.
    stop: Option<std_mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    fn start(journal: &Journal, every: Duration) -> Syncer {
        use std::sync::{Arc, Mutex, atomic::AtomicBool, atomic::Ordering};
        let file = Arc::new(Mutex::new(journal.second_handle()));
        let dirty = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = std_mpsc::channel::<()>();
        let thread = {
            let (file, dirty) = (file.clone(), dirty.clone());
            std::thread::Builder::new()
                .name("journal-sync".into())
                .spawn(move || {
                    while let Err(std_mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every)
                    {
                        if !dirty.swap(false, Ordering::AcqRel) {
                            continue;
                        }
                        let guard = file.lock().unwrap_or_else(|p| p.into_inner());
                        if let Some(Err(e)) = guard.as_ref().map(std::fs::File::sync_data) {
                            tracing::warn!("the journal could not be forced to disk: {e}");
                        }
                    }
                })
                .expect("a thread to force the journal to disk")
        };
        Syncer {
            file,
            dirty,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Notes a write: the next tick forces it to disk. After a compaction or a reset, the
    /// journal's file may be a new one: that is the one synced from now on.
    fn written(&self, journal: &Journal, new_file: bool) {
        if new_file {
            *self.file.lock().unwrap_or_else(|p| p.into_inner()) = journal.second_handle();
        }
        self.dirty.store(true, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for Syncer {
    /// Stops the thread and lets its descriptor go (it shares the file's lock: a journal opened
    /// again right after must not find it still held). What it had not synced yet, the
    /// journal syncs when it is let go.
    fn drop(&mut self) {
        self.stop = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl JournalWriter {
    /// Starts the thread that owns `journal` and commits as `durability` says; under `none`
    /// and `periodic` the journal is written by whoever hands entries over, at once (and under
    /// `periodic` forced to disk by a thread of its own on its timer).
    pub fn start(mut journal: Journal, durability: Durability) -> JournalWriter {
        let (done_tx, done) = watch::channel(0);
        let syncer = match durability {
            Durability::None => None,
            Durability::Periodic(every) => Some(Syncer::start(&journal, every)),
            Durability::Sync | Durability::Group(_) => {
                let (work, rx) = std_mpsc::channel();
                let commit_nanos = std::sync::Arc::default();
                let average = std::sync::Arc::clone(&commit_nanos);
                let thread = std::thread::Builder::new()
                    .name("journal".into())
                    .spawn(move || commit_loop(journal, durability, rx, done_tx, average))
                    .expect("a thread for the journal");
                return JournalWriter {
                    committer: Committer::Thread {
                        work: Some(work),
                        thread: Some(thread),
                        commit_nanos,
                    },
                    next: 0,
                    done,
                };
            }
        };
        journal.set_durability(durability);
        JournalWriter {
            committer: Committer::Inline(journal, done_tx, syncer),
            next: 0,
            done,
        }
    }

    /// Hands `entries` over; the ticket they were given is committed once
    /// [`JournalWriter::watch`] reaches it (at once, when the journal is written inline:
    /// [`JournalWriter::writes_inline`]).
    pub fn hand_over(&mut self, entries: Vec<Entry>, linger: Linger) -> u64 {
        self.next += 1;
        match &mut self.committer {
            Committer::Thread { work, .. } => {
                if let Some(work) = work
                    && work.send((self.next, entries, linger)).is_err()
                {
                    tracing::error!("the journal's thread has stopped: events are not kept");
                }
            }
            Committer::Inline(journal, done, syncer) => {
                let new_file = entries.iter().any(|e| !matches!(e, Entry::Event(_)));
                write_entries(journal, entries);
                if let Some(syncer) = syncer {
                    syncer.written(journal, new_file);
                }
                done.send_replace(self.next);
            }
        }
        self.next
    }

    /// How long whoever waits for a commit should keep polling for it rather than sleep
    /// ([`stay_awake`] of the thread's moving average of its commits; nothing when the journal
    /// is written inline, where no one waits).
    pub fn stay_awake(&self) -> Duration {
        let Committer::Thread { commit_nanos, .. } = &self.committer else {
            return Duration::ZERO;
        };
        let nanos = commit_nanos.load(std::sync::atomic::Ordering::Relaxed);
        stay_awake((nanos > 0).then(|| Duration::from_nanos(nanos)))
    }

    /// The ticket the next [`JournalWriter::hand_over`] gives.
    pub fn next_ticket(&self) -> u64 {
        self.next + 1
    }

    /// Whether a hand-over is committed before [`JournalWriter::hand_over`] returns.
    pub fn writes_inline(&self) -> bool {
        matches!(self.committer, Committer::Inline(..))
    }

    /// News of the last ticket committed.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.done.clone()
    }

    /// How many tickets were handed over and are not committed yet.
    pub fn outstanding(&self) -> u64 {
        self.next - *self.done.borrow()
    }

    /// Commits what was handed over, forces it to disk, and lets the journal go. (Dropped
    /// without it, the writer closes the channel all the same: the thread commits what it
    /// holds and stops on its own.)
    pub async fn stop(self) {
        match self.committer {
            Committer::Thread {
                work, mut thread, ..
            } => {
                drop(work);
                if let Some(thread) = thread.take() {
                    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
                }
            }
            // Dropping the journal forces what it holds to disk.
            Committer::Inline(journal, _, syncer) => {
                let _ = tokio::task::spawn_blocking(move || {
                    drop(syncer);
                    drop(journal);
                })
                .await;
            }
        }
    }
}

/// The most entries in one transaction: a backup catching up hands over thousands at once.
const MAX_GROUP: usize = 8192;

/// The longest a lingering hand-over waits, however slow the disk's commits are.
const MAX_LINGER: Duration = Duration::from_millis(1);

/// The thread (`sync`, `group`): takes what has been handed over, waits up to the group window
/// for more (`group`) or up to a commit's time for a lingering one's next (`sync`), writes it
/// all in one commit, forced to disk, and says how far it got.
fn commit_loop(
    mut journal: Journal,
    durability: Durability,
    mut work: std_mpsc::Receiver<Work>,
    done: watch::Sender<u64>,
    average: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    set_timer_slack();
    journal.set_durability(durability);
    let window = match durability {
        Durability::Group(window) => Some(window),
        _ => None,
    };
    // How long a commit takes (a moving average), under `sync`: the longest worth lingering.
    let mut commit_time: Option<Duration> = None;
    while let Ok(first) = work.recv() {
        if let Some(window) = window {
            // The window is waited out once, and what came in it taken at the end: waiting for
            // each hand-over instead would wake this thread for every one of them.
            std::thread::sleep(window);
        }
        let linger = (durability == Durability::Sync)
            .then(|| commit_time.unwrap_or(MAX_LINGER).min(MAX_LINGER));
        let (ticket, entries) = gather(first, &mut work, linger);
        let started = Instant::now();
        write_entries(&mut journal, entries);
        if durability == Durability::Sync {
            let took = started.elapsed();
            // An average over about the last eight commits.
            let avg = match commit_time {
                Some(avg) => (avg * 7 + took) / 8,
                None => took,
            };
            commit_time = Some(avg);
            let nanos = u64::try_from(avg.as_nanos()).unwrap_or(u64::MAX).max(1);
            average.store(nanos, std::sync::atomic::Ordering::Relaxed);
        }
        done.send_replace(ticket);
    }
    // Dropping the journal forces what it committed to disk.
    drop(journal);
}

/// The longest a waiting loop keeps polling for a commit.
const STAY_AWAKE: Duration = Duration::from_micros(300);

/// How long to keep polling for a commit, given the moving average of commits: about two
/// commits' time when they are quick (a sleeping loop would be woken tens of microseconds after
/// one, a large part of it), not at all when they take longer than [`STAY_AWAKE`] (the wake-up
/// is then a small part of the wait, and polling would only burn the core) or are not measured
/// (`group`, whose window is the wait; before the first commit).
pub fn stay_awake(average_commit: Option<Duration>) -> Duration {
    match average_commit {
        Some(commit) if commit <= STAY_AWAKE => (commit * 2).min(STAY_AWAKE),
        _ => Duration::ZERO,
    }
}

/// Where the thread's hand-overs come from.
trait Source {
    /// One already handed over, if any.
    fn ready(&mut self) -> Option<Work>;
    /// The next one, if it comes within `wait`.
    fn within(&mut self, wait: Duration) -> Option<Work>;
}

impl Source for std_mpsc::Receiver<Work> {
    fn ready(&mut self) -> Option<Work> {
        self.try_recv().ok()
    }

    fn within(&mut self, wait: Duration) -> Option<Work> {
        self.recv_timeout(wait).ok()
    }
}

/// One commit's worth: `first` and whatever else has been handed over (up to [`MAX_GROUP`]
/// entries), under the last ticket taken. With `linger` (`sync`, about one commit's time): a
/// lone hand-over whose job has left for its worker waits that long for the next, so a quick
/// job's result shares its submission's fsync instead of queueing behind it for one of its own
/// (waiting no longer than a commit, it finishes no later than it would have otherwise).
fn gather(first: Work, source: &mut impl Source, linger: Option<Duration>) -> (u64, Vec<Entry>) {
    let (mut ticket, mut entries, lingers) = first;
    let alone = !take_ready(source, &mut ticket, &mut entries);
    if let Some(wait) = linger
        && lingers == Linger::Result
        && alone
        && let Some((t, more, _)) = source.within(wait)
    {
        ticket = t;
        entries.extend(more);
        take_ready(source, &mut ticket, &mut entries);
    }
    (ticket, entries)
}

/// Adds what has been handed over already (up to [`MAX_GROUP`] entries); whether there was any.
fn take_ready(source: &mut impl Source, ticket: &mut u64, entries: &mut Vec<Entry>) -> bool {
    let mut any = false;
    while entries.len() < MAX_GROUP {
        let Some((t, more, _)) = source.ready() else {
            break;
        };
        *ticket = t;
        entries.extend(more);
        any = true;
    }
    any
}

/// Lets this thread's timed waits end when they are due, not up to the kernel's default slack
/// (50 µs) later: a lingering commit waits about a tenth of a millisecond.
fn set_timer_slack() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_timerslack(1_000) {
        tracing::debug!("the journal thread's timer slack stays as it was: {e}");
    }
}

/// Writes `entries` in order: events in one transaction each run between two operations. A
/// failure is logged and the node keeps serving (what it could not write is not durable, and
/// the log says so).
pub fn write_entries(journal: &mut Journal, entries: Vec<Entry>) {
    let mut events: Vec<std::sync::Arc<ClusterEvent>> = Vec::new();
    for entry in entries {
        let op = match entry {
            Entry::Event(e) => {
                events.push(e);
                continue;
            }
            Entry::Op(op) => Some(op),
            Entry::Reset => None,
        };
        if let Err(e) = journal.append(events.iter().map(AsRef::as_ref)) {
            tracing::error!("{e}: events of this step are not durable");
        }
        events.clear();
        let done = match op {
            Some(JournalOp::Restart { at }) => journal.restart_at(at),
            Some(JournalOp::Compact { base, snapshot }) => journal.compact(base, &snapshot),
            None => journal.reset(),
        };
        if let Err(e) = done {
            tracing::error!("{e}");
        }
    }
    if let Err(e) = journal.append(events.iter().map(AsRef::as_ref)) {
        tracing::error!("{e}: events of this step are not durable");
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::submitted;
    use super::*;
    use crate::cluster::event::EventKind;
    use crate::protocol::message::JobId;

    /// Tickets handed over while the thread commits are committed in order, each reported;
    /// stopping lets the file go with everything in it, in every mode.
    #[tokio::test]
    async fn handed_over_events_are_committed_in_order_and_kept_after_a_stop() {
        for durability in [
            Durability::Sync,
            Durability::Group(Duration::from_millis(2)),
            Durability::Periodic(Duration::from_millis(5)),
            Durability::None,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = super::super::path_for(dir.path(), "coordinator");
            let (journal, _) = Journal::open(&path).unwrap();
            let mut writer = JournalWriter::start(journal, durability);
            let mut watch = writer.watch();
            let mut last = 0;
            for n in 1..=50 {
                let linger = if n % 2 == 0 {
                    Linger::Result
                } else {
                    Linger::No
                };
                last = writer.hand_over(vec![Entry::Event(submitted(n).into())], linger);
            }
            assert_eq!(last, 50);
            tokio::time::timeout(Duration::from_secs(10), watch.wait_for(|t| *t >= last))
                .await
                .expect("committed in time")
                .unwrap();
            assert_eq!(writer.outstanding(), 0);
            // A reset in order with the events: what came before it is gone.
            writer.hand_over(
                vec![
                    Entry::Event(submitted(51).into()),
                    Entry::Reset,
                    Entry::Event(submitted(52).into()),
                ],
                Linger::No,
            );
            writer.stop().await;
            let (journal, events) = Journal::open(&path).unwrap();
            assert_eq!(events, vec![submitted(52)], "{durability:?}");
            assert_eq!(journal.len(), 1);
        }
    }

    /// Under `none` a hand-over is written before `hand_over` returns (a crash of the process
    /// right after it loses nothing): the ticket is committed at once and the line is in the
    /// file, readable by another opener, while the writer still runs. Under the others it is
    /// the thread's to write.
    #[tokio::test]
    async fn under_none_a_hand_over_is_in_the_file_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = super::super::path_for(dir.path(), "coordinator");
        let (journal, _) = Journal::open(&path).unwrap();
        let mut writer = JournalWriter::start(journal, Durability::None);
        assert!(writer.writes_inline());
        for n in 1..=3 {
            let ticket = writer.hand_over(vec![Entry::Event(submitted(n).into())], Linger::No);
            assert_eq!(ticket, n);
            assert_eq!(writer.outstanding(), 0);
            assert_eq!(*writer.watch().borrow(), n);
            let written = std::fs::read(&path).unwrap();
            let lines = super::super::lines::read(&written).unwrap();
            assert_eq!(lines.events.len() as u64, n, "line {n} is in the file");
        }
        writer.stop().await;
        let (_, events) = Journal::open(&path).unwrap();
        assert_eq!(events, (1..=3).map(submitted).collect::<Vec<_>>());

        let (journal, _) = Journal::open(&path).unwrap();
        let writer = JournalWriter::start(journal, Durability::Sync);
        assert!(!writer.writes_inline());
        writer.stop().await;
    }

    /// Under `periodic` the loop writes and a thread forces the file to disk on its timer:
    /// what was written is synced within about an interval, and after a compaction the file
    /// it syncs is the journal's new one.
    #[tokio::test]
    async fn under_periodic_writes_are_inline_and_the_syncer_follows_the_file() {
        use std::os::unix::fs::MetadataExt;
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let path = super::super::path_for(dir.path(), "coordinator");
        let (journal, _) = Journal::open(&path).unwrap();
        let mut writer =
            JournalWriter::start(journal, Durability::Periodic(Duration::from_millis(5)));
        assert!(writer.writes_inline());
        writer.hand_over(vec![Entry::Event(submitted(1).into())], Linger::No);
        assert_eq!(writer.outstanding(), 0);
        let syncer = |w: &JournalWriter| match &w.committer {
            Committer::Inline(_, _, Some(syncer)) => (syncer.dirty.clone(), syncer.file.clone()),
            _ => panic!("a syncer under periodic"),
        };
        let (dirty, file) = syncer(&writer);
        let synced = async {
            while dirty.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), synced)
            .await
            .expect("synced within the deadline");
        // A compaction puts a new file in place: the syncer's handle is that one.
        let inode = |f: &std::fs::File| f.metadata().unwrap().ino();
        let before = inode(file.lock().unwrap().as_ref().unwrap());
        writer.hand_over(
            vec![
                Entry::Event(submitted(2).into()),
                Entry::Op(JournalOp::Compact {
                    base: 2,
                    snapshot: vec![submitted(0).into(), submitted(1).into()],
                }),
                Entry::Event(submitted(3).into()),
            ],
            Linger::No,
        );
        let after = inode(file.lock().unwrap().as_ref().unwrap());
        assert_ne!(before, after, "the compacted file replaced the old one");
        assert_eq!(after, std::fs::metadata(&path).unwrap().ino());
        // A second descriptor shares the file's lock: the test lets its copy go too.
        drop((dirty, file));
        writer.stop().await;
        let (journal, events) = Journal::open(&path).unwrap();
        assert_eq!(events.last(), Some(&submitted(3)));

        // Let go without a stop (its task ended some other way): the file is free at once.
        let mut writer =
            JournalWriter::start(journal, Durability::Periodic(Duration::from_millis(5)));
        writer.hand_over(vec![Entry::Event(submitted(4).into())], Linger::No);
        drop(writer);
        let (_, events) = Journal::open(&path).expect("no descriptor left holding the lock");
        assert_eq!(events.last(), Some(&submitted(4)));
    }

    /// Hand-overs as a test lays them out: those already there, and one that comes while the
    /// thread waits (the waits asked for are kept).
    struct Laid {
        ready: std::collections::VecDeque<Work>,
        later: Option<Work>,
        waits: Vec<Duration>,
    }

    impl Source for Laid {
        fn ready(&mut self) -> Option<Work> {
            self.ready.pop_front()
        }

        fn within(&mut self, wait: Duration) -> Option<Work> {
            self.waits.push(wait);
            self.later.take()
        }
    }

    fn work(ticket: u64, linger: Linger) -> Work {
        (ticket, vec![Entry::Event(submitted(ticket).into())], linger)
    }

    fn laid(ready: Vec<Work>, later: Option<Work>) -> Laid {
        Laid {
            ready: ready.into(),
            later,
            waits: Vec::new(),
        }
    }

    /// Under `sync` a lone hand-over whose job has left waits up to a commit's time for the
    /// next (a quick job's result) and both go in one commit; one that is not alone, one with
    /// nothing running, and any under another durability commit what is there at once.
    #[test]
    fn a_lone_running_job_waits_a_commit_for_its_result() {
        let commit = Duration::from_micros(120);
        let mut source = laid(vec![], Some(work(2, Linger::No)));
        let (ticket, entries) = gather(work(1, Linger::Result), &mut source, Some(commit));
        assert_eq!(
            (ticket, entries.len()),
            (2, 2),
            "the result shares the commit"
        );
        assert_eq!(source.waits, vec![commit]);

        // Nothing came in time: the submission is committed alone.
        let mut source = laid(vec![], None);
        let (ticket, entries) = gather(work(1, Linger::Result), &mut source, Some(commit));
        assert_eq!((ticket, entries.len()), (1, 1));

        // Not alone: what is there is committed together, without waiting.
        let mut source = laid(vec![work(2, Linger::No)], Some(work(3, Linger::No)));
        let (ticket, _) = gather(work(1, Linger::Result), &mut source, Some(commit));
        assert_eq!(ticket, 2);
        assert!(source.waits.is_empty());

        // Nothing running, or not `sync`: no wait.
        let mut source = laid(vec![], Some(work(2, Linger::No)));
        assert_eq!(gather(work(1, Linger::No), &mut source, Some(commit)).0, 1);
        let (ticket, _) = gather(work(1, Linger::Result), &mut source, None);
        assert_eq!(ticket, 1);
        assert!(source.waits.is_empty());
    }

    /// Polling for a commit pays only when commits are quick: two commits' time, never more
    /// than STAY_AWAKE, nothing for slow or unmeasured ones.
    #[test]
    fn the_loop_stays_awake_only_for_quick_commits() {
        let us = Duration::from_micros;
        assert_eq!(stay_awake(None), Duration::ZERO);
        assert_eq!(stay_awake(Some(us(80))), us(160));
        assert_eq!(stay_awake(Some(us(200))), STAY_AWAKE);
        assert_eq!(stay_awake(Some(STAY_AWAKE)), STAY_AWAKE);
        assert_eq!(stay_awake(Some(us(301))), Duration::ZERO);
        assert_eq!(stay_awake(Some(Duration::from_millis(5))), Duration::ZERO);
    }

    /// A step that writes nothing asks nothing of the journal: its replies need not wait.
    #[test]
    fn only_kept_events_and_journal_changes_are_entries() {
        let progress = ClusterEvent {
            at_ms: 1,
            clock: 1,
            kind: EventKind::JobProgress {
                job: JobId(1),
                worker: "w".into(),
                percent: 5,
            },
        };
        assert!(entries_of(&[Output::Event(progress.into()), Output::Close(3)]).is_empty());
        let entries = entries_of(&[
            Output::Event(submitted(1).into()),
            Output::Follow {
                primary: "p".into(),
                reset: true,
            },
        ]);
        assert!(matches!(entries[..], [Entry::Event(_), Entry::Reset]));
    }
}
