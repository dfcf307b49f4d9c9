//! The bot's driver: two [`Link`]s (one to a chat server, one to the primary coordinator), a
//! ticker, and the [`Bot`] state machine between them.
//!
//! A killed chat server's bot moves to the next chat server and logs in there; after a failover
//! it submits to the new primary. Every ten seconds it logs what it has done.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::client::{Link, LinkNews, Pick};
use crate::protocol::message::PeerRole;
use crate::role::bot::{Bot, BotConfig, Input, Output};

use super::control::NodeControl;

/// Where and how a bot connects.
#[derive(Debug, Clone)]
pub struct BotOptions {
    /// The node's name (`bot-1`); the chat login is in `config`.
    pub name: String,
    /// What it does.
    pub config: BotConfig,
    /// Every master, as (name, address), to find the primary.
    pub masters: Vec<(String, String)>,
    /// Every chat server, as (name, address).
    pub chat_servers: Vec<(String, String)>,
    /// `CLUSTER_SECRET`, if the cluster has one.
    pub secret: Option<String>,
    /// Print `READY <name> as <login>` on stdout once started.
    pub announce: bool,
    /// Clock skew and pause.
    pub control: NodeControl,
}

/// How often the bot looks at its schedule.
const TICK: Duration = Duration::from_millis(20);
/// How often it logs what it has done.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Runs a bot until `shutdown` is cancelled.
pub async fn run(options: BotOptions, shutdown: CancellationToken) {
    let started = Instant::now();
    let mut pause = options.control.clone();
    let mut bot = Bot::new(options.config.clone());
    let wants_chat = options.config.posts_per_second > 0.0;
    let wants_jobs = options.config.jobs_per_second > 0.0;
    let addresses = |servers: &[(String, String)]| servers.iter().map(|(_, a)| a.clone()).collect();
    let names: std::collections::HashMap<String, String> = options
        .masters
        .iter()
        .chain(&options.chat_servers)
        .map(|(n, a)| (a.clone(), n.clone()))
        .collect();
    let name_of = |addr: &str| names.get(addr).cloned().unwrap_or_else(|| addr.to_string());
    let mut chat = (wants_chat && !options.chat_servers.is_empty()).then(|| {
        Link::spawn(
            addresses(&options.chat_servers),
            options.name.clone(),
            options.secret.clone().map(|s| (s, PeerRole::Client)),
            Pick::Any,
            shutdown.clone(),
        )
    });
    // The primary also reads its clock, with `policy clock`.
    let wants_primary = wants_jobs || options.config.clock_sync;
    let mut coordinator = (wants_primary && !options.masters.is_empty()).then(|| {
        Link::spawn(
            addresses(&options.masters),
            options.name.clone(),
            options.secret.clone().map(|s| (s, PeerRole::Client)),
            Pick::Primary,
            shutdown.clone(),
        )
    });
    if wants_chat && chat.is_none() {
        warn!("this bot posts, but the topology has no chat server to post to");
    }
    if wants_jobs && coordinator.is_none() {
        warn!("this bot submits jobs, but no master has an address");
    }
    if options.announce {
        println!("READY {} as {}", options.name, options.config.login);
    }
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_report = Instant::now();
    let mut reported = bot.stats();
    loop {
        pause.wait_while_paused().await;
        let input = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => Input::Tick(options.control.now(started)),
            Some(news) = next(&mut chat) => match news {
                LinkNews::Up(addr) => {
                    let server = name_of(&addr);
                    let login = &options.config.login;
                    info!(%server, %login, "posting to {server} as {login}");
                    Input::ChatUp
                }
                LinkNews::Down(addr, why) => {
                    let server = name_of(&addr);
                    warn!(%server, "lost {server} ({why}); looking for another chat server");
                    Input::ChatDown
                }
                LinkNews::Message(m) => Input::FromChat(m),
            },
            Some(news) = next(&mut coordinator) => match news {
                LinkNews::Up(addr) => {
                    let primary = name_of(&addr);
                    info!(%primary, "submitting jobs to {primary}");
                    Input::CoordinatorUp
                }
                LinkNews::Down(addr, why) => {
                    let master = name_of(&addr);
                    warn!(%master, "lost {master} ({why}); looking for the primary");
                    Input::CoordinatorDown
                }
                LinkNews::Message(m) => Input::FromCoordinator(m),
            },
        };
        bot.set_wall_clock(options.control.wall_ms());
        for output in bot.step(input) {
            match output {
                Output::AdjustClock(ms) => {
                    info!(by_ms = ms, "clock adjusted by the time master");
                    options.control.adjust(ms);
                }
                Output::ToChat(m) => {
                    if let Some(link) = &chat {
                        link.send(m);
                    }
                }
                Output::ToCoordinator(m) => {
                    if let Some(link) = &coordinator {
                        link.send(m);
                    }
                }
                Output::Log(text) => warn!("{text}"),
            }
        }
        if last_report.elapsed() >= REPORT_EVERY {
            let s = bot.stats();
            if s != reported {
                info!(
                    posted = s.posted,
                    submitted = s.submitted,
                    refused = s.refused,
                    skipped = s.skipped,
                    "{} posts, {} jobs so far",
                    s.posted,
                    s.submitted
                );
                reported = s;
            }
            last_report = Instant::now();
        }
    }
    let s = bot.stats();
    info!(
        posted = s.posted,
        submitted = s.submitted,
        refused = s.refused,
        skipped = s.skipped,
        "stopping after {} posts and {} jobs",
        s.posted,
        s.submitted
    );
}

/// The next news of a link that may not exist (then never).
async fn next(link: &mut Option<Link>) -> Option<LinkNews> {
    match link {
        Some(link) => link.news.recv().await,
        None => std::future::pending().await,
    }
}
