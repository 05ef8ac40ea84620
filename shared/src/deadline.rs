//! The time an invocation has left. Every budget derives from the invocation's real
//! deadline (`lambda_runtime::Context::deadline`), never from a constant: a function that
//! runs into its timeout answers nothing (an SQS batch then comes back whole, a schedule is
//! retried from the start, an HTTP caller gets API Gateway's 503).

use std::time::{Duration, Instant, SystemTime};

/// A point in time past which no new work starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Deadline(Instant::now() + budget)
    }

    /// From a wall-clock deadline such as Lambda's (milliseconds since the epoch in the
    /// `Lambda-Runtime-Deadline-Ms` header); one in the past is now.
    pub fn at(deadline: SystemTime) -> Self {
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Self::after(left)
    }

    /// The same deadline `reserve` earlier: the time kept back to store a place and requeue.
    pub fn less(self, reserve: Duration) -> Self {
        // An instant before the process started cannot be represented: that is "now", passed.
        Deadline(
            self.0
                .checked_sub(reserve)
                .unwrap_or_else(Instant::now)
                .min(self.0),
        )
    }

    /// Whichever comes first.
    pub fn earlier(self, other: Deadline) -> Self {
        self.min(other)
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    pub fn passed(&self) -> bool {
        self.remaining().is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_never_moves_the_deadline_later_nor_before_now() {
        let deadline = Deadline::after(Duration::from_secs(30));
        let less = deadline.less(Duration::from_secs(10));
        assert!(less < deadline);
        assert!(less.remaining() <= Duration::from_secs(20));
        assert!(less.remaining() > Duration::from_secs(19));
        let short = Deadline::after(Duration::from_secs(1)).less(Duration::from_secs(10));
        assert!(short.passed());
    }

    #[test]
    fn a_past_wall_clock_deadline_has_passed() {
        let past = SystemTime::now() - Duration::from_secs(5);
        assert!(Deadline::at(past).passed());
        let soon = Deadline::at(SystemTime::now() + Duration::from_secs(60));
        assert!(soon.remaining() > Duration::from_secs(58));
        assert_eq!(
            soon.earlier(Deadline::after(Duration::ZERO)).remaining(),
            Duration::ZERO
        );
    }
}
