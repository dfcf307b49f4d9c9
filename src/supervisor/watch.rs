//! Watching the masters: one subscription per master, which brings its history and then its
//! events; and the submitter, which hands the operator's jobs to the primary in order.

use super::*;
use crate::protocol::message::{Envelope, PeerRole};
use futures::FutureExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A submission for the primary at `addr`.
pub(super) struct Submission {
    pub(super) addr: SocketAddr,
    pub(super) data: String,
    pub(super) count: u32,
    pub(super) priority: i32,
    /// The cluster, when not the main one.
    pub(super) cluster: Option<String>,
}

/// Counts a submission down when its handling ends, whichever way.
struct Landed<'a>(&'a AtomicUsize);

impl Drop for Landed<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Submits jobs in the order given, on one connection per primary, and says on the timeline
/// what became of each.
pub(super) async fn submitter(
    mut submissions: mpsc::UnboundedReceiver<Submission>,
    in_flight: Arc<AtomicUsize>,
    peer_key: String,
    updates: feed::News<Update>,
    internal: mpsc::UnboundedSender<TaskNews>,
    started: Instant,
) {
    let note = |text: String| {
        updates.send(Update::Timeline(Arc::new(TimelineEvent {
            at_ms: started.elapsed().as_millis() as u64,
            source: "operator".to_string(),
            kind: TimelineKind::Note { text },
        })));
    };
    let mut client: Option<(SocketAddr, Client)> = None;
    while let Some(s) = submissions.recv().await {
        // However it ends, this submission is no longer in flight afterwards.
        let _done = Landed(&in_flight);
        if client.as_ref().is_none_or(|(addr, _)| *addr != s.addr) {
            match Client::connect_as(
                &s.addr.to_string(),
                "operator",
                Some((&peer_key, PeerRole::Supervisor)),
                crate::protocol::handshake::TIMEOUT,
            )
            .await
            {
                Ok(c) => client = Some((s.addr, c)),
                Err(e) => {
                    note(format!("cannot submit: {e}"));
                    continue;
                }
            }
        }
        let Some((_, c)) = client.as_mut() else {
            continue;
        };
        let request = c.request(Message::Submit {
            data: s.data.clone(),
            count: s.count,
            priority: s.priority,
            token: None,
            notify: false,
        });
        // A paused primary never answers: give up after a while rather than hold the rest.
        match tokio::time::timeout(Duration::from_secs(30), request).await {
            Ok(Ok(Message::Accepted { jobs, last })) => {
                let jobs = crate::protocol::message::accepted_ids(&jobs, last);
                let range = match (jobs.first(), jobs.last()) {
                    (Some(a), Some(b)) if a != b => format!("{a} … {b}"),
                    (Some(a), _) => a.to_string(),
                    _ => String::new(),
                };
                note(format!("submitted {} × {:?}: {range}", s.count, s.data));
                let _ = internal.send(TaskNews::Accepted(s.cluster.clone(), jobs));
            }
            Ok(Ok(Message::Error { message })) => note(format!("submit refused: {message}")),
            Ok(Ok(Message::NotPrimary { .. })) => {
                client = None;
                note(format!(
                    "{} × {:?} not accepted: that master is no longer the primary; submit again",
                    s.count, s.data
                ));
            }
            Ok(Ok(other)) => note(format!("submit: unexpected reply {other:?}")),
            Ok(Err(e)) => {
                client = None;
                note(format!("cannot submit: {e}"));
            }
            Err(_) => {
                client = None;
                note("submit: no reply from the primary in 30s".to_string());
            }
        }
    }
}

/// The most events handed to the supervisor at once.
const EVENT_BATCH: usize = 256;

