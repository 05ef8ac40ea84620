//! The one HTTP client every provider call goes through.
//!
//! It follows no redirects (a redirect from a token or API endpoint is never legitimate and
//! could carry a bearer token elsewhere), uses rustls, puts timeouts on every call, and retries
//! 429 and 5xx answers and transport failures with bounded exponential backoff and full jitter,
//! honouring `Retry-After` in both its seconds and HTTP-date forms. The oauth2 crate uses the
//! same client through its [`AsyncHttpClient`] trait, so token calls get the same retries.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use oauth2::reqwest;
use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use crate::error::ProviderError;

/// How hard to try before giving up and letting SQS redeliver the job later.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub max_attempts: u32,
    /// Backoff before retry n is a random duration in [0, base * 2^n], capped by `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited out inside a Lambda invocation: the
    /// call fails as retryable and SQS brings the job back after its visibility timeout.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
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
    /// The wait before the next attempt, or `None` when we should stop.
    fn delay(&self, attempt: u32, headers: Option<&HeaderMap>) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        if let Some(wait) = headers.and_then(retry_after) {
            return (wait <= self.max_retry_after).then_some(wait);
        }
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let millis = ceiling.as_millis() as u64;
        Some(Duration::from_millis(
            rand::thread_rng().gen_range(0..=millis),
        ))
    }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 section 10.2.3).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The shared client: cheap to clone, built once per cold start.
#[derive(Clone, Debug)]
pub struct ProviderHttp {
    client: reqwest::Client,
    retry: RetryPolicy,
}

impl ProviderHttp {
    pub fn new(retry: RetryPolicy) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!(
                "cloud-drive-connector-hub/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| ProviderError::Rejected(format!("cannot build the HTTP client: {e}")))?;
        Ok(ProviderHttp { client, retry })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends the request built by `build` (called again for each attempt) and returns the
    /// first answer that is not retryable. Exhausted retries become
    /// [`ProviderError::Retryable`]; the body of the failed answer is never logged, since
    /// token endpoints may echo secrets.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut attempt = 1;
        loop {
            let outcome = build(&self.client).send().await;
            let (status, headers) = match &outcome {
                Ok(response) if !is_retryable(response.status()) => {
                    return Ok(outcome.expect("matched Ok"))
                }
                Ok(response) => (
                    Some(response.status().as_u16()),
                    Some(response.headers().clone()),
                ),
                Err(_) => (None, None),
            };
            let Some(wait) = self.retry.delay(attempt, headers.as_ref()) else {
                if let Err(e) = &outcome {
                    tracing::warn!(error = %without_url(e), attempt, "provider call failed");
                }
                return Err(ProviderError::Retryable {
                    status,
                    attempts: attempt,
                });
            };
            tracing::info!(
                ?status,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying provider call"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// reqwest errors print the URL, which may carry a token in its query (Graph delta links
/// carry opaque state): strip it before logging.
fn without_url(error: &reqwest::Error) -> String {
    let mut shown = String::new();
    if error.is_timeout() {
        shown.push_str("timeout");
    } else if error.is_connect() {
        shown.push_str("connection failed");
    } else {
        shown.push_str("request failed");
    }
    shown
}

/// An exhausted or failed attempt inside the oauth2 crate's request, carried out as is.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OAuthHttpError(pub ProviderError);

impl<'c> AsyncHttpClient<'c> for ProviderHttp {
    type Error = OAuthHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let response = self
                .send(|client| {
                    client
                        .request(parts.method.clone(), parts.uri.to_string())
                        .headers(parts.headers.clone())
                        .body(body.clone())
                })
                .await
                .map_err(OAuthHttpError)?;
            let mut builder = oauth2::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let bytes = response.bytes().await.map_err(|e| {
                OAuthHttpError(ProviderError::Rejected(format!(
                    "reading the token answer: {}",
                    without_url(&e)
                )))
            })?;
            builder
                .body(bytes.to_vec())
                .map_err(|e| OAuthHttpError(ProviderError::Rejected(e.to_string())))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));

        let later = SystemTime::now() + Duration::from_secs(30);
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(27) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );

        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            retry_after(&headers),
            Some(Duration::ZERO),
            "a past date means retry now"
        );

        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
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

        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3600"));
        assert_eq!(
            policy.delay(1, Some(&headers)),
            None,
            "an hour is left to SQS"
        );
    }
}
