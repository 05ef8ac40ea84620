//! The one retry mechanism: provider calls, DynamoDB batch rounds and SQS batch rounds all go
//! through [`retry`].
//!
//! An attempt says whether it is done or what is left to try again (a throttled provider call,
//! the unprocessed items of a batch), and optionally how long the other side asked us to wait.
//! The engine decides the wait: the asked one when it is within the policy's limit (a longer one
//! is not waited out inside a Lambda invocation: the caller gives up as retryable and SQS brings
//! the job back later), otherwise exponential backoff with full jitter ("Exponential Backoff And
//! Jitter", AWS Architecture Blog), and stops after `max_attempts`.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

/// How hard to try before giving up.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub max_attempts: u32,
    /// Backoff before retry n is a random duration in [0, base * 2^n], capped by `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A wait asked for (`Retry-After`) longer than this is not waited out: the call gives up.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// The provider calls' policy: a few attempts, well inside one Lambda invocation.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The wait before the attempt after `attempts` made ones, or `None` when we should stop.
    fn delay(&self, attempts: u32, asked: Option<Duration>) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        if let Some(wait) = asked {
            return (wait <= self.max_retry_after).then_some(wait);
        }
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempts.min(16))
            .min(self.max_delay);
        let millis = ceiling.as_millis() as u64;
        Some(Duration::from_millis(
            rand::thread_rng().gen_range(0..=millis),
        ))
    }
}

/// What one attempt came to, when it did not fail outright.
#[derive(Debug)]
pub enum Attempt<S, T> {
    Done(T),
    /// Not finished: `left` is what the next attempt gets (what remains to be sent, or what
    /// the last answer was), `retry_after` the wait the other side asked for, if any.
    Again {
        left: S,
        retry_after: Option<Duration>,
    },
}

/// Why [`retry`] stopped without a result.
#[derive(Debug, PartialEq)]
pub enum Stopped<S, E> {
    /// An attempt failed in a way not worth retrying.
    Failed(E),
    /// The attempts ran out, or the wait asked for was too long: `left` is what the last
    /// attempt left, `retry_after` the last wait asked for.
    Exhausted {
        left: S,
        attempts: u32,
        retry_after: Option<Duration>,
    },
}

/// Runs `attempt` on `first`, then on what each attempt leaves, until one is done, fails, or
/// the policy says stop.
pub async fn retry<S, T, E, F, Fut>(
    policy: &RetryPolicy,
    first: S,
    mut attempt: F,
) -> Result<T, Stopped<S, E>>
where
    F: FnMut(S) -> Fut,
    Fut: Future<Output = Result<Attempt<S, T>, E>>,
{
    let mut input = first;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (left, retry_after) = match attempt(input).await.map_err(Stopped::Failed)? {
            Attempt::Done(result) => return Ok(result),
            Attempt::Again { left, retry_after } => (left, retry_after),
        };
        let Some(wait) = policy.delay(attempts, retry_after) else {
            return Err(Stopped::Exhausted {
                left,
                attempts,
                retry_after,
            });
        };
        tracing::debug!(attempts, wait_ms = wait.as_millis() as u64, "retrying");
        tokio::time::sleep(wait).await;
        input = left;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_retry_after: Duration::from_millis(50),
        }
    }

    #[test]
    fn backoff_is_bounded() {
        let policy = RetryPolicy::default();
        for attempt in 1..policy.max_attempts {
            let wait = policy.delay(attempt, None).unwrap();
            assert!(wait <= policy.max_delay);
        }
        assert_eq!(
            policy.delay(policy.max_attempts, None),
            None,
            "no attempt past the limit"
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3600))),
            None,
            "an hour is left to SQS"
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3)),
            "a short Retry-After is honoured as asked"
        );
    }

    #[tokio::test]
    async fn what_is_left_is_retried_until_done() {
        let sent = std::sync::Mutex::new(Vec::new());
        let result: Result<usize, Stopped<Vec<u32>, ()>> =
            retry(&fast(), vec![1, 2, 3], |batch: Vec<u32>| {
                sent.lock().unwrap().push(batch.clone());
                async move {
                    // Each round processes the first item only.
                    Ok(match batch.len() {
                        1 => Attempt::Done(batch[0] as usize),
                        _ => Attempt::Again {
                            left: batch[1..].to_vec(),
                            retry_after: None,
                        },
                    })
                }
            })
            .await;
        assert_eq!(result, Ok(3));
        assert_eq!(
            *sent.lock().unwrap(),
            vec![vec![1, 2, 3], vec![2, 3], vec![3]]
        );
    }

    #[tokio::test]
    async fn attempts_run_out_and_failures_stop_at_once() {
        let mut calls = 0;
        let result: Result<(), Stopped<&str, ()>> = retry(&fast(), "x", |left| {
            calls += 1;
            async move {
                Ok(Attempt::Again {
                    left,
                    retry_after: None,
                })
            }
        })
        .await;
        assert_eq!(
            result,
            Err(Stopped::Exhausted {
                left: "x",
                attempts: 3,
                retry_after: None
            })
        );
        assert_eq!(calls, 3);

        let mut calls = 0;
        let result: Result<(), Stopped<(), &str>> = retry(&fast(), (), |_| {
            calls += 1;
            async { Err("refused") }
        })
        .await;
        assert_eq!(result, Err(Stopped::Failed("refused")));
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn a_wait_too_long_to_honour_stops_at_once() {
        let result: Result<(), Stopped<(), ()>> = retry(&fast(), (), |_| async {
            Ok(Attempt::Again {
                left: (),
                retry_after: Some(Duration::from_secs(60)),
            })
        })
        .await;
        assert_eq!(
            result,
            Err(Stopped::Exhausted {
                left: (),
                attempts: 1,
                retry_after: Some(Duration::from_secs(60))
            })
        );
    }
}
