//! ApproximateTime pairing of the RGB stream (A) with the auxiliary stream (B).
//!
//! This is the adaptive algorithm of the C++ `message_filters::sync_policies::ApproximateTime`
//! (ros2/message_filters, `approximate_time.hpp`) specialised to two topics, step for step, so
//! a node built on it pairs frames exactly as a C++ ROS 2 node with the same settings would.
//!
//! # Semantics
//! Each topic has a queue of at most `queue_size` messages (including those already examined
//! for the current candidate). Messages are matched by stamp only.
//! * When both queues hold messages, the later of the two front messages becomes the *pivot*
//!   and the pair of fronts the *candidate*. The other topic's messages are then walked in
//!   stamp order; one replaces the candidate's partner when it shortens the pair's time spread,
//!   after weighting how much later the pair would end by `1 + age_penalty` (so ties go to the
//!   earlier, sooner-published pair).
//! * The candidate is emitted once no later message can beat it: the other topic has a message
//!   after the pivot, or the spread already exceeds what any future pair containing the pivot
//!   could achieve (using `inter_message_lower_bound_ns` when set; with the default 0 that
//!   means only an exact stamp match is emitted before a later message arrives).
//! * Each message is used at most once. Emitting a pair drops every message older than it on
//!   both topics (counted as `unmatched`).
//! * A candidate whose spread exceeds `max_interval_ns` is never formed; the older front is
//!   dropped (`too_wide`).
//! * A message that would make a queue exceed `queue_size` cancels the search and drops that
//!   topic's oldest message (`queue_overflow`); until the topic has proven it lost nothing
//!   useful, it may not provide a pivot (C++'s `has_dropped_messages`).
//! * For two topics the pivot's own topic never advances during a search, so in effect each
//!   pivot is paired with the nearer of its two neighbours on the other topic (the last one
//!   at or before it and the first one after it); the later neighbour wins only when its
//!   distance times `1 + age_penalty` is smaller.
//!
//! Additions to the C++ policy, which assumes per-topic stamps never decrease: a message older
//! than what its topic has already emitted, dropped or examined (its current candidate message
//! included) is dropped and counted (`out_of_order`); any other reordered message is inserted
//! in stamp order, which gives the same pairs as in-order arrival would have.
//!
//! # Online and offline use
//! [`ApproxSync::push_a`]/[`ApproxSync::push_b`] are the online form. Its output depends on
//! arrival order only through queue overflow. [`ApproxSync::flush`] declares both streams
//! ended and emits the pending candidate that live operation would hold until the next
//! message. `patrack replay` uses the online form like the node, fed in the bag's storage order
//! with the node's queue size, then flushed. [`pair_offline`] pairs two complete stamp lists:
//! unbounded queues, both streams sorted, then flushed, so the pairs depend only on the stamps
//! and equal what the online form gives whenever its queues never overflow (the tests use it as
//! that order-independent reference).

use std::collections::VecDeque;

/// Tuning of [`ApproxSync`], with the C++ policy's names and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyncConfig {
    /// Most messages held per topic (C++ constructor argument; the node's `sync.queue_size`).
    pub queue_size: usize,
    /// Widest accepted stamp spread of a pair (`setMaxIntervalDuration`; the node's
    /// `sync.slop_s`). `None` accepts any spread.
    pub max_interval_ns: Option<i64>,
    /// Weight of how much later a better pair would end (`setAgePenalty`, default 0.1).
    pub age_penalty: f64,
    /// Promised minimum gap between consecutive messages of topic A and B
    /// (`setInterMessageLowerBound`); lets a candidate be emitted before the next message.
    pub inter_message_lower_bound_ns: [i64; 2],
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self { queue_size: 10, max_interval_ns: None, age_penalty: 0.1, inter_message_lower_bound_ns: [0, 0] }
    }
}

impl SyncConfig {
    /// A queue size and an optional maximum spread, the rest at the C++ defaults.
    pub fn new(queue_size: usize, max_interval_ns: Option<i64>) -> Self {
        Self { queue_size, max_interval_ns, ..Self::default() }
    }

