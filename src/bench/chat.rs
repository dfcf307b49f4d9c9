//! Chat fan-out: one publisher, N subscribers to every channel; deliveries per second, then the
//! publish-to-deliver latency at half that rate — on a tcluster chat server, and on Redis
//! pub/sub with the same clients.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::redis::{Replies, command, reply};
use super::scratch::Scratch;
use super::tally::Tally;
use super::{BenchError, Spread, expect};
use crate::client::Client;
use crate::protocol::message::{ChatBody, Encoding, Message};

/// How a fan-out run is driven, for either server.
#[derive(Debug, Clone, Copy)]
pub struct FanOut {
    /// Subscribers, each to every channel.
    pub subscribers: usize,
    /// Posts in the throughput run.
    pub posts: usize,
    /// Posts the publisher keeps unanswered.
    pub window: usize,
    /// The latency run's rate, posts/s; `None`: half the throughput just measured. Given, two
    /// servers' latencies compare at one load (a faster server's own half load is a higher one).
    pub paced: Option<f64>,
    /// How a tcluster chat server's subscribers ask for their deliveries.
    pub encoding: Encoding,
}

/// What [`chat`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Chat {
    /// What served: `tcluster chat` or `redis pub/sub`.
    pub server: String,
    /// Whether the server kept its history on disk.
    pub history_on_disk: bool,
    /// When its commits reached the disk (`policy chat { durability … }`): `sync` (each
    /// batch's, before anything from it is sent) or `periodic 10ms`; `null` in memory and for
    /// Redis.
    pub durability: Option<String>,
    /// How the subscribers read their deliveries: `msgpack` frames or `json` lines (`null`
    /// for Redis, whose deliveries are RESP).
    pub encoding: Option<Encoding>,
    /// Subscribers (each subscribed to every channel).
    pub subscribers: usize,
    /// Posts in the throughput run.
    pub posts: usize,
    /// Posts per second the server accepted and delivered.
    pub posts_per_second: f64,
    /// Deliveries per second to all subscribers together.
    pub deliveries_per_second: f64,
    /// Deliveries that never arrived (a tcluster chat server drops them for a subscriber too
    /// slow to read).
    pub lost: u64,
    /// The rate of the latency run, posts/s (half the throughput, unless it was given).
    pub paced_posts_per_second: f64,
    /// Whether that rate was given (`--paced`) rather than half the throughput.
    pub paced_as_given: bool,
    /// Publish → delivery at that rate, ms.
    pub latency: Spread,
    /// Microseconds of the server process's CPU (user and system) per delivery, over both runs
    /// (Linux's /proc; `null` where the server's process is not known).
    pub server_cpu_per_delivery_us: Option<f64>,
    /// The same for this benchmark's own process, where the subscribers and the publisher
    /// run: what reading (and sending) each delivery costs a client.
    pub client_cpu_per_delivery_us: Option<f64>,
    /// The server's CPU in the throughput run alone: per delivery, and as a share of one core
    /// over the run. Unlike the figures over both runs, these compare two servers at the same
    /// work (in the latency run each is paced at its own half load, and the faster one, at the
    /// higher load, batches more).
    pub throughput_server_cpu: Option<CpuShare>,
    /// The same for the clients' process (its subscribers and publisher share one thread).
    pub throughput_client_cpu: Option<CpuShare>,
    /// In the latency run, how long the server's loop and the clients' thread each waited for
    /// a core while they had work (`null` where it cannot be read): the machine's share of the
    /// tail.
    pub latency_waited_for_a_core: Waited,
}

/// Milliseconds two threads spent ready to run but waiting for a core (Linux's
/// /proc/PID/schedstat of each process's main thread, where its loop runs).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Waited {
    /// The server's loop (its process's main thread).
    pub server_ms: Option<f64>,
    /// The benchmark's subscribers and publisher.
    pub clients_ms: Option<f64>,
}

impl Waited {
    /// The waits so far of `server`'s process and of this one (the clients').
    fn so_far(server: Option<u32>) -> Self {
        Waited {
            server_ms: server.and_then(super::waited_ms),
            clients_ms: super::waited_ms(std::process::id()),
        }
    }

