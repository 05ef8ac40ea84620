//! The one HTTP client every provider call goes through.
//!
//! It follows no redirects (a redirect from a token or API endpoint is never legitimate and
//! could carry a bearer token elsewhere), uses rustls and puts timeouts on every call. Each
//! non-success answer goes to the provider's [`AnswerClassifier`]; what it calls
//! [`Verdict::RetryAfterWait`](super::answers::Verdict::RetryAfterWait), and transport failures, are retried by [`crate::retry`],
//! honouring `Retry-After` in both its seconds and HTTP-date forms. The oauth2 crate uses the
//! same client through its [`AsyncHttpClient`] trait, so token calls get the same retries and
//! the same classifier.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use oauth2::reqwest;
use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use super::answers::{AnswerClassifier, CommonAnswers, Endpoint, Refusal};
use crate::error::ProviderError;
use crate::retry::{retry, Attempt, Stopped};

/// Kept here too, where the provider client is configured.
pub use crate::retry::RetryPolicy;

/// The largest listing or API answer the hub reads. The largest real pages are a few MB: a
/// Drive `files`/`changes` page of 1,000 entries with the hub's `fields` (about 1 KB each),
/// a Graph delta page (a few hundred items of 1-2 KB), a Dropbox `list_folder` page (up to
/// 2,000 entries of under 1 KB). 16 MiB is several times that, and four of them (the
/// worker's [`crate::sync::CONCURRENT_RECORDS`]), with their decoded entries, still fit
/// the worker's 256 MB beside everything else.
pub const PAGE_CAP: usize = 16 << 20;
/// The timeout of a download streamed through the hub (a connector's
/// [`super::Connector::open_content`]), in place of the client's 30 s: the bytes take as long
/// as they take, up to the content function's own timeout, which ends the stream first.
pub const STREAM_TIMEOUT: Duration = crate::deployment::CONTENT.timeout;

/// The largest error answer read: enough for any provider's JSON error (a code and a
/// sentence), which is all the classifier looks at. An HTML error page is cut off here.
pub const ERROR_CAP: usize = 64 << 10;
/// The largest token answer read: tokens (Microsoft's run to a few KB each, with an
/// `id_token`) and their lifetimes.
pub const TOKEN_CAP: usize = 64 << 10;

/// Reads an answer's body, never holding more than `cap` bytes: the declared length is
/// checked first, then the body is read a chunk at a time and given up on as soon as it
/// passes the cap. An answer too large is a refusal ([`ProviderError::Rejected`]) for the
/// job, not something to retry: the provider would answer the same, and reading it whole
/// would cost the worker its memory and the other jobs of its batch. `what` names it in the
/// error; the body itself is never quoted.
pub async fn read_capped(
    response: reqwest::Response,
    cap: usize,
    what: &str,
) -> Result<Vec<u8>, ProviderError> {
    match read_at_most(response, cap).await {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Err(too_large(what, cap)),
        Err(e) => Err(ProviderError::Rejected(format!(
            "reading the provider's {what}: {}",
            describe_transport_error(&e)
        ))),
    }
}

fn too_large(what: &str, cap: usize) -> ProviderError {
    ProviderError::Rejected(format!("the provider's {what} exceeds {cap} bytes"))
}

