//! The journal's own thread: the coordinator hands it each step's events and goes on serving;
//! the thread commits them and says how far it got. Whatever is handed over while one commit is
//! being forced to disk goes into the next one together (a group commit), so under load one
//! fsync covers many clients' jobs, and a message that promises nothing (a `ping`, another
//! client's `status`) never waits for one.
//!
//! ```text
//!  coordinator loop ──(ticket, entries)──▶ journal thread: gather, one transaction, commit
//!        ▲                                                      │
//!        └──────────── durable up to ticket N (watch) ◀─────────┘
//! ```

use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

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
    for output in outputs {
        match output {
            Output::Event(e) if e.kind.is_durable() => entries.push(Entry::Event(e.clone())),
            Output::Journal(op) => entries.push(Entry::Op(op.clone())),
            Output::Follow { reset: true, .. } => entries.push(Entry::Reset),
            _ => {}
        }
    }
    entries
}

/// The coordinator's side of the journal thread.
pub struct JournalWriter {
    work: Option<std_mpsc::Sender<(u64, Vec<Entry>)>>,
    /// The last ticket handed over.
    next: u64,
    /// The last ticket whose entries are committed (on disk, under `sync` and `group`).
    done: watch::Receiver<u64>,
    thread: Option<JoinHandle<()>>,
}

impl JournalWriter {
    /// Starts the thread that owns `journal` and commits as `durability` says.
    pub fn start(journal: Journal, durability: Durability) -> JournalWriter {
        let (work, rx) = std_mpsc::channel();
        let (done_tx, done) = watch::channel(0);
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || commit_loop(journal, durability, rx, done_tx))
            .expect("a thread for the journal");
        JournalWriter {
            work: Some(work),
            next: 0,
            done,
            thread: Some(thread),
        }
    }

    /// Hands `entries` to the thread; the ticket they were given is committed once
    /// [`JournalWriter::committed`] reaches it.
    pub fn hand_over(&mut self, entries: Vec<Entry>) -> u64 {
        self.next += 1;
        if let Some(work) = &self.work
            && work.send((self.next, entries)).is_err()
        {
            tracing::error!("the journal's thread has stopped: events are not kept");
        }
        self.next
    }

    /// The ticket the next [`JournalWriter::hand_over`] gives.
    pub fn next_ticket(&self) -> u64 {
        self.next + 1
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
    pub async fn stop(mut self) {
        self.work = None;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// The most entries in one transaction: a backup catching up hands over thousands at once.
const MAX_GROUP: usize = 8192;

/// The thread: takes what has been handed over, waits up to the group window for more
/// (`group`), writes it all in one transaction, and says how far it got.
fn commit_loop(
    mut journal: Journal,
    durability: Durability,
    work: std_mpsc::Receiver<(u64, Vec<Entry>)>,
    done: watch::Sender<u64>,
) {
    journal.set_durability(durability);
    let periodic = match durability {
        Durability::Periodic(every) => Some(every),
        _ => None,
    };
    let window = match durability {
        Durability::Group(window) => Some(window),
        _ => None,
    };
    let mut next_sync = periodic.map(|every| Instant::now() + every);
    loop {
        let first = match next_sync {
            Some(at) => match work.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(first) => first,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    sync(&mut journal);
                    next_sync = periodic.map(|every| Instant::now() + every);
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            },
            None => match work.recv() {
                Ok(first) => first,
                Err(_) => break,
            },
        };
        let (mut ticket, mut entries) = first;
        if let Some(window) = window {
            // The window is waited out once, and what came in it taken at the end: waiting for
            // each hand-over instead would wake this thread for every one of them.
            std::thread::sleep(window);
        }
        while entries.len() < MAX_GROUP {
            let Ok((t, more)) = work.try_recv() else {
                break;
            };
            ticket = t;
            entries.extend(more);
        }
        write_entries(&mut journal, entries);
        if let Some(at) = next_sync
            && Instant::now() >= at
        {
            sync(&mut journal);
            next_sync = periodic.map(|every| Instant::now() + every);
        }
        done.send_replace(ticket);
    }
    // Dropping the journal forces what it committed to disk.
    drop(journal);
}

fn sync(journal: &mut Journal) {
    if let Err(e) = journal.sync() {
        tracing::warn!("the journal could not be forced to disk: {e}");
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
    use std::time::Duration;

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
                last = writer.hand_over(vec![Entry::Event(submitted(n).into())]);
            }
            assert_eq!(last, 50);
            tokio::time::timeout(Duration::from_secs(10), watch.wait_for(|t| *t >= last))
                .await
                .expect("committed in time")
                .unwrap();
            assert_eq!(writer.outstanding(), 0);
            // A reset in order with the events: what came before it is gone.
            writer.hand_over(vec![
                Entry::Event(submitted(51).into()),
                Entry::Reset,
                Entry::Event(submitted(52).into()),
            ]);
            writer.stop().await;
            let (journal, events) = Journal::open(&path).unwrap();
            assert_eq!(events, vec![submitted(52)], "{durability:?}");
            assert_eq!(journal.len(), 1);
        }
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
