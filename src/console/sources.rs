//! The tasks that feed the console's loop: the terminal, a ticker, and the run's feed (the
//! supervisor's updates and logs, the links, the primary's worker figures, the chat pane),
//! which the recorder writes down too. Attached to a cluster it did not launch, the console
//! makes a feed of its own from the coordinator's events. Each turns what it hears into
//! [`Input`]s on the one channel; none of them touches the [`App`](super::app::App).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};

use super::keymap::Action;
use crate::client::Client;
use crate::protocol::message::Message;
use crate::supervisor::SupervisorHandle;
use crate::supervisor::feed::{Feed, Feeder, Stamped, at_hand};

/// What feeds the loop.
pub(super) enum Input {
    /// A key, a mouse event, a resize.
    Terminal(Event),
    /// Anything else, already an action.
    Action(Action),
}

/// Starts the tasks that feed the loop, and returns the feed it reads itself: the run's, or
/// (attached) one of its own.
pub(super) fn spawn_sources(
    tx: &mpsc::UnboundedSender<Input>,
    handle: Option<&SupervisorHandle>,
    coordinator: String,
    secret: Option<String>,
    started: Instant,
) -> broadcast::Receiver<Arc<Stamped>> {
    read_terminal(tx.clone());
    tick(tx.clone(), started);
    match handle {
        Some(handle) => handle.feed(),
        None => {
            // Attached to a cluster it did not launch: the console reads the coordinator's
            // events itself, history first, and polls its workers.
            let (feeder, feed) = Feeder::new(started);
            let masters: Vec<String> = [coordinator]
                .into_iter()
                .filter(|a| !a.is_empty())
                .collect();
            tokio::spawn(crate::supervisor::feed::poll_workers(
                feeder.clone(),
                masters.clone(),
                secret.clone(),
            ));
            tokio::spawn(follow_coordinator(feeder, masters, secret, started));
            feed
        }
    }
}

/// The terminal, read on a thread of its own (reading blocks).
fn read_terminal(tx: mpsc::UnboundedSender<Input>) {
    std::thread::spawn(move || {
        while let Ok(event) = event::read() {
            if tx.send(Input::Terminal(event)).is_err() {
                break;
            }
        }
    });
}

/// Ticks: the clock in the status bar, expiring banners, throughput buckets.
fn tick(tx: mpsc::UnboundedSender<Input>, started: Instant) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(250));
        loop {
            interval.tick().await;
            let now = started.elapsed().as_millis() as u64;
            if tx.send(Input::Action(Action::Tick(now))).is_err() {
                break;
            }
        }
    });
}

/// An attached console's reading of the cluster: it subscribes to the coordinator it was given
/// (its history first, then every event), and starts over whenever the connection does.
async fn follow_coordinator(
    feeder: Feeder,
    masters: Vec<String>,
    secret: Option<String>,
    started: Instant,
) {
    use crate::supervisor::Update;
    use crate::supervisor::timeline::{TimelineEvent, TimelineKind};
    use crate::view::ClusterView;
    let Some(addr) = masters.first().cloned() else {
        return;
    };
    loop {
        if let Ok(mut client) = Client::connect(&addr, "console", secret.as_deref()).await
            && client
                .send(Message::Subscribe { history: true })
                .await
                .is_ok()
        {
            let mut history = Vec::new();
            let mut primary = String::new();
            while let Ok(envelope) = client.receive().await {
                let update = match envelope.message {
                    Message::History { events, done } => {
                        history.extend(events);
                        if !done {
                            continue;
                        }
                        primary = envelope.from.into();
                        let mut view = ClusterView::new(&primary, 1, false);
                        view.resync(&std::mem::take(&mut history));
                        Update::View(Arc::new(view))
                    }
                    Message::Event { event } => Update::Timeline(Arc::new(TimelineEvent {
                        at_ms: started.elapsed().as_millis() as u64,
                        source: primary.clone(),
                        kind: TimelineKind::Cluster {
                            event: Arc::unwrap_or_clone(event),
                        },
                    })),
                    _ => continue,
                };
                if !feeder.send(Feed::Update(update)) {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Turns the feed's items at hand into actions: `first` (what woke the loop, if anything did),
/// then what is there without waiting, at most `most`; says so when the console fell behind.
/// False once the feed has ended.
pub(super) fn feed_actions(
    feed: &mut broadcast::Receiver<Arc<Stamped>>,
    first: Option<Result<Arc<Stamped>, RecvError>>,
    most: usize,
    actions: &mut Vec<Action>,
) -> bool {
    let mut next = first;
    for _ in 0..most {
        let Some(item) = next.take().or_else(|| at_hand(feed)) else {
            return true;
        };
        match item {
            Ok(item) => actions.extend(Action::from_feed(Arc::unwrap_or_clone(item).feed)),
            Err(RecvError::Lagged(n)) => actions.push(Action::Flash(format!(
                "the console fell {n} updates behind"
            ))),
            Err(RecvError::Closed) => return false,
        }
    }
    true
}
