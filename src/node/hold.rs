//! Outputs waiting for the journal: a step whose events must be kept has its replies, events
//! and messages held until the journal's thread has committed them (ticket by ticket, in
//! order). A later step that wrote nothing goes out at once, except what must stay behind a
//! held output to keep its order: a message on a connection that has one held, and anything
//! that is not a plain reply (events, messages to other masters, closes).
//!
//! One kind of output of a held step may go at once: what `early` picks (the driver picks
//! assignments of jobs to workers), on a connection with nothing held before it but what
//! `overtakable` picks (the driver picks acknowledgements of results), so the worker runs the
//! job while its submission is being forced to disk — and a slot freed by a result is filled
//! again while that result is being forced to disk, not after. An acknowledgement and a new
//! assignment say nothing about each other; anything else held for the connection (a reply,
//! an earlier assignment, a close) keeps its place.
//!
//! So a `ping`, or a `status` from a client with nothing pending, is answered while another
//! client's job is being forced to disk; the job's `accepted` is sent only once it is there.
//! A `status` may then show a job whose submission is still being written: its submitter has
//! not been told `accepted` yet, and a crash of the machine in that instant forgets it — as if
//! it had arrived a moment later.

use std::collections::VecDeque;

use crate::role::coordinator::{ConnId, Output};

/// The held outputs, oldest ticket first.
pub struct Hold {
    queue: VecDeque<(u64, Vec<Output>)>,
    /// How many held outputs each connection has.
    per_conn: foldhash::HashMap<ConnId, usize>,
    /// How many of them an early output may not overtake.
    blocking: foldhash::HashMap<ConnId, usize>,
    /// Which held outputs an early one may overtake.
    overtakable: fn(&Output) -> bool,
}

impl Hold {
    /// Nothing held yet; an early output may overtake what `overtakable` picks.
    pub fn new(overtakable: fn(&Output) -> bool) -> Self {
        Hold {
            queue: VecDeque::new(),
            per_conn: foldhash::HashMap::default(),
            blocking: foldhash::HashMap::default(),
            overtakable,
        }
    }

    /// Holds a step's `outputs` until `ticket` is committed (several steps may share one).
    pub fn hold(&mut self, ticket: u64, outputs: Vec<Output>) {
        for output in &outputs {
            self.count(output);
        }
        match self.queue.back_mut() {
            Some((last, held)) if *last == ticket => held.extend(outputs),
            _ => self.queue.push_back((ticket, outputs)),
        }
    }

    /// Holds a step's `outputs` until `ticket` is committed, except those `early` picks that
    /// can leave now without overtaking anything held for their connection: those are returned.
    pub fn hold_except(
        &mut self,
        ticket: u64,
        outputs: Vec<Output>,
        early: impl Fn(&Output) -> bool,
    ) -> Vec<Output> {
        let mut now = Vec::new();
        let mut held = Vec::with_capacity(outputs.len());
        // Connections with something held in this step already that an early output may not
        // overtake.
        let mut behind = std::collections::HashSet::new();
        for output in outputs {
            let conn = conn_of(&output);
            let free =
                conn.is_some_and(|c| !self.blocking.contains_key(&c) && !behind.contains(&c));
            if free && early(&output) {
                now.push(output);
            } else {
                if self.blocks(&output) {
                    behind.extend(conn);
                }
                held.push(output);
            }
        }
        self.hold(ticket, held);
        now
    }

    /// A step that wrote nothing: what may go now is returned; the rest waits behind the last
    /// held step.
    pub fn pass(&mut self, outputs: Vec<Output>) -> Vec<Output> {
        if self.queue.is_empty() {
            return outputs;
        }
        let mut now = Vec::new();
        let mut later = Vec::new();
        for output in outputs {
            let free = match &output {
                Output::Send(conn, _) => !self.per_conn.contains_key(conn),
                _ => false,
            };
            if free {
                now.push(output);
            } else {
                self.count(&output);
                later.push(output);
            }
        }
        if let Some((_, last)) = self.queue.back_mut() {
            last.extend(later);
        }
        now
    }

    /// Everything held under tickets up to `committed`, in order.
    pub fn release(&mut self, committed: u64) -> Vec<Output> {
        let mut out = Vec::new();
        while self.queue.front().is_some_and(|(t, _)| *t <= committed) {
            let (_, outputs) = self.queue.pop_front().expect("checked above");
            for output in &outputs {
                if let Some(conn) = conn_of(output) {
                    uncount(&mut self.per_conn, conn);
                    if self.blocks(output) {
                        uncount(&mut self.blocking, conn);
                    }
                }
            }
            out.extend(outputs);
        }
        out
    }

    /// Nothing is held.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn count(&mut self, output: &Output) {
        if let Some(conn) = conn_of(output) {
            *self.per_conn.entry(conn).or_default() += 1;
            if self.blocks(output) {
                *self.blocking.entry(conn).or_default() += 1;
            }
        }
    }

    /// Whether an early output may not overtake `output` while it is held.
    fn blocks(&self, output: &Output) -> bool {
        !(self.overtakable)(output)
    }
}