    fn validate(&self) -> Result<(), SyncError> {
        if self.queue_size == 0 {
            return Err(SyncError::ZeroQueue);
        }
        if !(self.age_penalty.is_finite() && self.age_penalty >= 0.0) {
            return Err(SyncError::AgePenalty(self.age_penalty));
        }
        if let Some(max) = self.max_interval_ns.filter(|m| *m < 0) {
            return Err(SyncError::MaxInterval(max));
        }
        if let Some(bound) = self.inter_message_lower_bound_ns.iter().find(|b| **b < 0) {
            return Err(SyncError::LowerBound(*bound));
        }
        Ok(())
    }
}

/// Invalid [`SyncConfig`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncError {
    #[error("sync queue_size must be at least 1")]
    ZeroQueue,
    #[error("sync age_penalty must be finite and >= 0, got {0}")]
    AgePenalty(f64),
    #[error("sync max_interval must be >= 0 ns, got {0}")]
    MaxInterval(i64),
    #[error("sync inter-message lower bound must be >= 0 ns, got {0}")]
    LowerBound(i64),
}

/// One synchronized pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair<A, B> {
    pub stamp_a_ns: i64,
    pub a: A,
    pub stamp_b_ns: i64,
    pub b: B,
}

impl<A, B> Pair<A, B> {
    /// Absolute stamp difference of the two messages.
    pub fn spread_ns(&self) -> i64 {
        self.stamp_a_ns.abs_diff(self.stamp_b_ns).try_into().unwrap_or(i64::MAX)
    }
}

/// Messages of one topic that were never emitted, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// Pushed out of a full queue.
    pub queue_overflow: u64,
    /// Superseded: a pair after them was emitted or a better candidate found; or left over
    /// at [`ApproxSync::flush`].
    pub unmatched: u64,
    /// Their best partner was further away than `max_interval_ns`.
    pub too_wide: u64,
    /// Arrived with a stamp older than what their topic had already used or dropped.
    pub out_of_order: u64,
}

impl DropCounts {
    pub fn total(&self) -> u64 {
        self.queue_overflow + self.unmatched + self.too_wide + self.out_of_order
    }
}

/// Counters of an [`ApproxSync`], for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    pub pairs: u64,
    pub dropped_a: DropCounts,
    pub dropped_b: DropCounts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    A,
    B,
}

#[derive(Debug, Clone, Copy)]
enum DropReason {
    Overflow,
    Unmatched,
    TooWide,
}

/// The candidate's own messages are implicit: per topic, the first of `past` or, when `past`
/// is empty, the queue front (as in C++, where they are always there when published).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    start_ns: i64,
    end_ns: i64,
    pivot: Topic,
    pivot_ns: i64,
}

/// Per-topic state: C++'s `deques_[i]`, `past_[i]` and `has_dropped_messages_[i]`.
#[derive(Debug)]
struct Lane<T> {
    queue: VecDeque<(i64, T)>,
    /// Messages examined for the current candidate, oldest first.
    past: Vec<(i64, T)>,
    has_dropped: bool,
    /// Newest stamp emitted or dropped; older arrivals can no longer be placed correctly.
    consumed_floor_ns: Option<i64>,
    drops: DropCounts,
    lower_bound_ns: i64,
}

impl<T> Lane<T> {
    fn new(lower_bound_ns: i64) -> Self {
        Self {
            queue: VecDeque::new(),
            past: Vec::new(),
            has_dropped: false,
            consumed_floor_ns: None,
            drops: DropCounts::default(),
            lower_bound_ns,
        }
    }

    fn front_ns(&self) -> Option<i64> {
        self.queue.front().map(|(stamp, _)| *stamp)
    }

    fn held(&self) -> usize {
        self.queue.len() + self.past.len()
    }

    fn consume(&mut self, stamp_ns: i64) {
        self.consumed_floor_ns = Some(self.consumed_floor_ns.map_or(stamp_ns, |f| f.max(stamp_ns)));
    }

    fn count(&mut self, reason: DropReason) {
        match reason {
            DropReason::Overflow => self.drops.queue_overflow += 1,
            DropReason::Unmatched => self.drops.unmatched += 1,
            DropReason::TooWide => self.drops.too_wide += 1,
        }
    }

