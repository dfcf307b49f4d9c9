//! The bot: load for demos. It logs in to a chat server as `bot_NNNN`, posts to its channels and
//! submits jobs to the coordinator, each at the rate its topology sets.
//!
//! Posts and submissions arrive as two Poisson processes (the gaps between them are drawn from
//! an exponential distribution with a seeded generator), which looks like people rather than a
//! metronome while keeping the mean rate exact. What falls due while a connection is down is
//! skipped and counted, not saved up: a bot that comes back after its chat server was killed
//! does not flood the next one. After a long gap (the bot was paused) its schedule restarts from
//! the present for the same reason.
//!
//! The driver ([`crate::node::bot`]) opens the two connections, tells the bot when they open
//! and close and what they answer, and passes the time in ticks.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::clock::Millis;
use crate::protocol::message::Message;

/// What a bot does.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// The name it logs in with: `bot_0001`.
    pub login: String,
    /// The channels it posts to; it creates any that do not exist.
    pub channels: Vec<String>,
    /// Posts per second (0: none).
    pub posts_per_second: f64,
    /// Job submissions per second (0: none).
    pub jobs_per_second: f64,
    /// The job it submits.
    pub job: String,
    /// Seed of its random choices.
    pub seed: u64,
    /// `policy clock`: it asks the primary to read its clock too (`clock_join`).
    pub clock_sync: bool,
}

/// The chat login of the `n`th bot of a topology (1-based): `bot_0001`.
pub fn login_name(n: usize) -> String {
    format!("bot_{n:04}")
}

/// What the driver tells the bot.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Time passed; now is this many milliseconds since the bot started.
    Tick(Millis),
    /// The connection to a chat server opened.
    ChatUp,
    /// It closed.
    ChatDown,
    /// The chat server said this.
    FromChat(Message),
    /// The connection to the primary coordinator opened.
    CoordinatorUp,
    /// It closed.
    CoordinatorDown,
    /// The coordinator said this.
    FromCoordinator(Message),
}

/// What the bot asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this to the chat server.
    ToChat(Message),
    /// Send this to the coordinator.
    ToCoordinator(Message),
    /// Something worth a line in the log.
    Log(String),
    /// Move this node's clock by this many milliseconds (the time master said so).
    AdjustClock(i64),
}

/// What a bot has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BotStats {
    /// Posts the chat server accepted.
    pub posted: u64,
    /// Jobs the coordinator accepted.
    pub submitted: u64,
    /// Requests refused (the server's error, such as "slow down").
    pub refused: u64,
    /// Posts and submissions that fell due while their connection was down.
    pub skipped: u64,
}

/// After a gap this long without ticks, the schedule restarts from the present.
const RESYNC_MS: Millis = 2_000;

/// The bot.
#[derive(Debug)]
pub struct Bot {
    config: BotConfig,
    rng: SmallRng,
    chat_up: bool,
    coordinator_up: bool,
    /// When the next post and submission are due (milliseconds), if ever.
    next_post: Option<f64>,
    next_job: Option<f64>,
    last_tick: Millis,
    posts_made: u64,
    stats: BotStats,
    /// The last refusal logged, so a repeated one is logged once.
    last_refusal: Option<String>,
    /// Its wall clock (milliseconds since 1970), as the driver read it for this step.
    wall_ms: i64,
}

/// Things a bot says, with a number appended so every post is told apart.
const PHRASES: [&str; 12] = [
    "has anyone seen worker-2?",
    "my job has been queued for ages",
    "Lamport clocks are ticking",
    "is the coordinator up?",
    "the backup looks bored",
    "heartbeat received, all good",
    "who took my job?",
    "network seems slow today",
    "retrying…",
    "consensus is hard",
    "all replicas agree",
    "hello from the load generator",
];

impl Bot {
    /// A bot that has not connected yet.
    pub fn new(config: BotConfig) -> Self {
        let mut bot = Bot {
            rng: SmallRng::seed_from_u64(config.seed),
            config,
            chat_up: false,
            coordinator_up: false,
            next_post: None,
            next_job: None,
            last_tick: 0,
            posts_made: 0,
            stats: BotStats::default(),
            last_refusal: None,
            wall_ms: 0,
        };
        bot.next_post = bot.gap(bot.config.posts_per_second);
        bot.next_job = bot.gap(bot.config.jobs_per_second);
        bot
    }

    /// What it has done so far.
    pub fn stats(&self) -> BotStats {
        self.stats
    }

    /// The driver's reading of this node's wall clock, before each step (what a time master's
    /// `clock_poll` is answered with).
    pub fn set_wall_clock(&mut self, unix_ms: i64) {
        self.wall_ms = unix_ms;
    }

