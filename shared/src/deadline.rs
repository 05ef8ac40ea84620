//! The time an invocation has left. Every budget derives from the invocation's real
//! deadline (`lambda_runtime::Context::deadline`), never from a constant: a function that
//! runs into its timeout answers nothing (an SQS batch then comes back whole, a schedule is
//! retried from the start, an HTTP caller gets API Gateway's bare 500 and whatever the
//! function was doing is left half-done). Provider calls of a request run inside
//! [`Deadline::bound`], retry waits included, and stop with [`ProviderError::TimedOut`] while
//! there is still time to answer.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::ProviderError;

/// The HTTP functions' Lambda timeout (`template.yaml`, `Globals.Function.Timeout`), for an
/// invocation that does not say its deadline (tests, the bench).
pub const HTTP_FUNCTION_TIMEOUT: Duration = crate::deployment::AUTH.timeout;

/// What a request keeps back from its deadline to store its result and answer.
pub const ANSWER_MARGIN: Duration = crate::deployment::AUTH.reserve;

// auth and users both take their deadlines from `of_invocation`.
const _: () = assert!(
    crate::deployment::USERS.timeout.as_secs() == HTTP_FUNCTION_TIMEOUT.as_secs()
        && crate::deployment::USERS.reserve.as_secs() == ANSWER_MARGIN.as_secs()
);

/// How far in the past an invocation's deadline may lie before it is read as no deadline.
const IMPLAUSIBLY_LATE: Duration = Duration::from_secs(60);

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

    /// An invocation's deadline as Lambda gives it (`Lambda-Runtime-Deadline-Ms`), for a
    /// function whose timeout is `timeout`. Lambda's deadline is in the future when the
    /// handler starts; one long past is no deadline at all but an emulator's placeholder
    /// (`cargo lambda watch` sends one in 1970), and the function's own timeout from now is
    /// the budget then.
    pub fn of_lambda(deadline: SystemTime, timeout: Duration) -> Self {
        match SystemTime::now().duration_since(deadline) {
            Ok(late) if late > IMPLAUSIBLY_LATE => Deadline::after(timeout),
            _ => Deadline::at(deadline),
        }
    }

    /// The provider-call deadline of an HTTP invocation: its deadline (milliseconds since the
    /// Unix epoch, as `lambda_http`'s `Context::deadline` gives it) minus [`ANSWER_MARGIN`].
    /// Without one, the HTTP functions' timeout from now, minus the margin too.
    pub fn of_invocation(deadline_epoch_ms: Option<u64>) -> Self {
        let deadline = match deadline_epoch_ms {
            Some(ms) => Deadline::of_lambda(
                UNIX_EPOCH + Duration::from_millis(ms),
                HTTP_FUNCTION_TIMEOUT,
            ),
            None => Deadline::after(HTTP_FUNCTION_TIMEOUT),
        };
        deadline.less(ANSWER_MARGIN)
    }

    /// The sooner of this deadline and `budget` from now: a best-effort call gets a short
    /// budget, never past the request's own deadline.
    pub fn at_most(self, budget: Duration) -> Self {
        self.earlier(Deadline::after(budget))
    }

    /// The one way a call is held to a deadline: `call` runs until the deadline at most, and
    /// is dropped there, with whatever attempt or retry wait it was in. A call already
    /// answered when first polled is answered even at the deadline.
    pub async fn within<F: Future>(&self, call: F) -> Bounded<F::Output> {
        match tokio::time::timeout_at(tokio::time::Instant::from_std(self.0), call).await {
            Ok(answer) => Bounded::Answered(answer),
            Err(_) => Bounded::OutOfTime,
        }
    }

    /// [`Deadline::within`], except that a call does not even start once the deadline has
    /// passed: a sync stores its place and requeues instead (`crate::sync`).
    pub async fn start_within<F: Future>(&self, call: F) -> Bounded<F::Output> {
        if self.passed() {
            return Bounded::OutOfTime;
        }
        self.within(call).await
    }

    /// Runs a provider call of a request [`Deadline::within`] the deadline, giving up with
    /// [`ProviderError::TimedOut`] there: the request answers with it while it still can.
    pub async fn bound<T>(
        &self,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let budget = self.remaining();
        match self.within(call).await {
            Bounded::Answered(answer) => answer,
            Bounded::OutOfTime => Err(ProviderError::TimedOut { budget }),
        }
    }
}

/// What a call held to a deadline brought ([`Deadline::within`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Bounded<T> {
    Answered(T),
    /// The deadline came first: the call was not made, or was dropped unanswered.
    OutOfTime,
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
    fn an_emulator_placeholder_deadline_is_the_function_timeout() {
        let timeout = Duration::from_secs(120);
        let placeholder = Deadline::of_lambda(UNIX_EPOCH, timeout);
        assert!(placeholder.remaining() > Duration::from_secs(119));
        let just_past = Deadline::of_lambda(SystemTime::now() - Duration::from_secs(1), timeout);
        assert!(just_past.passed(), "a real deadline just past is passed");
        let real = Deadline::of_lambda(SystemTime::now() + Duration::from_secs(5), timeout);
        assert!(real.remaining() <= Duration::from_secs(5));
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

    #[tokio::test]
    async fn a_call_past_the_deadline_times_out() {
        let deadline = Deadline::after(Duration::from_millis(20));
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, ProviderError>(())
        };
        let started = std::time::Instant::now();
        let result = deadline.bound(slow).await;
        assert!(
            matches!(result, Err(ProviderError::TimedOut { .. })),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        let quick = Deadline::after(Duration::from_secs(5))
            .bound(async { Ok::<_, ProviderError>(7) })
            .await;
        assert_eq!(quick, Ok(7));
    }

    #[tokio::test]
    async fn a_passed_deadline_starts_no_sync_call_and_bounds_a_request_call() {
        let passed = Deadline::after(Duration::ZERO);
        let started = std::sync::atomic::AtomicBool::new(false);
        let call = async {
            started.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, ProviderError>(7)
        };
        assert_eq!(passed.start_within(call).await, Bounded::OutOfTime);
        assert!(
            !started.load(std::sync::atomic::Ordering::SeqCst),
            "not started"
        );
        // `within` (and so `bound`) answers a call that is ready when first polled.
        assert_eq!(
            passed.within(async { 7 }).await,
            Bounded::Answered(7),
            "ready at once"
        );
        let pending = passed.bound(std::future::pending::<Result<(), ProviderError>>());
        assert!(matches!(pending.await, Err(ProviderError::TimedOut { .. })));
    }

    #[test]
    fn an_invocation_deadline_keeps_the_answer_margin() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let deadline = Deadline::of_invocation(Some(now_ms + 10_000));
        let left = deadline.remaining();
        assert!(
            left <= Duration::from_secs(8) && left > Duration::from_secs(7),
            "{left:?}"
        );
        let past = Deadline::of_invocation(Some(now_ms - 1_000));
        assert_eq!(past.remaining(), Duration::ZERO);
        let default = Deadline::of_invocation(None).remaining();
        assert!(default <= HTTP_FUNCTION_TIMEOUT - ANSWER_MARGIN);
        let short = Deadline::after(Duration::from_secs(60)).at_most(Duration::from_secs(3));
        assert!(short.remaining() <= Duration::from_secs(3));
        let shorter = Deadline::after(Duration::from_secs(1)).at_most(Duration::from_secs(3));
        assert!(shorter.remaining() <= Duration::from_secs(1));
    }
}