    /// Inserts in stamp order (after equal stamps); `false` (and counted) when the stamp is
    /// older than the floor: what was consumed, examined, or is the candidate's message.
    fn insert(&mut self, stamp_ns: i64, msg: T, has_candidate: bool) -> bool {
        let examined_ns = self.past.last().map(|(s, _)| *s);
        let candidate_ns = if has_candidate && self.past.is_empty() { self.front_ns() } else { None };
        let floor_ns = [self.consumed_floor_ns, examined_ns, candidate_ns].into_iter().flatten().max();
        if floor_ns.is_some_and(|floor| stamp_ns < floor) {
            self.drops.out_of_order += 1;
            return false;
        }
        let at = self.queue.partition_point(|(s, _)| *s <= stamp_ns);
        self.queue.insert(at, (stamp_ns, msg));
        true
    }

    fn delete_front(&mut self, reason: DropReason) {
        if let Some((stamp, _)) = self.queue.pop_front() {
            self.consume(stamp);
            self.count(reason);
        }
    }

    fn move_front_to_past(&mut self) -> bool {
        match self.queue.pop_front() {
            Some(entry) => {
                self.past.push(entry);
                true
            }
            None => false,
        }
    }

    /// Drops the examined messages: a better candidate starts after them.
    fn clear_past(&mut self) {
        while let Some((stamp, _)) = self.past.pop() {
            self.consume(stamp);
            self.count(DropReason::Unmatched);
        }
    }

    fn recover(&mut self, count: usize) {
        for _ in 0..count {
            match self.past.pop() {
                Some(entry) => self.queue.push_front(entry),
                None => break,
            }
        }
    }

    fn recover_all(&mut self) {
        self.recover(self.past.len());
    }

    /// C++ `recoverAndDelete`: the candidate's message of this topic.
    fn take_candidate(&mut self) -> Option<(i64, T)> {
        self.recover_all();
        let taken = self.queue.pop_front();
        if let Some((stamp, _)) = &taken {
            self.consume(*stamp);
        }
        taken
    }

    /// Earliest stamp the topic's next message could have (C++ `getVirtualTime`).
    fn virtual_ns(&self, pivot_ns: i64) -> i64 {
        match (self.front_ns(), self.past.last()) {
            (Some(front), _) => front,
            (None, Some((last, _))) => last.saturating_add(self.lower_bound_ns).max(pivot_ns),
            (None, None) => pivot_ns,
        }
    }

    fn drop_all(&mut self) {
        self.recover_all();
        while !self.queue.is_empty() {
            self.delete_front(DropReason::Unmatched);
        }
    }
}

/// The two-topic ApproximateTime synchronizer; see the [module docs](self).
#[derive(Debug)]
pub struct ApproxSync<A, B> {
    config: SyncConfig,
    a: Lane<A>,
    b: Lane<B>,
    candidate: Option<Candidate>,
    pairs: u64,
}

macro_rules! lane {
    ($self:ident, $topic:expr, |$lane:ident| $body:expr) => {
        match $topic {
            Topic::A => {
                let $lane = &mut $self.a;
                $body
            }
            Topic::B => {
                let $lane = &mut $self.b;
                $body
            }
        }
    };
}

impl<A, B> ApproxSync<A, B> {
    pub fn new(config: SyncConfig) -> Result<Self, SyncError> {
        config.validate()?;
        Ok(Self {
            config,
            a: Lane::new(config.inter_message_lower_bound_ns[0]),
            b: Lane::new(config.inter_message_lower_bound_ns[1]),
            candidate: None,
            pairs: 0,
        })
    }

    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    pub fn stats(&self) -> SyncStats {
        SyncStats { pairs: self.pairs, dropped_a: self.a.drops, dropped_b: self.b.drops }
    }

    /// Messages held per topic (A, B), waiting for a partner.
    pub fn pending(&self) -> (usize, usize) {
        (self.a.held(), self.b.held())
    }

    /// Adds a message of topic A (RGB); returns the pairs this completes, oldest first.
    pub fn push_a(&mut self, stamp_ns: i64, msg: A) -> Vec<Pair<A, B>> {
        let mut out = Vec::new();
        let was_empty = self.a.queue.is_empty();
        if self.a.insert(stamp_ns, msg, self.candidate.is_some()) {
            self.after_insert(Topic::A, was_empty, &mut out);
        }
        out
    }

