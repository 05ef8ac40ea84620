//! The time a request has left, and provider calls bounded by it.
//!
//! An HTTP function that runs past its Lambda timeout is killed and API Gateway answers a
//! bare 500, which is not a contract answer, and whatever the function was doing is left
//! half-done. So every provider call of a request runs under a [`Deadline`]: the retry
//! engine's attempts and sleeps happen inside [`Deadline::bound`], and when the time is up
//! the call stops with [`ProviderError::TimedOut`] while there is still time to answer.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::error::ProviderError;

/// The HTTP functions' Lambda timeout (`template.yaml`, `Globals.Function.Timeout`), for an
/// invocation that does not say its deadline (tests, the bench).
pub const HTTP_FUNCTION_TIMEOUT: Duration = Duration::from_secs(15);

/// What a request keeps back from its deadline to store its result and answer.
pub const ANSWER_MARGIN: Duration = Duration::from_secs(2);

/// When the provider calls of a request must be over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline(Instant);

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline(Instant::now() + budget)
    }

    /// The provider-call deadline of a Lambda invocation: its deadline (milliseconds since
    /// the Unix epoch, as the runtime API's `Lambda-Runtime-Deadline-Ms` header and
    /// `lambda_runtime::Context::deadline` give it) minus [`ANSWER_MARGIN`]. Without one, the
    /// HTTP functions' timeout from now, minus the margin too.
    pub fn of_invocation(deadline_epoch_ms: Option<u64>) -> Self {
        let left = match deadline_epoch_ms {
            Some(ms) => {
                let deadline = UNIX_EPOCH + Duration::from_millis(ms);
                deadline
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
            }
            None => HTTP_FUNCTION_TIMEOUT,
        };
        Deadline::after(left.saturating_sub(ANSWER_MARGIN))
    }

    /// The sooner of this deadline and `budget` from now: a best-effort call gets a short
    /// budget, never past the request's own deadline.
    pub fn at_most(self, budget: Duration) -> Self {
        Deadline(self.0.min(Instant::now() + budget))
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Runs a provider call, giving up with [`ProviderError::TimedOut`] at the deadline (the
    /// call is dropped, with whatever attempt or retry wait it was in).
    pub async fn bound<T>(
        &self,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let budget = self.remaining();
        tokio::time::timeout_at(self.0, call)
            .await
            .unwrap_or(Err(ProviderError::TimedOut { budget }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
