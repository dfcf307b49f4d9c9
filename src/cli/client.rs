//! `tcluster client TOPOLOGY [COMMAND]`: talk to the coordinator — one command for scripts, or an
//! interactive prompt with line editing and history.
//!
//! Exit status: 0 success; 1 the coordinator could not be reached or refused the request;
//! 2 usage error; 3 a job waited for with `--wait` failed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tokio::runtime::Runtime;

use crate::client::{Client, ClientError, find_primary};
use crate::node::master_addresses;
use crate::protocol::message::{JobId, JobState, JobView, Message, StatusReport, WorkerView};
use crate::role::coordinator::DEFAULT_LIST_LIMIT;
use crate::topology::NodeKind;

/// `tcluster client` arguments.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The topology file, for the coordinator's address and the cluster secret.
    #[arg(value_name = "TOPOLOGY")]
    pub topology: PathBuf,

    /// The coordinator's address, if not the topology's (`127.0.0.1:7400`); several, separated
    /// by commas, to find whichever is primary. Without it: the masters of the cluster running
    /// on the state directory (as `tcluster TOPOLOGY` launched it), else the topology's.
    #[arg(long, value_name = "HOST:PORT")]
    pub coordinator: Option<String>,

    /// The state directory the cluster was launched with, if not the default (the topology's
    /// STATE_DIR, else $XDG_STATE_HOME/tcluster/<system>): where a running cluster says where
    /// it listens.
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// Log in as this account (when the topology has `user` accounts).
    #[arg(long, env = "TCLUSTER_USER")]
    pub user: Option<String>,

    /// The account's password.
    #[arg(long, env = "TCLUSTER_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// Print replies as JSON lines, as the coordinator sent them.
    #[arg(long)]
    pub json: bool,

    /// The cluster to talk to, in a topology of several (`cluster NAME` on its nodes); the
    /// default cluster when not given.
    #[arg(long, value_name = "NAME", global = true)]
    pub cluster: Option<String>,

    /// A command to run; without one, an interactive prompt opens.
    #[command(subcommand)]
    pub command: Option<ClientCommand>,
}

/// One-shot client commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Submit a job: `sleep 2s`, `cpu 200000`, `echo TEXT`, `fail WHY`, or any text.
    Submit {
        /// The job's data (quote it if it has spaces).
        data: String,
        /// How many copies.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Higher runs first.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i32,
        /// Wait until every job ends and print the results (exit 3 if any failed).
        #[arg(long)]
        wait: bool,
    },
    /// One job (`status JOB-3`), or the whole cluster (`status`).
    Status {
        /// The job's id.
        job: Option<String>,
    },
    /// List jobs.
    Jobs {
        /// Only jobs in this state: queued, assigned, running, completed, failed.
        #[arg(long)]
        state: Option<String>,
        /// At most this many (the newest).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// List workers.
    Workers,
    /// Talk to a chat server: `chat send general "hi" --as ada`, `chat history general`,
    /// `chat tail general`, `chat dm bob "psst" --as ada`, `chat channels`, `chat users`.
    Chat(super::chat::ChatArgs),
}

const EXIT_UNREACHABLE: u8 = 1;
const EXIT_JOB_FAILED: u8 = 3;