fn uncount(counts: &mut foldhash::HashMap<ConnId, usize>, conn: ConnId) {
    if let Some(n) = counts.get_mut(&conn) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&conn);
        }
    }
}

fn conn_of(output: &Output) -> Option<ConnId> {
    match output {
        Output::Send(conn, _) | Output::Close(conn) => Some(*conn),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::message::{Envelope, Message};

    fn send(conn: ConnId, n: u64) -> Output {
        Output::Send(
            conn,
            Envelope {
                from: "c".into(),
                clock: n,
                term: None,
                message: Message::Pong,
            },
        )
    }

    fn clocks(outputs: &[Output]) -> Vec<(ConnId, u64)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Send(c, e) => Some((*c, e.clock)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn another_connection_overtakes_a_held_step_and_the_same_one_waits_its_turn() {
        let mut hold = Hold::new(|_| false);
        assert_eq!(clocks(&hold.pass(vec![send(1, 1)])), vec![(1, 1)]);
        hold.hold(1, vec![send(1, 2)]);
        // Connection 2 has nothing held: its pong leaves at once. Connection 1's waits.
        let now = hold.pass(vec![send(2, 3), send(1, 4)]);
        assert_eq!(clocks(&now), vec![(2, 3)]);
        hold.hold(2, vec![send(2, 5)]);
        assert!(hold.release(0).is_empty());
        assert_eq!(clocks(&hold.release(1)), vec![(1, 2), (1, 4)]);
        // Connection 1 is free again; 2 still waits for ticket 2.
        assert_eq!(
            clocks(&hold.pass(vec![send(1, 6), send(2, 7)])),
            vec![(1, 6)]
        );
        assert_eq!(clocks(&hold.release(5)), vec![(2, 5), (2, 7)]);
        assert!(hold.is_empty());
        assert_eq!(clocks(&hold.pass(vec![send(2, 8)])), vec![(2, 8)]);
    }

    /// An early output overtakes what `overtakable` picks for its connection, and nothing
    /// else: once a blocking output is held for the connection, it waits its turn again.
    #[test]
    fn an_early_output_overtakes_only_what_may_be_overtaken() {
        // Clocks from 100 on may be overtaken; from 10 on leave early.
        let mut hold = Hold::new(|o| matches!(o, Output::Send(_, e) if e.clock >= 100));
        let early = |o: &Output| matches!(o, Output::Send(_, e) if (10..100).contains(&e.clock));
        hold.hold(1, vec![send(1, 100)]);
        // Connection 1 holds only an overtakable output: its early one leaves; in the same
        // step an overtakable one is held without blocking the early one after it, and a
        // blocking one (clock 2) makes the last early one (clock 12) wait.
        let now = hold.hold_except(
            2,
            vec![
                send(1, 10),
                send(1, 101),
                send(1, 11),
                send(1, 2),
                send(1, 12),
            ],
            early,
        );
        assert_eq!(clocks(&now), vec![(1, 10), (1, 11)]);
        // A later step: connection 1 still has a blocking output held.
        assert!(hold.hold_except(3, vec![send(1, 13)], early).is_empty());
        assert_eq!(clocks(&hold.release(1)), vec![(1, 100)]);
        assert_eq!(
            clocks(&hold.release(3)),
            vec![(1, 101), (1, 2), (1, 12), (1, 13)]
        );
        assert!(hold.is_empty());
        // Released, the counts are back to nothing: an early output leaves at once.
        assert_eq!(
            clocks(&hold.hold_except(4, vec![send(1, 14)], early)),
            vec![(1, 14)]
        );
    }

    /// What `early` picks leaves at once unless its connection has something held before it,
    /// in this step or an earlier one.
    #[test]
    fn early_outputs_leave_unless_they_would_overtake() {
        let mut hold = Hold::new(|_| false);
        let early = |o: &Output| matches!(o, Output::Send(_, e) if e.clock >= 10);
        hold.hold(1, vec![send(1, 1)]);
        let now = hold.hold_except(
            2,
            vec![send(2, 2), send(3, 10), send(2, 11), send(1, 12)],
            early,
        );
        // Connection 3: nothing before it. Connection 2: its reply is held, so its early
        // message waits behind it; connection 1 has ticket 1's reply held.
        assert_eq!(clocks(&now), vec![(3, 10)]);
        assert_eq!(clocks(&hold.release(1)), vec![(1, 1)]);
        assert_eq!(clocks(&hold.release(2)), vec![(2, 2), (2, 11), (1, 12)]);
        assert!(hold.is_empty());
    }

    #[test]
    fn events_and_closes_keep_their_order_behind_held_steps() {
        let mut hold = Hold::new(|_| false);
        hold.hold(1, vec![send(1, 1)]);
        let now = hold.pass(vec![Output::Close(3), Output::AdjustClock(1), send(3, 2)]);
        // The close of connection 3 is held, so its later message is too.
        assert!(now.is_empty());
        let released = hold.release(1);
        assert_eq!(released.len(), 4);
        assert!(matches!(released[1], Output::Close(3)));
    }
}