    /// What was waited between `before` and these.
    fn since(self, before: Waited) -> Self {
        let less = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        Waited {
            server_ms: less(self.server_ms, before.server_ms),
            clients_ms: less(self.clients_ms, before.clients_ms),
        }
    }
}

/// A process's CPU over a run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuShare {
    /// Microseconds of CPU (user and system) per delivery.
    pub per_delivery_us: f64,
    /// CPU seconds over the run's seconds: 1.0 is one core busy throughout.
    pub of_a_core: f64,
}

impl CpuShare {
    /// `before` and `after` CPU seconds around a run of `seconds` that made `deliveries`.
    fn over(
        before: Option<f64>,
        after: Option<f64>,
        deliveries: usize,
        seconds: f64,
    ) -> Option<Self> {
        Some(CpuShare {
            per_delivery_us: per_delivery_us(before, after, deliveries)?,
            of_a_core: (after? - before?) / seconds,
        })
    }
}

/// Microseconds of CPU per delivery between two readings of a process's CPU seconds.
fn per_delivery_us(before: Option<f64>, after: Option<f64>, deliveries: usize) -> Option<f64> {
    (deliveries > 0).then_some(())?;
    Some((after? - before?) * 1e6 / deliveries as f64)
}

impl Chat {
    /// A readable table.
    pub fn table(&self) -> String {
        format!(
            "chat  {} ({}{}), {} subscribers to every channel, one publisher\n\
             \x20 throughput   {:.0} deliveries/s ({:.0} posts/s × {}; {} lost)\n\
             \x20 latency at {:.0} posts/s ({})   {}\n{}",
            self.server,
            match (self.history_on_disk, self.durability.as_deref()) {
                (false, _) => "in memory only".to_string(),
                (true, None | Some("sync")) =>
                    "history on disk, forced there before delivery".to_string(),
                (true, Some(other)) => format!("history on disk, durability {other}"),
            },
            match self.encoding {
                Some(Encoding::Msgpack) => "; deliveries as MessagePack",
                Some(Encoding::Json) => "; deliveries as JSON lines",
                None => "",
            },
            self.subscribers,
            self.deliveries_per_second,
            self.posts_per_second,
            self.subscribers,
            self.lost,
            self.paced_posts_per_second,
            if self.paced_as_given {
                "as given"
            } else {
                "half"
            },
            self.latency.ms(),
            match self.server_cpu_per_delivery_us {
                Some(us) => {
                    let clients = self
                        .client_cpu_per_delivery_us
                        .map(|c| format!(", clients {c:.2} µs"))
                        .unwrap_or_default();
                    format!("  CPU          server {us:.2} µs{clients} per delivery (both runs)\n")
                }
                None => String::new(),
            }
        ) + &self.throughput_cpu_line()
            + &self.waited_line()
    }

    /// What the latency run's two loops waited for a core, where it could be read.
    fn waited_line(&self) -> String {
        let Waited {
            server_ms,
            clients_ms,
        } = self.latency_waited_for_a_core;
        if server_ms.is_none() && clients_ms.is_none() {
            return String::new();
        }
        let shown = |ms: Option<f64>| ms.map_or("?".to_string(), |ms| format!("{ms:.1} ms"));
        format!(
            "  waited for a core in the latency run   server {}, clients {}\n",
            shown(server_ms),
            shown(clients_ms)
        )
    }

    /// The throughput run's CPU, if it was measured.
    fn throughput_cpu_line(&self) -> String {
        let Some(server) = self.throughput_server_cpu else {
            return String::new();
        };
        let clients = self
            .throughput_client_cpu
            .map(|c| {
                format!(
                    ", clients {:.2} µs ({:.0}% of a core)",
                    c.per_delivery_us,
                    c.of_a_core * 100.0
                )
            })
            .unwrap_or_default();
        format!(
            "  CPU, throughput run   server {:.2} µs ({:.0}% of a core){clients} per delivery\n",
            server.per_delivery_us,
            server.of_a_core * 100.0
        )
    }
}

/// Where the fan-out benchmark publishes: a tcluster chat server, or Redis.
enum Publisher {
    Chat(Client),
    Redis(Replies, tokio::net::tcp::OwnedWriteHalf),
}