/// Runs `tcluster client`.
pub fn run(args: ClientArgs) -> ExitCode {
    let Some((topology, _)) = super::check::load(&args.topology) else {
        return ExitCode::from(1);
    };
    super::trust_cluster(&topology, args.state_dir.as_deref());
    // Chat commands talk to a chat server, not to the coordinator.
    let command = match args.command {
        Some(ClientCommand::Chat(chat)) => {
            let running = super::chat_entry_points(&topology, args.state_dir.as_deref());
            return super::chat::run(&topology, chat, running, args.password.clone(), args.json);
        }
        other => other,
    };
    let cluster = match &args.cluster {
        Some(c) if !topology.clusters().contains(&c.as_str()) => {
            eprintln!(
                "error: no cluster is called `{c}` in {} (its clusters: {})",
                args.topology.display(),
                topology.clusters().join(", ")
            );
            return ExitCode::from(2);
        }
        Some(c) => c.clone(),
        None => topology
            .primary()
            .map_or(crate::topology::DEFAULT_CLUSTER.to_string(), |p| {
                p.cluster.clone()
            }),
    };
    // A topology of chat servers alone runs no jobs: nothing here to ask.
    if args.coordinator.is_none() && topology.nodes_of(NodeKind::Master).next().is_none() {
        eprintln!(
            "error: this topology has no master, so it runs no jobs and keeps no cluster status; \
             its chat servers answer `tcluster client FILE chat …`"
        );
        return ExitCode::from(1);
    }
    // Every master: those of the cluster running now on the topology's state directory (its
    // ports may have been picked at launch), else those the topology gives an address.
    let masters: Vec<String> = match &args.coordinator {
        Some(list) => list
            .split(',')
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect(),
        None => {
            match super::running_servers(
                &topology,
                args.state_dir.as_deref(),
                NodeKind::Master,
                Some(&cluster),
            ) {
                Some(addrs) => addrs,
                None => match master_addresses(&topology, &cluster) {
                    Ok(addrs) => addrs,
                    Err(e) => {
                        eprintln!(
                            "error: {e}, or launch it first (no cluster of this topology is running on {})",
                            super::state_dir_of(&topology, args.state_dir.as_deref()).display()
                        );
                        return ExitCode::from(1);
                    }
                },
            }
        }
    };
    if masters.is_empty() {
        eprintln!("error: --coordinator is empty");
        return ExitCode::from(2);
    }
    let runtime = match Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let name = args.user.clone().unwrap_or_else(|| "client".to_string());
    let secret = topology.globals.cluster_secret.clone();
    let tried = masters.join(", ");
    let mut session = match runtime.block_on(Session::open(masters, name, secret, args.json)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: no master answered (tried {tried}): {e}");
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };
    let addr = session.addr.clone();
    if let (Some(user), Some(password)) = (&args.user, &args.password)
        && let Err(code) = runtime.block_on(session.login(user, password))
    {
        return code;
    }
    match command {
        Some(command) => match runtime.block_on(session.one_shot(command)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(code) => code,
        },
        None => {
            let chat = ChatContext {
                topology: &topology,
                password: args.password.clone(),
                state_dir: args.state_dir.clone(),
            };
            prompt(&runtime, &mut session, &addr, chat)
        }
    }
}

/// A connection plus what the user has told it (the login token, the output format).
struct Session {
    client: Client,
    /// The master it talks to.
    addr: String,
    /// Every master, to find the primary again after a failover.
    masters: Vec<String>,
    name: String,
    secret: Option<String>,
    token: Option<String>,
    json: bool,
}

impl Session {
    async fn open(
        masters: Vec<String>,
        name: String,
        secret: Option<String>,
        json: bool,
    ) -> Result<Session, ClientError> {
        let (addr, client) = find_primary(&masters, &name, secret.as_deref()).await?;
        Ok(Session {
            client,
            addr,
            masters,
            name,
            secret,
            token: None,
            json,
        })
    }

    /// Connects again to whichever master is primary now (after a failover).
    async fn reconnect(&mut self) -> Result<(), ClientError> {
        let (addr, client) =
            find_primary(&self.masters, &self.name, self.secret.as_deref()).await?;
        if addr != self.addr {
            eprintln!("now talking to the primary at {addr}");
        }
        self.addr = addr;
        self.client = client;
        Ok(())
    }

    /// Sends a request; an error reply is printed and becomes exit status 1.
    async fn ask(&mut self, message: Message) -> Result<Message, ExitCode> {
        match self.client.request(message).await {
            Ok(Message::Error { message }) => {
                eprintln!("error: {message}");
                Err(ExitCode::from(1))
            }
            Ok(reply) => {
                if self.json {
                    outln!("{}", serde_json::to_string(&reply).unwrap_or_default());
                }
                Ok(reply)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Err(ExitCode::from(EXIT_UNREACHABLE))
            }
        }
    }

    async fn login(&mut self, user: &str, password: &str) -> Result<(), ExitCode> {
        if let Message::LoggedIn { token, role } = self
            .ask(Message::Login {
                user: user.into(),
                password: password.into(),
            })
            .await?
        {
            if !self.json {
                outln!("logged in as {user} ({role})");
            }
            self.token = Some(token);
        }
        Ok(())
    }

    async fn one_shot(&mut self, command: ClientCommand) -> Result<(), ExitCode> {
        match command {
            ClientCommand::Submit {
                data,
                count,
                priority,
                wait,
            } => self.submit(data, count, priority, wait).await,
            ClientCommand::Status { job } => self.status(job.as_deref()).await,
            ClientCommand::Jobs { state, limit } => self.jobs(state.as_deref(), limit).await,
            ClientCommand::Workers => self.workers().await,
            // Handled before the coordinator is reached.
            ClientCommand::Chat(_) => Ok(()),
        }
    }