    /// Adds a message of topic B (auxiliary); returns the pairs this completes, oldest first.
    pub fn push_b(&mut self, stamp_ns: i64, msg: B) -> Vec<Pair<A, B>> {
        let mut out = Vec::new();
        let was_empty = self.b.queue.is_empty();
        if self.b.insert(stamp_ns, msg, self.candidate.is_some()) {
            self.after_insert(Topic::B, was_empty, &mut out);
        }
        out
    }

    /// Ends both streams: emits the pending candidate (which live operation holds until a
    /// later message proves it best) and every pair the remaining messages then form, and
    /// drops the rest as `unmatched`. Pushing may continue afterwards.
    pub fn flush(&mut self) -> Vec<Pair<A, B>> {
        let mut out = Vec::new();
        while self.candidate.is_some() {
            self.publish(&mut out);
            self.process(&mut out);
        }
        self.a.drop_all();
        self.b.drop_all();
        out
    }

    /// C++ `add<i>` after the push: search when the queue was empty, then enforce the size.
    fn after_insert(&mut self, topic: Topic, was_empty: bool, out: &mut Vec<Pair<A, B>>) {
        if was_empty {
            self.process(out);
        }
        if lane!(self, topic, |l| l.held()) > self.config.queue_size {
            self.a.recover_all();
            self.b.recover_all();
            lane!(self, topic, |l| {
                l.delete_front(DropReason::Overflow);
                l.has_dropped = true;
            });
            if self.candidate.take().is_some() {
                self.process(out);
            }
        }
    }

    fn front_ns(&self) -> Option<(i64, i64)> {
        Some((self.a.front_ns()?, self.b.front_ns()?))
    }

    /// `d * (1 + age_penalty)`, truncated like rclcpp's `Duration * double`.
    fn aged(&self, d_ns: i64) -> i64 {
        (d_ns as f64 * (1.0 + self.config.age_penalty)) as i64
    }

    /// C++ `process`.
    fn process(&mut self, out: &mut Vec<Pair<A, B>>) {
        while let Some((a_ns, b_ns)) = self.front_ns() {
            // C++ tie rule: with equal stamps the first topic is the start, the second the end.
            let (start, start_ns, end, end_ns) =
                if b_ns < a_ns { (Topic::B, b_ns, Topic::A, a_ns) } else { (Topic::A, a_ns, Topic::B, b_ns) };
            // No dropped message could have beaten the ones at hand, so the non-end topic
            // may provide a pivot again.
            lane!(self, start, |l| l.has_dropped = false);
            let candidate = match self.candidate {
                None => {
                    let spread_ns = end_ns.saturating_sub(start_ns);
                    if self.config.max_interval_ns.is_some_and(|max| spread_ns > max) {
                        lane!(self, start, |l| l.delete_front(DropReason::TooWide));
                        continue;
                    }
                    if lane!(self, end, |l| l.has_dropped) {
                        lane!(self, start, |l| l.delete_front(DropReason::Unmatched));
                        continue;
                    }
                    self.make_candidate(start_ns, end_ns, end, end_ns)
                }
                Some(current) => {
                    let later_by_ns = self.aged(end_ns.saturating_sub(current.end_ns));
                    if later_by_ns >= start_ns.saturating_sub(current.start_ns) {
                        current
                    } else {
                        self.make_candidate(start_ns, end_ns, current.pivot, current.pivot_ns)
                    }
                }
            };
            lane!(self, start, |l| l.move_front_to_past());

            let later_by_ns = self.aged(end_ns.saturating_sub(candidate.end_ns));
            if start == candidate.pivot {
                // The other topic has passed the pivot: every candidate for it was seen.
                self.publish(out);
            } else if later_by_ns >= candidate.pivot_ns.saturating_sub(candidate.start_ns) {
                // Any future candidate contains [pivot, end], already wider than this one.
                self.publish(out);
            } else if self.front_ns().is_none() {
                self.virtual_search(candidate, out);
            }
        }
    }