impl Publisher {
    async fn send(&mut self, text: String) -> Result<(), BenchError> {
        match self {
            Publisher::Chat(client) => Ok(client
                .send(Message::ChatPublish {
                    channel: "bench".into(),
                    text,
                })
                .await?),
            Publisher::Redis(_, write) => command(write, &["PUBLISH", "bench", &text]).await,
        }
    }

    async fn acknowledged(&mut self) -> Result<(), BenchError> {
        match self {
            Publisher::Chat(client) => {
                expect(client, "the publisher's acknowledgements", |m| match m {
                    Message::ChatDone { .. } | Message::Error { .. } => Some(()),
                    _ => None,
                })
                .await
            }
            Publisher::Redis(read, _) => reply(read).await.map(|_| ()),
        }
    }

    /// Publishes `n` posts (each text its send time on `tally`'s clock), at most `window`
    /// unanswered, paced to `rate` posts/s if given.
    async fn publish(
        &mut self,
        tally: &Tally,
        n: usize,
        window: usize,
        rate: Option<f64>,
    ) -> Result<(), BenchError> {
        let started = Instant::now();
        let (mut sent, mut acked) = (0usize, 0usize);
        while acked < n {
            while sent < n && sent - acked < window {
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(sent as f64 / rate);
                    if due > Instant::now() {
                        if sent > acked {
                            break;
                        }
                        tokio::time::sleep_until(due.into()).await;
                    }
                }
                self.send(format!("{:.4}", tally.stamp())).await?;
                sent += 1;
            }
            if acked < sent {
                self.acknowledged().await?;
                acked += 1;
            }
        }
        Ok(())
    }
}

/// How long the benchmark waits for a delivery before it takes the rest as lost.
const QUIET: Duration = Duration::from_secs(2);

/// The fan-out measurement both servers go through: a throughput run, then a latency run at
/// half that rate. The subscribers add what they hear to `tally`; `server` is the server's
/// process, where it is known (its CPU and its waits are read from /proc).
async fn fan_out(
    publisher: &mut Publisher,
    tally: &Tally,
    server: Option<u32>,
    FanOut {
        subscribers,
        posts,
        window,
        paced,
        encoding: _,
    }: FanOut,
) -> Result<Chat, BenchError> {
    let server_cpu = || super::cpu_seconds(server?);
    let client_cpu = || super::cpu_seconds(std::process::id());
    let cpu_before = (server_cpu(), client_cpu());
    let started = Instant::now();
    publisher.publish(tally, posts, window, None).await?;
    let expected = posts * subscribers;
    let (got, last) = tally.throughput(expected, QUIET).await;
    let seconds = last
        .saturating_duration_since(started)
        .as_secs_f64()
        .max(1e-9);
    let posts_per_second = posts as f64 / seconds;
    // Read as soon as the last delivery is in: the quiet wait above ends only on a loss.
    let throughput_server_cpu = CpuShare::over(cpu_before.0, server_cpu(), got, seconds);
    let throughput_client_cpu = CpuShare::over(cpu_before.1, client_cpu(), got, seconds);

    let paced_as_given = paced.is_some();
    let paced = paced.unwrap_or(posts_per_second / 2.0).max(1.0);
    let n = ((paced * 3.0) as usize).clamp(100, 200_000);
    tally.start_latency_run(tally.stamp(), n);
    let waited_before = Waited::so_far(server);
    publisher.publish(tally, n, window, Some(paced)).await?;
    let samples = tally.latencies(n * subscribers, QUIET).await;
    let latency_waited_for_a_core = Waited::so_far(server).since(waited_before);
    let delivered = got + samples.len();
    let server_cpu_per_delivery_us = per_delivery_us(cpu_before.0, server_cpu(), delivered);
    let client_cpu_per_delivery_us = per_delivery_us(cpu_before.1, client_cpu(), delivered);
    Ok(Chat {
        server: String::new(),
        history_on_disk: false,
        durability: None,
        encoding: None,
        subscribers,
        posts,
        posts_per_second,
        deliveries_per_second: got as f64 / seconds,
        lost: (expected - got) as u64,
        paced_posts_per_second: paced,
        paced_as_given,
        latency: Spread::of(samples),
        server_cpu_per_delivery_us,
        client_cpu_per_delivery_us,
        throughput_server_cpu,
        throughput_client_cpu,
        latency_waited_for_a_core,
    })
}