    async fn submit(
        &mut self,
        data: String,
        count: u32,
        priority: i32,
        wait: bool,
    ) -> Result<(), ExitCode> {
        let token = self.token.clone();
        let reply = self
            .ask(Message::Submit {
                data,
                count,
                priority,
                token,
                notify: wait,
            })
            .await?;
        let Message::Accepted { jobs, last } = reply else {
            return Ok(());
        };
        let jobs = crate::protocol::message::accepted_ids(&jobs, last);
        if !self.json {
            outln!("accepted {}", id_list(&jobs));
        }
        if !wait {
            return Ok(());
        }
        let mut left = jobs.len();
        let mut failed = 0;
        while left > 0 {
            match self.client.receive().await {
                Ok(env) => {
                    if let Message::JobFinished { job, state, result } = env.message {
                        left -= 1;
                        if state == JobState::Failed {
                            failed += 1;
                        }
                        if self.json {
                            outln!(
                                "{}",
                                serde_json::json!({"job": job, "state": state, "result": result})
                            );
                        } else {
                            outln!("{job} {state}: {result}");
                        }
                    }
                }
                Err(e) => {
                    eprintln!("error: {e} while waiting for {left} jobs");
                    return Err(ExitCode::from(EXIT_UNREACHABLE));
                }
            }
        }
        if failed > 0 {
            eprintln!("{failed} of {} jobs failed", jobs.len());
            return Err(ExitCode::from(EXIT_JOB_FAILED));
        }
        Ok(())
    }

    async fn status(&mut self, job: Option<&str>) -> Result<(), ExitCode> {
        let job = match job.map(str::parse::<JobId>).transpose() {
            Ok(job) => job,
            Err(e) => {
                eprintln!("error: {e}");
                return Err(ExitCode::from(1));
            }
        };
        let reply = self.ask(Message::Status { job }).await?;
        if self.json {
            return Ok(());
        }
        match reply {
            Message::JobInfo { job } => out!("{}", job_details(&job)),
            Message::StatusReport { report } => out!("{}", report_text(&report)),
            _ => {}
        }
        Ok(())
    }

    async fn jobs(&mut self, state: Option<&str>, limit: Option<usize>) -> Result<(), ExitCode> {
        let state = match state.map(str::parse::<JobState>).transpose() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return Err(ExitCode::from(1));
            }
        };
        // Page by page (each reply stays under the frame limit), newest page first.
        let wanted = limit.unwrap_or(DEFAULT_LIST_LIMIT);
        let (mut all, mut total, mut before) = (Vec::new(), 0, None);
        loop {
            let ask = Message::Jobs {
                state,
                limit: Some(wanted - all.len()),
                before,
            };
            let Message::JobList {
                mut jobs,
                total: matching,
                before: next,
            } = self.ask(ask).await?
            else {
                return Ok(());
            };
            if before.is_none() {
                total = matching;
            }
            jobs.append(&mut all);
            all = jobs;
            match next {
                Some(next) if all.len() < wanted => before = Some(next),
                _ => break,
            }
        }
        if !self.json {
            out!("{}", job_table(&all, total));
        }
        Ok(())
    }

    async fn workers(&mut self) -> Result<(), ExitCode> {
        if let Message::WorkerList { workers } = self.ask(Message::Workers).await?
            && !self.json
        {
            out!("{}", worker_table(&workers));
        }
        Ok(())
    }
}

const HELP: &str = "\
commands:
  submit DATA [count N] [priority P] [wait]   submit jobs (quote DATA with spaces: submit \"sleep 2s\" count 5)
  status [JOB-ID]                             one job, or the whole cluster
  jobs [STATE]                                list jobs (queued, assigned, running, completed, failed)
  workers                                     list workers
  login USER PASSWORD                         log in (when the topology has accounts)
  chat send CHANNEL TEXT --as USER            post to a chat channel (created if needed)
  chat history CHANNEL [--limit N]            a channel's messages, in order
  chat tail CHANNEL                           new messages as they come (Ctrl-C stops)
  chat dm USER TEXT --as USER                 a private message
  chat channels | chat users                  what the chat server knows
                                              (any chat command takes --server NAME|HOST:PORT)
  help                                        this text
  exit                                        leave (Ctrl-D works too)";

/// What `chat` commands in the prompt need: the topology's chat servers, and the password the
/// user gave (`--password`, or the last `login`).
struct ChatContext<'a> {
    topology: &'a crate::topology::Topology,
    password: Option<String>,
    state_dir: Option<PathBuf>,
}