/// Subscribes to one master's events, reconnecting whenever it is gone. Every master is
/// followed at once: events count from the primary, and a takeover from any master (which makes
/// it the primary) is seen the moment it happens. Each subscription starts with the master's
/// history of durable events, so the supervisor's reading can start over from it; a message on
/// `resync` makes it subscribe again (after a takeover, the new primary's history is the truth).
pub(super) async fn follow_master(
    name: String,
    addr: SocketAddr,
    peer_key: String,
    internal: mpsc::UnboundedSender<TaskNews>,
    mut resync: mpsc::UnboundedReceiver<()>,
    shutdown: CancellationToken,
) {
    let addr = addr.to_string();
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let mut again = false;
        if let Ok(mut client) = Client::connect_as(
            &addr,
            "supervisor",
            Some((&peer_key, PeerRole::Supervisor)),
            crate::protocol::handshake::TIMEOUT,
        )
        .await
            && client
                .send(Message::Subscribe { history: true })
                .await
                .is_ok()
        {
            let mut history = Vec::new();
            // A connection that failed while events were read after one: it ends after them.
            let mut failed = None;
            loop {
                if failed.is_some() {
                    break;
                }
                let message = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(()) = resync.recv() => {
                        again = true;
                        break;
                    }
                    m = client.receive() => m,
                };
                let news = match message.map(|envelope| envelope.message) {
                    Ok(Message::History { events, done }) => {
                        history.extend(events);
                        if !done {
                            continue;
                        }
                        TaskNews::History {
                            from: name.clone(),
                            events: std::mem::take(&mut history),
                        }
                    }
                    Ok(Message::Event { event }) => {
                        // With the events that arrived with it: one wake of the supervisor
                        // for all of them.
                        let mut events = vec![Arc::unwrap_or_clone(event)];
                        while events.len() < EVENT_BATCH {
                            match client.receive().now_or_never() {
                                Some(Ok(Envelope {
                                    message: Message::Event { event },
                                    ..
                                })) => events.push(Arc::unwrap_or_clone(event)),
                                // Anything else is ignored here too.
                                Some(Ok(_)) => continue,
                                Some(Err(e)) => {
                                    failed = Some(e);
                                    break;
                                }
                                None => break,
                            }
                        }
                        TaskNews::Cluster {
                            from: name.clone(),
                            events,
                        }
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                };
                if internal.send(news).is_err() {
                    return;
                }
            }
        }
        if again {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// How often the launcher reads each chat server's entry count (for `chat_gap`, `entries(N)`).
const CHAT_POLL: Duration = Duration::from_millis(500);

/// Reads each chat server's `chat_stats` (entries, users) every [`CHAT_POLL`], on a connection of the
/// launcher's own (not through the link shaper: a cut link between servers must not hide them
/// from the launcher). A server that does not answer is reported as such (`None`).
pub(super) async fn poll_chat_servers(
    servers: Vec<(String, SocketAddr)>,
    peer_key: String,
    internal: mpsc::UnboundedSender<TaskNews>,
    shutdown: CancellationToken,
) {
    let mut clients: BTreeMap<String, Client> = BTreeMap::new();
    let mut interval = tokio::time::interval(CHAT_POLL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        for (name, addr) in &servers {
            if !clients.contains_key(name) {
                let addr = addr.to_string();
                let connect = Client::connect_as(
                    &addr,
                    "supervisor",
                    Some((&peer_key, PeerRole::Supervisor)),
                    Duration::from_millis(300),
                );
                if let Ok(client) = connect.await {
                    clients.insert(name.clone(), client);
                }
            }
            let entries = match clients.get_mut(name) {
                Some(client) => {
                    let ask = client.request(Message::ChatStats);
                    match tokio::time::timeout(Duration::from_millis(300), ask).await {
                        Ok(Ok(Message::ChatStatsReport(stats))) => {
                            Some((stats.entries as u64, stats.users as u64))
                        }
                        _ => None,
                    }
                }
                None => None,
            };
            if entries.is_none() {
                clients.remove(name);
            }
            let news = TaskNews::ChatEntries {
                server: name.clone(),
                entries,
            };
            if internal.send(news).is_err() {
                return;
            }
        }
    }
}