/// One chat server, `subscribers` subscribers, one publisher with `window` posts in flight;
/// `history`: its history kept on disk with this durability (`sync`, `periodic 10ms`), or in
/// memory.
pub async fn chat(program: &Path, fan: FanOut, history: Option<&str>) -> Result<Chat, BenchError> {
    let durability = history
        .map(|d| format!("; durability {d}"))
        .unwrap_or_default();
    let mut s = Scratch::new(
        program,
        &format!(
            "set LOG_LEVEL \"WARN\"\nnode chat-1 {{ type chat }}\npolicy chat {{ rate 0{durability} }}\n"
        ),
    )?;
    s.durable = history.is_some();
    let addr = s.server("chat-1", None).await?;
    let tally = Arc::new(Tally::new(Instant::now(), fan.subscribers));
    let mut listening = tokio::task::JoinSet::new();
    for i in 0..fan.subscribers {
        let mut c = Client::connect(&addr, &format!("sub-{i}"), None).await?;
        c.send_all([
            Message::ChatEncoding {
                encoding: fan.encoding,
            },
            Message::ChatSubscribe {
                channel: "*".into(),
            },
        ])
        .await?;
        for step in ["the encoding taken", "subscribed"] {
            expect(&mut c, step, |m| {
                matches!(m, Message::ChatDone { .. }).then_some(())
            })
            .await?;
        }
        let tally = tally.clone();
        listening.spawn(async move {
            // Each reads every delivery whole with tcluster's own client, into the message
            // every tcluster client gets (the console's chat feed reads frames so; `tcluster
            // chat`, the bots and a chat server following another read lines): the whole
            // message, the Lamport clock.
            while let Ok(envelope) = c.receive().await {
                if let Message::ChatMessage { entry } = envelope.message
                    && let ChatBody::Post { text, .. } = entry.body
                    && let Ok(sent) = text.parse::<f64>()
                {
                    tally.heard(i, sent);
                }
            }
        });
    }
    let mut client = Client::connect(&addr, "publisher", None).await?;
    client
        .request(Message::ChatLogin {
            user: "publisher".into(),
            password: None,
            token: None,
        })
        .await?;
    client
        .request(Message::ChatCreate {
            channel: "bench".into(),
        })
        .await?;
    let mut publisher = Publisher::Chat(client);
    let measured = fan_out(&mut publisher, &tally, s.pid("chat-1"), fan).await?;
    listening.abort_all();
    drop(s);
    Ok(Chat {
        server: "tcluster chat".into(),
        history_on_disk: history.is_some(),
        durability: history.map(str::to_string),
        encoding: Some(fan.encoding),
        ..measured
    })
}

/// The same fan-out through Redis pub/sub at `addr` (a server started by the caller).
pub async fn redis_chat(addr: &str, fan: FanOut) -> Result<Chat, BenchError> {
    use super::redis::connect;
    let tally = Arc::new(Tally::new(Instant::now(), fan.subscribers));
    let mut listening = tokio::task::JoinSet::new();
    for i in 0..fan.subscribers {
        let (mut read, mut write) = connect(addr).await?;
        command(&mut write, &["SUBSCRIBE", "bench"]).await?;
        reply(&mut read).await?;
        let tally = tally.clone();
        listening.spawn(async move {
            let _write = write;
            // Each reads every reply whole, as a Redis client library does: the message's
            // three strings, cut out of what each read brought.
            while let Ok(strings) = reply(&mut read).await {
                if let [kind, _, text] = &strings[..]
                    && kind == "message"
                    && let Ok(sent) = text.parse::<f64>()
                {
                    tally.heard(i, sent);
                }
            }
        });
    }
    let (mut read, mut write) = connect(addr).await?;
    let pid = super::redis::process_id(&mut read, &mut write).await?;
    let mut publisher = Publisher::Redis(read, write);
    let measured = fan_out(&mut publisher, &tally, pid, fan).await?;
    listening.abort_all();
    Ok(Chat {
        server: "redis pub/sub".into(),
        ..measured
    })
}