/// `chat …` typed at the prompt: the same commands and options as `tcluster client TOPOLOGY chat`.
#[derive(Debug, clap::Parser)]
#[command(name = "chat", no_binary_name = false, disable_help_flag = false)]
struct PromptChat {
    #[command(flatten)]
    args: super::chat::ChatArgs,
}

/// The interactive prompt.
fn prompt(runtime: &Runtime, session: &mut Session, addr: &str, mut chat: ChatContext) -> ExitCode {
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot open the prompt: {e}");
            return ExitCode::from(1);
        }
    };
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    outln!("connected to {addr}; type help for the commands");
    loop {
        let line = match editor.readline("tcluster> ") {
            Ok(line) => line,
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line);
        let Some(words) = shlex::split(line) else {
            eprintln!("error: unbalanced quotes");
            continue;
        };
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let result = match words.as_slice() {
            ["exit" | "quit"] => break,
            ["help"] | ["?"] => {
                outln!("{HELP}");
                Ok(())
            }
            ["login", user, password] => {
                chat.password = Some(password.to_string());
                runtime.block_on(session.login(user, password))
            }
            ["chat", ..] => {
                use clap::Parser;
                match PromptChat::try_parse_from(&words) {
                    Ok(parsed) => {
                        let running =
                            super::chat_entry_points(chat.topology, chat.state_dir.as_deref());
                        super::chat::run(
                            chat.topology,
                            parsed.args,
                            running,
                            chat.password.clone(),
                            session.json,
                        );
                    }
                    // Clap's own text: the usage, what was wrong, `chat --help` for more.
                    Err(e) => {
                        let _ = e.print();
                    }
                }
                Ok(())
            }
            ["submit", data, options @ ..] => match submit_options(options) {
                Ok((count, priority, wait)) => {
                    runtime.block_on(session.submit(data.to_string(), count, priority, wait))
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(())
                }
            },
            ["status"] => runtime.block_on(session.status(None)),
            ["status", job] => runtime.block_on(session.status(Some(job))),
            ["jobs"] => runtime.block_on(session.jobs(None, None)),
            ["jobs", state] => runtime.block_on(session.jobs(Some(state), None)),
            ["workers"] => runtime.block_on(session.workers()),
            [command, ..] => {
                eprintln!("error: unknown command `{command}` (or wrong arguments); type help");
                Ok(())
            }
            [] => Ok(()),
        };
        // A coordinator that is gone may have been replaced: find the primary again. Only when
        // no master answers does the session end; a refused request does not end it.
        if let Err(code) = result
            && code == ExitCode::from(EXIT_UNREACHABLE)
            && runtime
                .block_on(session.client.request(Message::Ping))
                .is_err()
        {
            eprintln!("the connection to the coordinator is gone; looking for the primary");
            if let Err(e) = runtime.block_on(session.reconnect()) {
                eprintln!("error: {e}");
                return code;
            }
            eprintln!("(the last command was not carried out: type it again)");
        }
    }
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(path);
    }
    ExitCode::SUCCESS
}

fn history_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("tcluster/client_history"))
}

/// `count N`, `priority P`, `wait`, in any order.
fn submit_options(words: &[&str]) -> Result<(u32, i32, bool), String> {
    let (mut count, mut priority, mut wait) = (1, 0, false);
    let mut i = 0;
    while i < words.len() {
        match (words[i], words.get(i + 1)) {
            ("wait", _) => wait = true,
            ("count", Some(n)) => {
                count = n
                    .parse()
                    .map_err(|_| format!("count must be a whole number, found `{n}`"))?;
                i += 1;
            }
            ("priority", Some(p)) => {
                priority = p
                    .parse()
                    .map_err(|_| format!("priority must be a whole number, found `{p}`"))?;
                i += 1;
            }
            (other, _) => {
                return Err(format!(
                    "unexpected `{other}`: submit DATA [count N] [priority P] [wait]"
                ));
            }
        }
        i += 1;
    }
    Ok((count, priority, wait))
}

