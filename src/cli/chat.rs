//! `tcluster client TOPOLOGY chat …`: talk to a chat server — post, read the history, follow a
//! channel live, send private messages.
//!
//! The server is `--server NAME` (a chat node of the topology) or `--server HOST:PORT`; without
//! it, the first chat server that answers — of the cluster running on the topology's state
//! directory, else the topology's. A `tail` whose server goes moves to the next one, as the
//! console's Chat pane does. Exit status: 0 success; 1 no chat server could be reached, or it
//! refused the request (the reason is printed).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use tokio::runtime::Runtime;

use crate::client::{Client, ClientError};
use crate::protocol::message::{ChatBody, ChatEntry, ChatStats, Message};
use crate::topology::{NodeKind, Topology};

/// `tcluster client TOPOLOGY chat` arguments.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The chat server: a chat node's name, or HOST:PORT. Default: the first that answers.
    #[arg(long, global = true)]
    pub server: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: ChatCommand,
}

/// Chat commands.
#[derive(Debug, Subcommand)]
pub enum ChatCommand {
    /// Post TEXT to CHANNEL (created if it does not exist).
    Send {
        channel: String,
        text: String,
        /// Who posts it.
        #[arg(long = "as", value_name = "USER")]
        user: String,
    },
    /// Print CHANNEL's history: one line per message, in the order every server agrees on.
    History {
        channel: String,
        /// At most this many (the latest).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Print CHANNEL's new messages as they arrive, until interrupted.
    Tail {
        /// The channel (`*` for everything).
        channel: String,
    },
    /// Send a private message to USER.
    Dm {
        /// The recipient.
        to: String,
        text: String,
        /// Who sends it.
        #[arg(long = "as", value_name = "USER")]
        user: String,
    },
    /// List the channels.
    Channels,
    /// List the users logged in on the server.
    Users,
    /// The server's counters: users, channels, entries, deliveries dropped, messages throttled.
    Stats,
}

/// Runs a chat command; `running` are the chat servers of the cluster running now, if any.
pub fn run(
    topology: &Topology,
    args: ChatArgs,
    running: Option<Vec<String>>,
    password: Option<String>,
    json: bool,
) -> ExitCode {
    let found = match (&args.server, running) {
        (None, Some(running)) => Ok(running),
        (server, _) => servers(topology, server.as_deref()),
    };
    let servers = match found {
        Ok(servers) => servers,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let secret = topology.globals.cluster_secret.clone();
    match runtime.block_on(chat(servers, secret, args.command, password, json)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The chat servers to try, in order: the topology's brokers if it has any (`--server` may
/// still name a chat server or a broker).
fn servers(topology: &Topology, server: Option<&str>) -> Result<Vec<String>, String> {
    let brokers: Vec<_> = topology.nodes_of(NodeKind::Broker).collect();
    let chat: Vec<_> = match server {
        Some(_) => topology
            .nodes_of(NodeKind::Chat)
            .chain(brokers.iter().copied())
            .collect(),
        None if !brokers.is_empty() => brokers,
        None => topology.nodes_of(NodeKind::Chat).collect(),
    };
    match server {
        Some(s) if s.contains(':') => Ok(vec![s.to_string()]),
        Some(name) => {
            let Some(node) = chat.iter().find(|n| n.name == name) else {
                let names: Vec<&str> = chat.iter().map(|n| n.name.as_str()).collect();
                let hint = crate::topology::diagnostic::did_you_mean(name, names.iter().copied())
                    .map(|n| format!(": {n}"))
                    .unwrap_or_else(|| format!(" (chat servers: {})", names.join(", ")));
                return Err(format!(
                    "the topology has no chat server named `{name}`{hint}"
                ));
            };
            match node.port {
                Some(port) => Ok(vec![format!("{}:{port}", node.address)]),
                None => Err(format!(
                    "`{name}` has no port in the topology (tcluster picks one when it launches the cluster): pass --server HOST:PORT"
                )),
            }
        }
        None => {
            let addrs: Vec<String> = chat
                .iter()
                .filter_map(|n| Some(format!("{}:{}", n.address, n.port?)))
                .collect();
            if addrs.is_empty() {
                let what = match chat.first().map(|n| n.kind) {
                    Some(NodeKind::Broker) => "broker",
                    _ => "chat server",
                };
                return Err(format!(
                    "no {what} of the topology is running (none found in its state directory), \
                     and none has a port in the file: start the cluster, or pass --server HOST:PORT"
                ));
            }
            Ok(addrs)
        }
    }
}

/// Connects to the first server that answers, starting with the one after `after` (the one
/// that was just lost, if any). Returns its address and the connection.
async fn connect(
    servers: &[String],
    secret: Option<&str>,
    after: Option<&str>,
) -> Result<(String, Client), ClientError> {
    let start = after
        .and_then(|a| servers.iter().position(|s| s == a))
        .map_or(0, |i| i + 1);
    let mut last = ClientError::Closed;
    for addr in servers.iter().cycle().skip(start).take(servers.len()) {
        match Client::connect(addr, "client", secret).await {
            Ok(client) => return Ok((addr.clone(), client)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Sends a request and returns its reply, or the server's error as an error.
async fn ask(client: &mut Client, message: Message, json: bool) -> Result<Message, String> {
    let reply = client.request(message).await.map_err(|e| e.to_string())?;
    if json {
        outln!("{}", serde_json::to_string(&reply).unwrap_or_default());
    }
    match reply {
        Message::Error { message } => Err(message),
        other => Ok(other),
    }
}

async fn login(
    client: &mut Client,
    user: &str,
    password: Option<String>,
    json: bool,
) -> Result<(), String> {
    ask(
        client,
        Message::ChatLogin {
            user: user.to_string(),
            password,
            token: None,
        },
        json,
    )
    .await
    .map(|_| ())
}

async fn chat(
    servers: Vec<String>,
    secret: Option<String>,
    command: ChatCommand,
    password: Option<String>,
    json: bool,
) -> Result<(), String> {
    let (addr, mut client) = connect(&servers, secret.as_deref(), None)
        .await
        .map_err(|e| {
            format!(
                "no chat server answered (tried {}): {e}",
                servers.join(", ")
            )
        })?;
    match command {
        ChatCommand::Send {
            channel,
            text,
            user,
        } => {
            login(&mut client, &user, password, json).await?;
            ask(
                &mut client,
                Message::ChatCreate {
                    channel: channel.clone(),
                },
                json,
            )
            .await?;
            let reply = ask(&mut client, Message::ChatPublish { channel, text }, json).await?;
            if let (false, Message::ChatDone { entry: Some(entry) }) = (json, reply) {
                outln!("{}", line(&entry));
            }
        }
        ChatCommand::Dm { to, text, user } => {
            login(&mut client, &user, password, json).await?;
            let reply = ask(&mut client, Message::ChatDm { to, text }, json).await?;
            if let (false, Message::ChatDone { entry: Some(entry) }) = (json, reply) {
                outln!("{}", line(&entry));
            }
        }
        ChatCommand::History { channel, limit } => {
            let reply = ask(
                &mut client,
                Message::ChatHistory {
                    channel: Some(channel),
                    with: None,
                    limit,
                },
                json,
            )
            .await?;
            let mut part = reply;
            while let Message::ChatHistoryList { entries, more } = part {
                if !json {
                    for entry in entries
                        .iter()
                        .filter(|e| !matches!(e.body, ChatBody::Channel { .. }))
                    {
                        outln!("{}", line(entry));
                    }
                }
                if !more {
                    break;
                }
                part = client.receive().await.map_err(|e| e.to_string())?.message;
                if json {
                    outln!("{}", serde_json::to_string(&part).unwrap_or_default());
                }
            }
        }
        ChatCommand::Tail { channel } => {
            return tail(&servers, secret.as_deref(), addr, client, channel, json).await;
        }
        ChatCommand::Channels => {
            if let (false, Message::ChatChannelList { channels }) =
                (json, ask(&mut client, Message::ChatChannels, json).await?)
            {
                for channel in channels {
                    outln!("{channel}");
                }
            }
        }
        ChatCommand::Stats => {
            if let (false, Message::ChatStatsReport(stats)) =
                (json, ask(&mut client, Message::ChatStats, json).await?)
            {
                let ChatStats {
                    server,
                    users,
                    channels,
                    entries,
                    dropped,
                    throttled,
                    evicted,
                    duplicates,
                    plaintext,
                } = *stats;
                outln!("server     {server}");
                outln!("users      {users}");
                outln!("channels   {channels}");
                outln!("entries    {entries}");
                outln!(
                    "dropped    {dropped} (live deliveries to subscribers that read too slowly)"
                );
                outln!("throttled  {throttled} (messages refused: more than the rate allows)");
                outln!(
                    "duplicates {duplicates} (second entries for one retried request, shown to nobody)"
                );
                outln!(
                    "evicted    {evicted} (connections that never logged in, closed to make room)"
                );
                if plaintext > 0 {
                    outln!(
                        "plaintext  {plaintext} (connections refused: they did not speak TLS to this encrypted port)"
                    );
                }
            }
        }
        ChatCommand::Users => {
            if let (false, Message::ChatUserList { users }) =
                (json, ask(&mut client, Message::ChatUsers, json).await?)
            {
                // Logins are per server: an empty list says which server it was.
                if users.is_empty() {
                    eprintln!(
                        "nobody is logged in on the chat server at {addr} (logins are per server: --server asks another)"
                    );
                }
                for user in users {
                    outln!("{user}");
                }
            }
        }
    }
    Ok(())
}

/// Prints a channel's new messages as they arrive, until interrupted (Ctrl-C ends the tail, and
/// at the prompt only the tail). When its server goes, it says so and carries on with the next
/// one that answers; what was posted meanwhile is in `chat history`.
async fn tail(
    servers: &[String],
    secret: Option<&str>,
    mut addr: String,
    mut client: Client,
    channel: String,
    json: bool,
) -> Result<(), String> {
    let subscribe = || Message::ChatSubscribe {
        channel: channel.clone(),
    };
    ask(&mut client, subscribe(), json).await?;
    let mut delay = std::time::Duration::from_millis(200);
    loop {
        let envelope = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            e = client.receive() => e,
        };
        match envelope {
            Ok(envelope) => {
                if let Message::ChatMessage { entry } = envelope.message {
                    if json {
                        outln!("{}", serde_json::to_string(&entry).unwrap_or_default());
                    } else {
                        outln!("{}", line(&entry));
                    }
                }
            }
            Err(e) => {
                eprintln!("lost the chat server at {addr} ({e}); moving to another");
                loop {
                    let next = tokio::select! {
                        _ = tokio::signal::ctrl_c() => return Ok(()),
                        next = connect(servers, secret, Some(&addr)) => next,
                    };
                    if let Ok((next_addr, mut next)) = next
                        && ask(&mut next, subscribe(), json).await.is_ok()
                    {
                        eprintln!(
                            "following {channel} on {next_addr} (messages posted meanwhile: chat history)"
                        );
                        (addr, client) = (next_addr, next);
                        delay = std::time::Duration::from_millis(200);
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(2));
                }
            }
        }
    }
}

/// One message as a line: clock, sender, text (`#channel` or `→ recipient` in between).
pub fn line(entry: &ChatEntry) -> String {
    match &entry.body {
        ChatBody::Post {
            channel,
            from,
            text,
        } => format!("[{}] #{channel} {from}: {text}", entry.clock),
        ChatBody::Direct { from, to, text } => format!("[{}] {from} → {to}: {text}", entry.clock),
        ChatBody::Channel { channel, by } => {
            format!("[{}] #{channel} created by {by}", entry.clock)
        }
    }
}
