//! What a chat server does for its clients: login, channels, posts, private messages,
//! subscriptions, history and stats, each checked (logged in, rate limit, names, text).

use tracing::debug;

use super::*;

impl ChatServer {
    pub(super) fn received(&mut self, conn: ConnId, env: Envelope) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        if let Err(e) = self.clock.observe(env.clock) {
            return self.error(conn, e.to_string());
        }
        if !self.admit(conn, &env.from, &env.message) {
            return;
        }
        match env.message {
            Message::ChatLogin {
                user,
                password,
                token,
            } => self.login(conn, user, password, token),
            Message::ChatUsers => {
                let users = self.online.keys().cloned().collect();
                self.reply(conn, Message::ChatUserList { users });
            }
            Message::ChatChannels => {
                let channels = self.channels.keys().cloned().collect();
                self.reply(conn, Message::ChatChannelList { channels });
            }
            Message::ChatCreate { channel } => self.create(conn, channel),
            Message::ChatPublish { channel, text } => self.publish(conn, channel, text),
            Message::ChatDm { to, text } => self.direct(conn, to, text),
            Message::ChatOnce { request, message } => self.once(conn, request, *message),
            Message::ChatSubscribe { channel } => self.subscribe(conn, channel),
            Message::ChatEncoding { encoding } => {
                // The driver writes this connection's deliveries so from now on; the reply is
                // a line still.
                self.out.push(Output::Encoding(conn, encoding));
                self.reply(conn, Message::ChatDone { entry: None });
            }
            Message::ChatHistory {
                channel,
                with,
                limit,
            } => self.history(conn, channel, with, limit),
            message @ (Message::ChatSync { .. }
            | Message::ChatSyncMore
            | Message::ChatForgotten { .. }
            | Message::ChatReplica { .. }) => self.peer_said(conn, &env.from, message),
            Message::ChatStats => {
                let report = self.stats();
                self.reply(conn, report);
            }
            Message::Ping => self.reply(conn, Message::Pong),
            Message::ClockPoll { .. } | Message::ClockAdjust { .. } => {
                self.clock(conn, env.message)
            }
            ref m @ (Message::Election | Message::Answer | Message::Victory) => {
                match self.peer_name(conn) {
                    Some(peer) => self.election_message(&peer, m),
                    None => self.error(
                        conn,
                        format!(
                            "`{}` is accepted only from another chat server of this cluster, \
                             proven with the peer secret (hello as chat_peer)",
                            m.kind()
                        ),
                    ),
                }
            }
            Message::Subscribe { .. } => self.subscribe_events(conn),
            Message::Hello { .. } | Message::Pong => {}
            _ => self.error(
                conn,
                "not a chat message: a chat server takes chat_login, chat_users, chat_create, \
                 chat_channels, chat_publish, chat_dm, chat_subscribe, chat_encoding, chat_history, \
                 chat_stats"
                    .to_string(),
            ),
        }
    }

    /// `chat_once`: a request that may come twice (from a broker retrying it on another
    /// server). If an entry was made for it already — here, or on a server that passed it on —
    /// the answer is that entry; otherwise the request is carried out, its entry marked.
    pub(super) fn once(&mut self, conn: ConnId, request: String, message: Message) {
        let Some(user) = self.logged_in(conn) else {
            return;
        };
        if request.is_empty() || request.len() > 128 || request.chars().any(char::is_control) {
            return self.error(
                conn,
                "chat_once needs a request id of 1 to 128 characters".into(),
            );
        }
        if let Some(entry) = self.made_for(&user, &request).cloned() {
            return self.reply(
                conn,
                Message::ChatDone {
                    entry: Some(Box::new(entry)),
                },
            );
        }
        self.request = Some(request);
        match message {
            Message::ChatCreate { channel } => self.create(conn, channel),
            Message::ChatPublish { channel, text } => self.publish(conn, channel, text),
            Message::ChatDm { to, text } => self.direct(conn, to, text),
            other => self.error(
                conn,
                format!(
                    "chat_once carries chat_publish, chat_dm or chat_create, not {}",
                    other.kind()
                ),
            ),
        }
        self.request = None;
    }

    /// The time master reads this server's clock (`clock_poll`), or moves it (`clock_adjust`,
    /// answered with the clock as moved, so the master's kept connection stays in step). Only
    /// a master of the topology, proven with the peer secret, may.
    pub(super) fn clock(&mut self, conn: ConnId, message: Message) {
        let master = self
            .conns
            .get(&conn)
            .is_some_and(|c| matches!(c.trusted, Some(super::trust::Trusted::Master(_))))
            || self
                .peer_name(conn)
                .is_some_and(|peer| self.polled_by(&peer));
        let (moved, answer) =
            crate::role::coordinator::answer_time_master(&message, master, &mut self.wall_ms);
        self.out.extend(moved.map(Output::AdjustClock));
        self.reply(conn, answer);
    }

    /// The chat server on this connection, if one proved to be one.
    fn peer_name(&self, conn: ConnId) -> Option<String> {
        match &self.conns.get(&conn)?.trusted {
            Some(super::trust::Trusted::Peer(name)) => Some(name.clone()),
            _ => None,
        }
    }

    /// `chat_create`: a channel, unless it exists already.
    pub(super) fn create(&mut self, conn: ConnId, channel: String) {
        let Some(user) = self.logged_in(conn) else {
            return;
        };
        if let Err(e) = check_name("channel", &channel, true).map_err(|e| e.to_string()) {
            return self.error(conn, e);
        }
        if !self.allow(conn) {
            return;
        }
        let entry = if self.channels.contains_key(&channel) {
            None
        } else if self.channels.len() >= super::MAX_CHANNELS {
            return self.error(
                conn,
                format!(
                    "this chat server has {} channels, the most it keeps: post to one of them",
                    super::MAX_CHANNELS
                ),
            );
        } else {
            Some(self.new_entry(ChatBody::Channel {
                channel: channel.into(),
                by: user.into(),
            }))
        };
        self.reply(
            conn,
            Message::ChatDone {
                entry: entry.map(Box::new),
            },
        );
    }

    /// `chat_publish`: a post to a channel that exists.
    pub(super) fn publish(&mut self, conn: ConnId, channel: String, text: String) {
        let Some(user) = self.logged_in(conn) else {
            return;
        };
        if !self.channels.contains_key(&channel) {
            return self.unknown_channel(conn, &channel);
        }
        if let Err(e) = check_text(&text) {
            return self.error(conn, e);
        }
        if !self.allow(conn) {
            return;
        }
        let entry = self.new_entry(ChatBody::Post {
            channel: channel.into(),
            from: user.into(),
            text: text.into(),
        });
        self.reply(
            conn,
            Message::ChatDone {
                entry: Some(Box::new(entry)),
            },
        );
    }

    /// `chat_dm`: a private message.
    pub(super) fn direct(&mut self, conn: ConnId, to: String, text: String) {
        let Some(user) = self.logged_in(conn) else {
            return;
        };
        if let Err(e) = check_name("user", &to, false)
            .map_err(|e| e.to_string())
            .and_then(|()| check_text(&text))
        {
            return self.error(conn, e);
        }
        if !self.allow(conn) {
            return;
        }
        let entry = self.new_entry(ChatBody::Direct {
            from: user.into(),
            to: to.into(),
            text: text.into(),
        });
        self.reply(
            conn,
            Message::ChatDone {
                entry: Some(Box::new(entry)),
            },
        );
    }

    /// `chat_subscribe`: live deliveries of a channel (or of everything, `*`).
    pub(super) fn subscribe(&mut self, conn: ConnId, channel: String) {
        if channel != "*" && !self.channels.contains_key(&channel) {
            return self.unknown_channel(conn, &channel);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.everything |= channel == "*";
            c.channels.insert(channel);
        }
        self.reply(conn, Message::ChatDone { entry: None });
    }

    /// Another chat server (proven) linked to this one: at its first word it is asked for its
    /// entries, and it gets this server's.
    pub(super) fn peer_said(&mut self, conn: ConnId, from: &str, message: Message) {
        let first = self
            .conns
            .get_mut(&conn)
            .is_some_and(|c| !std::mem::replace(&mut c.linked, true));
        if first {
            tracing::info!(conn, from = %from, "a chat server linked to this one");
            let have = self.held_upto();
            self.send_link(&Link::Conn(conn), Message::ChatSync { have });
        }
        self.on_link(Link::Conn(conn), message);
    }

    /// `chat_stats`: this server's counts.
    pub(super) fn stats(&self) -> Message {
        Message::ChatStatsReport(Box::new(ChatStats {
            server: self.config.name.clone(),
            users: self.online.len(),
            channels: self.channels.len(),
            entries: self.entries.len(),
            dropped: self.dropped,
            throttled: self.throttled,
            evicted: self.evicted,
            duplicates: self.duplicates,
            plaintext: self.plaintext,
        }))
    }

    pub(super) fn login(
        &mut self,
        conn: ConnId,
        user: String,
        password: Option<String>,
        token: Option<String>,
    ) {
        if let Err(e) = check_name("user", &user, false).map_err(|e| e.to_string()) {
            return self.error(conn, e);
        }
        if self
            .conns
            .get(&conn)
            .and_then(|c| c.user.as_ref())
            .is_some()
        {
            return self.error(conn, "already logged in on this connection".to_string());
        }
        if let Some(&other) = self.online.get(&user)
            && other != conn
        {
            return self.error(conn, format!("`{user}` is already logged in here"));
        }
        let mut new_token = None;
        // The launcher's console (proven with the peer secret) needs no account.
        let launcher = self.conns.get(&conn).is_some_and(|c| c.trusted.is_some());
        if !self.config.users.is_empty() && !launcher {
            let by_token = token
                .as_ref()
                .is_some_and(|t| self.tokens.get(t) == Some(&user));
            let by_password = self
                .config
                .users
                .iter()
                .any(|u| u.name == user && Some(&u.password) == password.as_ref());
            if !by_token && !by_password {
                return self.error(conn, format!("wrong user or password for `{user}`"));
            }
            let t = format!("{:016x}", self.rng.random::<u64>());
            self.tokens.insert(t.clone(), user.clone());
            new_token = Some(t);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.user = Some(user.clone());
        }
        self.online.insert(user.clone(), conn);
        debug!(%user, conn, "logged in");
        self.reply(
            conn,
            Message::ChatWelcome {
                user,
                server: self.config.name.clone(),
                token: new_token,
            },
        );
    }

    pub(super) fn history(
        &mut self,
        conn: ConnId,
        channel: Option<String>,
        with: Option<String>,
        limit: Option<usize>,
    ) {
        let limit = limit.unwrap_or(DEFAULT_HISTORY).min(100_000);
        let wanted: Vec<ChatEntry> = match (channel, with) {
            (Some(channel), None) => {
                if !self.channels.contains_key(&channel) {
                    return self.unknown_channel(conn, &channel);
                }
                self.entries
                    .values()
                    .filter(|e| self.shown(e))
                    .filter(|e| match &e.body {
                        ChatBody::Post { channel: c, .. }
                        | ChatBody::Channel { channel: c, .. } => *c == channel,
                        ChatBody::Direct { .. } => false,
                    })
                    .cloned()
                    .collect()
            }
            (None, Some(other)) => {
                let Some(me) = self.logged_in(conn) else {
                    return;
                };
                self.entries
                    .values()
                    .filter(|e| self.shown(e))
                    .filter(|e| match &e.body {
                        ChatBody::Direct { from, to, .. } => {
                            (*from == me && *to == other) || (*from == other && *to == me)
                        }
                        _ => false,
                    })
                    .cloned()
                    .collect()
            }
            _ => {
                return self.error(
                    conn,
                    "chat_history needs `channel`, or `with` (a user) for private messages"
                        .to_string(),
                );
            }
        };
        // In parts that each fit in a line a client reads (64 KiB).
        let wanted = &wanted[wanted.len().saturating_sub(limit)..];
        let mut part: Vec<ChatEntry> = Vec::new();
        let mut size = 0;
        for entry in wanted {
            let len = serde_json::to_string(entry).map_or(0, |s| s.len()) + 1;
            if size + len > HISTORY_PART_BYTES && !part.is_empty() {
                let entries = std::mem::take(&mut part);
                self.reply(
                    conn,
                    Message::ChatHistoryList {
                        entries,
                        more: true,
                    },
                );
                size = 0;
            }
            size += len;
            part.push(entry.clone());
        }
        self.reply(
            conn,
            Message::ChatHistoryList {
                entries: part,
                more: false,
            },
        );
    }

    pub(super) fn disconnected(&mut self, conn: ConnId) {
        // Its writer is let go after what it was told before: `echo … | nc` gets its answer.
        self.out.push(Output::Close(conn));
        if let Some(c) = self.conns.remove(&conn)
            && let Some(user) = c.user
            && self.online.get(&user) == Some(&conn)
        {
            self.online.remove(&user);
        }
    }

    /// The user logged in on `conn`, or an error to it.
    pub(super) fn logged_in(&mut self, conn: ConnId) -> Option<String> {
        let user = self.conns.get(&conn).and_then(|c| c.user.clone());
        if user.is_none() {
            self.error(conn, "log in first (chat_login)".to_string());
        }
        user
    }

    /// Takes one token from the connection's bucket, or refuses (and counts) the message.
    pub(super) fn allow(&mut self, conn: ConnId) -> bool {
        let (rate, burst, now) = (self.config.rate_per_sec, self.config.burst, self.now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if rate <= 0.0 {
            return true;
        }
        let elapsed = now.saturating_sub(c.refilled_at) as f64 / 1000.0;
        c.tokens = (c.tokens + elapsed * rate).min(burst);
        c.refilled_at = now;
        if c.tokens >= 1.0 {
            c.tokens -= 1.0;
            return true;
        }
        self.throttled += 1;
        self.error(
            conn,
            format!("slow down: at most {rate} messages a second (bursts of {burst})"),
        );
        false
    }

    pub(super) fn unknown_channel(&mut self, conn: ConnId, channel: &str) {
        let known: Vec<&str> = self.channels.keys().map(String::as_str).collect();
        let hint = match crate::topology::diagnostic::did_you_mean(channel, known.iter().copied()) {
            Some(near) => format!(" ({near})"),
            None if known.is_empty() => " (there are none yet: chat_create makes one)".into(),
            None => format!(" (channels: {})", known.join(", ")),
        };
        self.error(conn, format!("no channel named `{channel}`{hint}"));
    }
}

fn check_text(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("the message is empty".to_string());
    }
    if text.chars().count() > MAX_TEXT {
        return Err(format!(
            "the message is longer than {MAX_TEXT} characters ({})",
            text.chars().count()
        ));
    }
    Ok(())
}