fn id_list(jobs: &[JobId]) -> String {
    match jobs {
        [] => "no jobs".to_string(),
        [one] => one.to_string(),
        [first, .., last] if jobs.len() > 6 => format!("{} jobs: {first} … {last}", jobs.len()),
        many => many
            .iter()
            .map(JobId::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn job_details(job: &JobView) -> String {
    let mut out = format!("{}  {}\n  data:     {}\n", job.id, job.state, job.data);
    if let Some(w) = &job.worker {
        out += &format!("  worker:   {w}\n");
    }
    out += &format!(
        "  attempts: {}\n  priority: {}\n",
        job.attempts, job.priority
    );
    if matches!(job.state, JobState::Running | JobState::Assigned) {
        out += &format!("  progress: {}%\n", job.progress);
    }
    if let Some(r) = &job.result {
        out += &format!("  result:   {r}\n");
    }
    if let Some(e) = &job.error {
        out += &format!("  error:    {e}\n");
    }
    if job.duplicates > 0 {
        out += &format!("  duplicates: {} (it ran more than once)\n", job.duplicates);
    }
    out
}

fn report_text(r: &StatusReport) -> String {
    let j = &r.jobs;
    // A backup's answer is its copy of the primary's state, as far as it has it.
    let role = match r.role.as_str() {
        "backup" => "a backup, not serving: its copy of the primary's state".to_string(),
        "" => "master".to_string(),
        role => role.to_string(),
    };
    let f = &r.refused;
    let refused = if f.is_empty() {
        String::new()
    } else {
        let plaintext = if f.plaintext > 0 {
            format!(
                ", {} plaintext connections to an encrypted port",
                f.plaintext
            )
        } else {
            String::new()
        };
        format!(
            "  refused: {} stamps from too far ahead, {} messages from peers that may not send them, {} failed proofs, {} requests over a limit{plaintext}\n",
            f.clock, f.rules, f.auth, f.limits
        )
    };
    format!(
        "{}: {role}, term {}\n  workers: {} healthy, {} suspect, {} dead\n  jobs:    {} queued, {} assigned, {} running, {} completed, {} failed\n  duplicate results: {}\n{refused}",
        r.coordinator,
        r.term,
        r.workers.healthy,
        r.workers.suspect,
        r.workers.dead,
        j.queued,
        j.assigned,
        j.running,
        j.completed,
        j.failed,
        r.duplicates
    )
}

fn job_table(jobs: &[JobView], total: usize) -> String {
    let mut out = format!(
        "{:<10} {:<10} {:<14} {:>8}  {}\n",
        "JOB", "STATE", "WORKER", "ATTEMPTS", "DATA → RESULT"
    );
    for j in jobs {
        let outcome = j
            .result
            .as_deref()
            .or(j.error.as_deref())
            .map(|r| format!(" → {r}"))
            .unwrap_or_default();
        out += &format!(
            "{:<10} {:<10} {:<14} {:>8}  {}{}\n",
            j.id.to_string(),
            j.state.as_str(),
            j.worker.as_deref().unwrap_or("-"),
            j.attempts,
            j.data,
            outcome
        );
    }
    if total > jobs.len() {
        out += &format!("({} of {total} shown; --limit for more)\n", jobs.len());
    }
    out
}

fn worker_table(workers: &[WorkerView]) -> String {
    let mut out = format!(
        "{:<16} {:<8} {:>7} {:>6} {:>10}  {}\n",
        "WORKER", "HEALTH", "LOAD", "DONE", "HEARTBEAT", "PROTOCOL"
    );
    for w in workers {
        out += &format!(
            "{:<16} {:<8} {:>7} {:>6} {:>10}  {}\n",
            w.name,
            w.health.as_str(),
            format!("{}/{}", w.running, w.slots),
            w.done,
            // A lent worker's heartbeats go to its borrower.
            match (&w.lent_to, w.heartbeat_age_ms) {
                (Some(_), _) => "-".to_string(),
                (None, age) => age.map_or("-".to_string(), |ms| format!("{ms}ms")),
            },
            match (&w.lent_to, &w.owner, w.classic) {
                (Some(to), _, _) => format!("native, lent to {to}"),
                (_, Some(from), _) => format!("native, borrowed from {from}"),
                (_, _, true) => "classic".to_string(),
                _ => "native".to_string(),
            }
        );
    }
    if workers.is_empty() {
        out += "(no workers registered)\n";
    }
    out
}