/// The body, or `None` as soon as it is known to pass `cap` (by its declared length, or by
/// what has come so far): what is read is dropped then, and the rest never read.
async fn read_at_most(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let declared = response.content_length().unwrap_or(0);
    if declared > cap as u64 {
        return Ok(None);
    }
    let mut body = Vec::with_capacity(declared as usize);
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Reads a successful API answer (at most [`PAGE_CAP`]) and decodes it as JSON; `provider`
/// names who answered in the error.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    provider: &str,
) -> Result<T, ProviderError> {
    let body = read_capped(response, PAGE_CAP, "answer").await?;
    serde_json::from_slice(&body)
        .map_err(|e| ProviderError::Rejected(format!("unexpected answer from {provider}: {e}")))
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

/// What the last failed attempt of a call came to, for the error and the log.
#[derive(Debug, Default)]
struct LastFailure {
    status: Option<u16>,
    transport: Option<String>,
}

/// The shared client: cheap to clone, built once per cold start, then bound to each
/// provider's classifier with [`ProviderHttp::answering_with`].
#[derive(Clone, Debug)]
pub struct ProviderHttp {
    client: reqwest::Client,
    retry: RetryPolicy,
    answers: &'static dyn AnswerClassifier,
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
        Ok(ProviderHttp {
            client,
            retry,
            answers: &CommonAnswers,
        })
    }

    /// The same client, reading refusals with a provider's rules.
    pub fn answering_with(&self, answers: &'static dyn AnswerClassifier) -> Self {
        ProviderHttp {
            answers,
            ..self.clone()
        }
    }

    /// Sends the request built by `build` (called again for each attempt) and returns the
    /// first success. A refusal becomes the error its classifier says; exhausted retries
    /// become [`ProviderError::Retryable`]. The body of a failed answer is never logged,
    /// since token endpoints may echo secrets.
    pub async fn send(
        &self,
        endpoint: Endpoint,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        self.send_answering(endpoint, Expected::Success, build)
            .await
    }

    /// As [`Self::send`], but a 404 is an answer, `None`, not a refusal: for reading one item
    /// whose absence says it is gone (Box's `GET /files/{id}` of a trashed or purged file).
    pub async fn send_unless_missing(
        &self,
        endpoint: Endpoint,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Option<reqwest::Response>, ProviderError> {
        let response = self
            .send_answering(endpoint, Expected::Missing, build)
            .await?;
        Ok((response.status() != StatusCode::NOT_FOUND).then_some(response))
    }

    /// As [`Self::send`], but a redirect (3xx) is the answer: for the calls whose answer is a
    /// `Location` to read, not to follow (Graph's and Box's `/content`, which redirect to a
    /// pre-authenticated download URL). A 404 is an answer too (the file is gone since the
    /// index saw it), for the caller to say so.
    pub async fn send_for_redirect(
        &self,
        endpoint: Endpoint,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        self.send_answering(endpoint, Expected::Redirect, build)
            .await
    }

    async fn send_answering(
        &self,
        endpoint: Endpoint,
        expected: Expected,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let outcome = retry(&self.retry, LastFailure::default(), |_| {
            let request = build(&self.client);
            async move { self.attempt(endpoint, expected, request).await }
        })
        .await;
        match outcome {
            Ok(response) => Ok(response),
            Err(Stopped::Failed(error)) => Err(error),
            Err(Stopped::Exhausted {
                left,
                attempts,
                retry_after,
            }) => {
                tracing::warn!(
                    status = ?left.status,
                    error = left.transport.as_deref().unwrap_or("none"),
                    attempts,
                    "provider call given up"
                );
                Err(ProviderError::Retryable {
                    status: left.status,
                    attempts,
                    retry_after,
                })
            }
        }
    }

    async fn attempt(
        &self,
        endpoint: Endpoint,
        expected: Expected,
        request: reqwest::RequestBuilder,
    ) -> Result<Attempt<LastFailure, reqwest::Response>, ProviderError> {
        let transport_failure = |error: reqwest::Error| Attempt::Again {
            left: LastFailure {
                status: None,
                transport: Some(describe_transport_error(&error)),
            },
            retry_after: None,
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Ok(transport_failure(error)),
        };
        let status = response.status();
        let answered = match expected {
            Expected::Success => false,
            Expected::Missing => status == StatusCode::NOT_FOUND,
            Expected::Redirect => status.is_redirection() || status == StatusCode::NOT_FOUND,
        };
        if status.is_success() || answered {
            return Ok(Attempt::Done(response));
        }
        let headers = response.headers().clone();
        // An error page larger than any JSON error is a refusal (see `read_capped`); a
        // transport failure while reading it is retried like any other.
        let body = match read_at_most(response, ERROR_CAP).await {
            Ok(Some(body)) => body,
            Ok(None) => return Err(too_large("error answer", ERROR_CAP)),
            Err(error) => return Ok(transport_failure(error)),
        };
        let verdict = self.answers.classify(&Refusal {
            endpoint,
            status,
            headers: &headers,
            body: &body,
        });
        match verdict.into_error() {
            Some(error) => Err(error),
            None => {
                tracing::info!(status = status.as_u16(), "provider asked to retry");
                Ok(Attempt::Again {
                    left: LastFailure {
                        status: Some(status.as_u16()),
                        transport: None,
                    },
                    retry_after: retry_after(&headers),
                })
            }
        }
    }
}

/// What besides a 2xx is an answer rather than a refusal.
#[derive(Clone, Copy)]
enum Expected {
    Success,
    /// A 404: the item is gone.
    Missing,
    /// A 3xx: its `Location` is the answer; or a 404.
    Redirect,
}

/// reqwest errors print the URL, which may carry a token in its query (Graph delta links
/// carry opaque state): say only what kind of failure it was.
fn describe_transport_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
    .to_string()
}

/// A refused or exhausted token call inside the oauth2 crate's request, carried out as is.
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
                .send(Endpoint::Token, |client| {
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
            let bytes = read_capped(response, TOKEN_CAP, "token answer")
                .await
                .map_err(OAuthHttpError)?;
            builder
                .body(bytes)
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
}