    /// C++ virtual search: assume each empty topic's next message arrives as early as
    /// possible and see whether that could still beat the candidate.
    fn virtual_search(&mut self, candidate: Candidate, out: &mut Vec<Pair<A, B>>) {
        let mut virtual_moves = [0usize; 2];
        loop {
            let a_ns = self.a.virtual_ns(candidate.pivot_ns);
            let b_ns = self.b.virtual_ns(candidate.pivot_ns);
            let (start, start_ns, end_ns) = if b_ns < a_ns { (Topic::B, b_ns, a_ns) } else { (Topic::A, a_ns, b_ns) };
            let later_by_ns = self.aged(end_ns.saturating_sub(candidate.end_ns));
            if later_by_ns >= candidate.pivot_ns.saturating_sub(candidate.start_ns) {
                // Proven optimal; publishing also undoes the virtual moves.
                self.publish(out);
                return;
            }
            let moved = start != candidate.pivot
                && later_by_ns >= start_ns.saturating_sub(candidate.start_ns)
                && lane!(self, start, |l| l.move_front_to_past());
            if !moved {
                // An optimistic future candidate could be better: wait for real messages.
                self.a.recover(virtual_moves[0]);
                self.b.recover(virtual_moves[1]);
                return;
            }
            virtual_moves[start as usize] += 1;
        }
    }

    fn make_candidate(&mut self, start_ns: i64, end_ns: i64, pivot: Topic, pivot_ns: i64) -> Candidate {
        self.a.clear_past();
        self.b.clear_past();
        let candidate = Candidate { start_ns, end_ns, pivot, pivot_ns };
        self.candidate = Some(candidate);
        candidate
    }

    fn publish(&mut self, out: &mut Vec<Pair<A, B>>) {
        self.candidate = None;
        match (self.a.take_candidate(), self.b.take_candidate()) {
            (Some((stamp_a_ns, a)), Some((stamp_b_ns, b))) => {
                self.pairs += 1;
                out.push(Pair { stamp_a_ns, a, stamp_b_ns, b });
            }
            // Unreachable while the invariants hold (a candidate has a message per topic);
            // account for a lone message rather than lose it silently.
            (Some(_), None) => self.a.count(DropReason::Unmatched),
            (None, Some(_)) => self.b.count(DropReason::Unmatched),
            (None, None) => {}
        }
    }
}