    /// Its settings.
    pub fn config(&self) -> &BotConfig {
        &self.config
    }

    /// A random gap for events at `rate` per second, in milliseconds; none for rate 0.
    fn gap(&mut self, rate: f64) -> Option<f64> {
        if rate <= 0.0 {
            return None;
        }
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u: f64 = self.rng.random();
        Some(-(1.0 - u).ln() / rate * 1000.0)
    }

    /// Handles one input.
    pub fn step(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Tick(now) => self.tick(now, &mut out),
            Input::ChatUp => {
                self.chat_up = true;
                out.push(Output::ToChat(Message::ChatLogin {
                    user: self.config.login.clone(),
                    password: None,
                    token: None,
                }));
                for channel in &self.config.channels {
                    out.push(Output::ToChat(Message::ChatCreate {
                        channel: channel.clone(),
                    }));
                }
            }
            Input::ChatDown => self.chat_up = false,
            Input::CoordinatorUp => {
                self.coordinator_up = true;
                if self.config.clock_sync {
                    out.push(Output::ToCoordinator(Message::ClockJoin));
                }
            }
            Input::CoordinatorDown => self.coordinator_up = false,
            Input::FromChat(message) => match message {
                Message::ChatDone { entry: Some(e) }
                    if matches!(e.body, crate::protocol::message::ChatBody::Post { .. }) =>
                {
                    self.stats.posted += 1
                }
                Message::Error { message } => self.refused("chat server", message, &mut out),
                _ => {}
            },
            Input::FromCoordinator(message) => match message {
                // Berkeley: the primary reads its clock, then moves it.
                Message::ClockPoll { round } => {
                    let clock_ms = self.wall_ms;
                    out.push(Output::ToCoordinator(Message::ClockReading {
                        round,
                        clock_ms,
                    }));
                }
                Message::ClockAdjust { adjust_ms, .. } => {
                    let max = crate::role::coordinator::MAX_ADJUST_MS;
                    out.push(Output::AdjustClock(adjust_ms.clamp(-max, max)));
                }
                Message::Accepted { jobs, last } => {
                    self.stats.submitted +=
                        crate::protocol::message::accepted_ids(&jobs, last).len() as u64
                }
                Message::Error { message } => self.refused("coordinator", message, &mut out),
                _ => {}
            },
        }
        out
    }

    fn refused(&mut self, who: &str, message: String, out: &mut Vec<Output>) {
        self.stats.refused += 1;
        if self.last_refusal.as_deref() != Some(message.as_str()) {
            out.push(Output::Log(format!("the {who} refused: {message}")));
            self.last_refusal = Some(message);
        }
    }

    fn tick(&mut self, now: Millis, out: &mut Vec<Output>) {
        if now.saturating_sub(self.last_tick) > RESYNC_MS {
            // Paused, or starved of ticks: start the schedule again from now.
            let (posts, jobs) = (self.config.posts_per_second, self.config.jobs_per_second);
            self.next_post = self.gap(posts).map(|g| now as f64 + g);
            self.next_job = self.gap(jobs).map(|g| now as f64 + g);
        }
        self.last_tick = now;
        while let Some(due) = self.next_post.filter(|due| *due <= now as f64) {
            if self.chat_up {
                out.push(Output::ToChat(self.post()));
            } else {
                self.stats.skipped += 1;
            }
            let rate = self.config.posts_per_second;
            self.next_post = self.gap(rate).map(|g| due + g);
        }
        while let Some(due) = self.next_job.filter(|due| *due <= now as f64) {
            if self.coordinator_up {
                out.push(Output::ToCoordinator(Message::Submit {
                    data: self.config.job.clone(),
                    count: 1,
                    priority: 0,
                    token: None,
                    notify: false,
                }));
            } else {
                self.stats.skipped += 1;
            }
            let rate = self.config.jobs_per_second;
            self.next_job = self.gap(rate).map(|g| due + g);
        }
    }

    fn post(&mut self) -> Message {
        self.posts_made += 1;
        let channel = match self.config.channels.len() {
            0 => "general".to_string(),
            n => self.config.channels[self.rng.random_range(0..n)].clone(),
        };
        let phrase = PHRASES[self.rng.random_range(0..PHRASES.len())];
        Message::ChatPublish {
            channel,
            text: format!("{phrase} ({})", self.posts_made),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(posts: f64, jobs: f64) -> BotConfig {
        BotConfig {
            login: login_name(7),
            channels: vec!["general".into(), "lab".into()],
            posts_per_second: posts,
            jobs_per_second: jobs,
            job: "sleep 10ms".into(),
            seed: 42,
            clock_sync: false,
        }
    }

    fn run(bot: &mut Bot, from: Millis, to: Millis) -> Vec<Output> {
        (from..=to)
            .step_by(100)
            .flat_map(|t| bot.step(Input::Tick(t)))
            .collect()
    }

    #[test]
    fn logs_in_as_bot_nnnn_and_creates_its_channels() {
        let mut bot = Bot::new(config(1.0, 0.0));
        assert_eq!(bot.config().login, "bot_0007");
        let out = bot.step(Input::ChatUp);
        assert_eq!(
            out[0],
            Output::ToChat(Message::ChatLogin {
                user: "bot_0007".into(),
                password: None,
                token: None
            })
        );
        let created: Vec<_> = out[1..]
            .iter()
            .map(|o| match o {
                Output::ToChat(Message::ChatCreate { channel }) => channel.as_str(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(created, ["general", "lab"]);
    }

    #[test]
    fn posts_and_submits_at_the_configured_mean_rate() {
        let mut bot = Bot::new(config(2.0, 0.5));
        bot.step(Input::ChatUp);
        bot.step(Input::CoordinatorUp);
        // 1,000 simulated seconds: 2,000 posts and 500 jobs expected.
        let out = run(&mut bot, 0, 1_000_000);
        let posts = out
            .iter()
            .filter(|o| matches!(o, Output::ToChat(Message::ChatPublish { .. })))
            .count();
        let jobs = out
            .iter()
            .filter(|o| matches!(o, Output::ToCoordinator(Message::Submit { .. })))
            .count();
        assert!((1800..=2200).contains(&posts), "{posts} posts");
        assert!((430..=570).contains(&jobs), "{jobs} jobs");
        let channels: std::collections::BTreeSet<_> = out
            .iter()
            .filter_map(|o| match o {
                Output::ToChat(Message::ChatPublish { channel, .. }) => Some(channel.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(channels.len(), 2, "both channels get posts");
    }

    #[test]
    fn nothing_is_saved_up_while_a_connection_is_down() {
        let mut bot = Bot::new(config(5.0, 5.0));
        let out = run(&mut bot, 0, 10_000);
        assert!(out.is_empty(), "nothing is sent while disconnected");
        assert!(bot.stats().skipped > 50, "{:?}", bot.stats());
        bot.step(Input::ChatUp);
        let out = bot.step(Input::Tick(10_100));
        assert!(out.len() <= 3, "no burst after reconnecting: {out:?}");
    }

    #[test]
    fn a_long_pause_does_not_become_a_burst() {
        let mut bot = Bot::new(config(5.0, 0.0));
        bot.step(Input::ChatUp);
        run(&mut bot, 0, 1_000);
        let out = bot.step(Input::Tick(60_000));
        assert!(out.len() <= 2, "{} posts after a minute's pause", out.len());
    }

    #[test]
    fn replies_are_counted_and_a_repeated_refusal_logged_once() {
        let mut bot = Bot::new(config(1.0, 1.0));
        let refusal = || Message::Error {
            message: "slow down".into(),
        };
        assert_eq!(bot.step(Input::FromChat(refusal())).len(), 1);
        assert!(bot.step(Input::FromChat(refusal())).is_empty());
        bot.step(Input::FromCoordinator(Message::Accepted {
            jobs: vec![crate::protocol::message::JobId(1)],
            last: None,
        }));
        assert_eq!(bot.stats().refused, 2);
        assert_eq!(bot.stats().submitted, 1);
    }

    #[test]
    fn a_rate_of_zero_never_fires() {
        let mut bot = Bot::new(config(0.0, 0.0));
        bot.step(Input::ChatUp);
        bot.step(Input::CoordinatorUp);
        assert!(run(&mut bot, 0, 100_000).is_empty());
    }

    #[test]
    fn with_policy_clock_it_joins_the_rounds_and_answers_them() {
        let mut bot = Bot::new(BotConfig {
            clock_sync: true,
            ..config(0.0, 0.0)
        });
        let out = bot.step(Input::CoordinatorUp);
        assert_eq!(out, [Output::ToCoordinator(Message::ClockJoin)]);
        bot.set_wall_clock(1_234);
        let out = bot.step(Input::FromCoordinator(Message::ClockPoll { round: 2 }));
        assert_eq!(
            out,
            [Output::ToCoordinator(Message::ClockReading {
                round: 2,
                clock_ms: 1_234
            })]
        );
        let adjust = Message::ClockAdjust {
            round: 2,
            adjust_ms: 30,
        };
        assert_eq!(
            bot.step(Input::FromCoordinator(adjust)),
            [Output::AdjustClock(30)]
        );
    }
}