/// Pairs two complete streams: unbounded queues, each stream sorted by stamp, then
/// [`ApproxSync::flush`]. The result depends only on the stamps (not on recording order or
/// timing), never drops for overflow or reordering, and emits the final candidate that a live
/// node would still be holding; `config.queue_size` is ignored.
pub fn pair_offline<A, B>(
    mut stream_a: Vec<(i64, A)>,
    mut stream_b: Vec<(i64, B)>,
    config: SyncConfig,
) -> Result<(Vec<Pair<A, B>>, SyncStats), SyncError> {
    let mut sync = ApproxSync::new(SyncConfig { queue_size: usize::MAX, ..config })?;
    stream_a.sort_by_key(|(stamp, _)| *stamp);
    stream_b.sort_by_key(|(stamp, _)| *stamp);
    let mut pairs = Vec::new();
    let mut a = stream_a.into_iter().peekable();
    let mut b = stream_b.into_iter().peekable();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some((sa, _)), Some((sb, _))) => sa <= sb,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let emitted = if take_a {
            a.next().map(|(stamp, msg)| sync.push_a(stamp, msg))
        } else {
            b.next().map(|(stamp, msg)| sync.push_b(stamp, msg))
        };
        pairs.extend(emitted.into_iter().flatten());
    }
    pairs.extend(sync.flush());
    Ok((pairs, sync.stats()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Payloads are the stamps themselves, so a pair reads as `(a, b)`.
    type Sync = ApproxSync<i64, i64>;

    fn sync(config: SyncConfig) -> Sync {
        ApproxSync::new(config).unwrap()
    }

    fn stamps(pairs: &[Pair<i64, i64>]) -> Vec<(i64, i64)> {
        pairs
            .iter()
            .map(|p| {
                assert_eq!((p.a, p.b), (p.stamp_a_ns, p.stamp_b_ns), "payload moved with stamp");
                (p.a, p.b)
            })
            .collect()
    }

    #[derive(Clone, Copy, Debug)]
    enum Ev {
        A(i64),
        B(i64),
    }

    /// Pushes events in order; returns the pairs emitted by each push, flattened.
    fn run(s: &mut Sync, events: &[Ev]) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        for e in events {
            let pairs = match *e {
                Ev::A(t) => s.push_a(t, t),
                Ev::B(t) => s.push_b(t, t),
            };
            out.extend(stamps(&pairs));
        }
        out
    }

    /// Events of two streams merged by stamp (A first on ties), as a live system sees them.
    fn merged(a: &[i64], b: &[i64]) -> Vec<Ev> {
        let mut events: Vec<(i64, u8, Ev)> = a.iter().map(|&t| (t, 0, Ev::A(t))).collect();
        events.extend(b.iter().map(|&t| (t, 1, Ev::B(t))));
        events.sort_by_key(|(t, order, _)| (*t, *order));
        events.into_iter().map(|(_, _, e)| e).collect()
    }

    #[test]
    fn exact_match_is_emitted_immediately() {
        let mut s = sync(SyncConfig::default());
        assert!(s.push_a(0, 0).is_empty());
        assert_eq!(stamps(&s.push_b(0, 0)), [(0, 0)]);
        assert_eq!(s.pending(), (0, 0));
    }

    #[test]
    fn constant_offset_pairs_are_emitted_when_the_next_frame_proves_them() {
        let mut s = sync(SyncConfig::default());
        let a = [0, 100, 200, 300];
        let b = [4, 104, 204, 304];
        // (0, 4) cannot be emitted at B=4: an A message between 0 and 4 could still come.
        let mut events = merged(&a, &b);
        assert_eq!(run(&mut s, &events[..2]), []);
        assert_eq!(run(&mut s, &events[2..3]), [(0, 4)]);
        events.drain(..3);
        assert_eq!(run(&mut s, &events), [(100, 104), (200, 204)]);
        assert_eq!(stamps(&s.flush()), [(300, 304)]);
        let stats = s.stats();
        assert_eq!(stats.pairs, 4);
        assert_eq!((stats.dropped_a.total(), stats.dropped_b.total()), (0, 0));
    }

    #[test]
    fn rgb_30hz_with_thermal_9hz_pairs_each_thermal_frame_with_its_nearest_rgb() {
        // Stamps in ms. Nearest RGB per thermal frame: 2->0, 113->100 (13 vs 20),
        // 224->233 (9 vs 24), 335->333.
        let a = [0, 33, 67, 100, 133, 167, 200, 233, 267, 300, 333, 367];
        let b = [2, 113, 224, 335];
        let mut s = sync(SyncConfig::default());
        let pairs = run(&mut s, &merged(&a, &b));
        assert_eq!(pairs, [(0, 2), (100, 113), (233, 224), (333, 335)]);
        let stats = s.stats();
        // 33, 67 | 133, 167, 200 | 267, 300 were superseded; 367 waits for thermal.
        assert_eq!(stats.dropped_a.unmatched, 7);
        assert_eq!(stats.dropped_b, DropCounts::default());
        assert_eq!(s.pending(), (1, 0));
    }

    #[test]
    fn age_penalty_prefers_the_earlier_partner_unless_10_percent_closer() {
        // Pivot B=100; A=0 is 100 away, A=195 is 95 away: 95 * 1.1 >= 100 keeps A=0.
        let events = [Ev::A(0), Ev::B(100), Ev::A(195)];
        let mut s = sync(SyncConfig::default());
        assert_eq!(run(&mut s, &events), [(0, 100)]);
        let mut s = sync(SyncConfig { age_penalty: 0.0, ..SyncConfig::default() });
        assert_eq!(run(&mut s, &events), [(195, 100)]);
        assert_eq!(s.stats().dropped_a.unmatched, 1);
    }

    #[test]
    fn jittered_streams_pair_frame_by_frame() {
        let jitter_a = [3, -2, 5, 0, -4, 2, 1, -3];
        let jitter_b = [-1, 4, -5, 2, 3, -2, 0, 5];
        let a: Vec<i64> = (0..8).map(|i| 1_000 * i + jitter_a[i as usize]).collect();
        let b: Vec<i64> = (0..8).map(|i| 1_000 * i + 300 + jitter_b[i as usize]).collect();
        let mut s = sync(SyncConfig::default());
        let mut pairs = run(&mut s, &merged(&a, &b));
        pairs.extend(stamps(&s.flush()));
        let expected: Vec<(i64, i64)> = a.iter().copied().zip(b.iter().copied()).collect();
        assert_eq!(pairs, expected);
    }

    #[test]
    fn a_missing_frame_leaves_its_partner_unmatched() {
        let a = [0, 100, 200, 300, 400, 500];
        let b = [10, 110, 310, 410]; // 210 lost
        let mut s = sync(SyncConfig::default());
        assert_eq!(run(&mut s, &merged(&a, &b)), [(0, 10), (100, 110), (300, 310), (400, 410)]);
        assert_eq!(s.stats().dropped_a.unmatched, 1); // A=200
    }

    #[test]
    fn reordered_messages_pair_as_if_in_order_while_not_yet_examined() {
        let in_order = merged(&[0, 100, 200, 300], &[10, 110, 210, 310]);
        let mut s = sync(SyncConfig::default());
        let expected = run(&mut s, &in_order);
        assert_eq!(expected, [(0, 10), (100, 110), (200, 210)]);
        // A=100 overtaken by A=200 while B is silent: nothing examined A=200 yet.
        let overtaken_a = [Ev::A(0), Ev::B(10), Ev::A(200), Ev::A(100), Ev::B(110), Ev::B(210), Ev::A(300), Ev::B(310)];
        let mut s = sync(SyncConfig::default());
        assert_eq!(run(&mut s, &overtaken_a), expected);
        assert_eq!(s.stats().dropped_a.total() + s.stats().dropped_b.total(), 0);
    }

    #[test]
    fn a_message_behind_an_examined_one_is_out_of_order() {
        // B=210 arrives before B=110 and becomes the pivot of (200, 210) at once (A=100 is
        // superseded), so B=110 can no longer be placed.
        let events = [Ev::A(0), Ev::B(10), Ev::A(200), Ev::A(100), Ev::B(210), Ev::B(110), Ev::A(300)];
        let mut s = sync(SyncConfig::default());
        assert_eq!(run(&mut s, &events), [(0, 10), (200, 210)]);
        let stats = s.stats();
        assert_eq!((stats.dropped_a.unmatched, stats.dropped_b.out_of_order), (1, 1));
    }

    #[test]
    fn messages_older_than_what_was_used_are_dropped_as_out_of_order() {
        let mut s = sync(SyncConfig::default());
        assert_eq!(run(&mut s, &[Ev::A(0), Ev::B(4), Ev::A(100)]), [(0, 4)]);
        // Older than the emitted A=0 / B=4.
        assert_eq!(run(&mut s, &[Ev::A(-5), Ev::B(3)]), []);
        let stats = s.stats();
        assert_eq!((stats.dropped_a.out_of_order, stats.dropped_b.out_of_order), (1, 1));
        // B=50 is older than the emitted A=100's stamp but newer than B=4: still usable.
        assert_eq!(run(&mut s, &[Ev::B(50), Ev::B(104), Ev::A(200)]), [(100, 104)]);
        assert_eq!(s.stats().dropped_b.unmatched, 1);
    }

    #[test]
    fn queue_overflow_drops_the_oldest() {
        let mut s = sync(SyncConfig::new(3, None));
        let events = [Ev::A(0), Ev::A(100), Ev::A(200), Ev::A(300), Ev::A(400), Ev::A(500), Ev::B(410)];
        assert_eq!(run(&mut s, &events), [(400, 410)]);
        let dropped = s.stats().dropped_a;
        assert_eq!((dropped.queue_overflow, dropped.unmatched), (3, 1)); // 0, 100, 200 | 300
        assert_eq!(s.pending(), (1, 0));
    }

    #[test]
    fn a_topic_that_overflowed_cannot_be_pivot_until_it_proves_itself() {
        // B=100 is pushed out; A=150 could have matched it, so B=200 may not pivot for A=150.
        let mut s = sync(SyncConfig::new(2, None));
        let events = [Ev::B(100), Ev::B(200), Ev::B(300), Ev::A(150)];
        assert_eq!(run(&mut s, &events), []);
        assert_eq!(s.stats().dropped_b.queue_overflow, 1);
        assert_eq!(s.stats().dropped_a.unmatched, 1);
        // A=250 pivots with B=200 (50 away); B=300 is as close but later, so B=200 wins.
        assert_eq!(run(&mut s, &[Ev::A(250)]), [(250, 200)]);
    }

    #[test]
    fn max_interval_rejects_wide_pairs() {
        let mut s = sync(SyncConfig::new(10, Some(20)));
        // A=0 vs B=50: 50 > 20, A=0 dropped. A=45 is 5 from B=50.
        assert_eq!(run(&mut s, &[Ev::A(0), Ev::B(50), Ev::A(45), Ev::A(90)]), [(45, 50)]);
        // B=200 has no A within 20: the queued A=90 and then B=200 itself go.
        assert_eq!(run(&mut s, &[Ev::B(200), Ev::A(260)]), []);
        let stats = s.stats();
        assert_eq!((stats.dropped_a.too_wide, stats.dropped_b.too_wide), (2, 1));
        assert!(stamps(&s.flush()).is_empty());
    }

    #[test]
    fn inter_message_lower_bound_allows_emitting_before_the_next_frame() {
        // With B at least 100 apart, the next B is >= 104: (0, 4) is provably best at once.
        let config = SyncConfig { inter_message_lower_bound_ns: [100, 100], ..SyncConfig::default() };
        let mut s = sync(config);
        assert_eq!(run(&mut s, &[Ev::B(4), Ev::A(0)]), [(0, 4)]);
        let mut s = sync(SyncConfig::default());
        assert_eq!(run(&mut s, &[Ev::B(4), Ev::A(0)]), []);
    }

    #[test]
    fn invalid_configs_are_rejected() {
        assert_eq!(Sync::new(SyncConfig::new(0, None)).err(), Some(SyncError::ZeroQueue));
        assert!(Sync::new(SyncConfig::new(5, Some(-1))).is_err());
        let nan = SyncConfig { age_penalty: f64::NAN, ..SyncConfig::default() };
        assert!(Sync::new(nan).is_err());
    }

    /// xorshift64*: deterministic streams without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_stream(rng: &mut Rng, len: usize, period: i64, jitter: u64, loss_pct: u64) -> Vec<i64> {
        let mut stamps = Vec::new();
        for i in 0..len as i64 {
            let jitter_ns = rng.below(jitter) as i64;
            if rng.below(100) >= loss_pct {
                stamps.push(i * period + jitter_ns);
            }
        }
        stamps.sort();
        stamps.dedup();
        stamps
    }

    #[test]
    fn unbounded_online_output_is_independent_of_interleaving_and_equals_offline() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..200 {
            let a = random_stream(&mut rng, 40, 33, 20, 10);
            let b = random_stream(&mut rng, 15, 111, 40, 20);
            let max_interval_ns = if round % 2 == 0 { None } else { Some(15) };
            let config = SyncConfig::new(usize::MAX, max_interval_ns);
            let (offline, _) =
                pair_offline(a.iter().rev().map(|&t| (t, t)).collect(), b.iter().map(|&t| (t, t)).collect(), config)
                    .unwrap();
            let offline = stamps(&offline);

            // A random interleaving that keeps each topic in order.
            let (mut i, mut j) = (0, 0);
            let mut events = Vec::new();
            while i < a.len() || j < b.len() {
                if j == b.len() || (i < a.len() && rng.below(2) == 0) {
                    events.push(Ev::A(a[i]));
                    i += 1;
                } else {
                    events.push(Ev::B(b[j]));
                    j += 1;
                }
            }
            let mut s = sync(config);
            let mut online = run(&mut s, &events);
            online.extend(stamps(&s.flush()));
            assert_eq!(online, offline, "round {round}");

            // Each message at most once, pairs ordered per topic, spread within the limit.
            for w in online.windows(2) {
                assert!(w[0].0 < w[1].0 && w[0].1 < w[1].1, "round {round}: {w:?}");
            }
            if let Some(max) = max_interval_ns {
                assert!(online.iter().all(|(x, y)| (x - y).abs() <= max), "round {round}");
            }
            let stats = s.stats();
            let accounted = stats.pairs * 2 + stats.dropped_a.total() + stats.dropped_b.total();
            assert_eq!(accounted as usize, a.len() + b.len(), "round {round}");
        }
    }
}
