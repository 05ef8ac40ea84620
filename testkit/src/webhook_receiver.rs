//! A stand-in of the app that receives the hub's events: it records every request and checks
//! its Standard Webhooks signature as an app would (its own HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}` with the key after `whsec_`, compared in
//! constant time, the timestamp within five minutes), independently of the hub's code. It
//! answers 204, or on demand a given status or a slow answer for the next few requests.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The specification's tolerance for `webhook-timestamp` (replay protection).
const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;

/// How the receiver answers a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// This status, at once.
    Status(u16),
    /// 204 after this long (an app slower than the hub waits).
    Slow(Duration),
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// Every header, lower-case names, for searching (no token must be in any).
    pub headers: Vec<(String, String)>,
    /// The signature verified with the secret and the timestamp was recent.
    pub verified: bool,
    /// What the receiver answered.
    pub answered: Answer,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body's `type`.
    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_string()
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    planned: VecDeque<Answer>,
}

struct Shared {
    key: Vec<u8>,
    inner: Mutex<Inner>,
}

/// The running receiver; stops when dropped.
pub struct WebhookReceiver {
    url: String,
    shared: Arc<Shared>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl WebhookReceiver {
    /// Listens on a free loopback port; `secret` is the hub's `HUB_WEBHOOK_SECRET`.
    pub async fn start(secret: &str) -> WebhookReceiver {
        let encoded = secret
            .strip_prefix("whsec_")
            .expect("a Standard Webhooks secret starts with whsec_");
        let key = B64.decode(encoded).expect("the secret is base64");
        let shared = Arc::new(Shared {
            key,
            inner: Mutex::new(Inner::default()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(shared.clone());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        WebhookReceiver {
            url,
            shared,
            _shutdown: shutdown,
        }
    }

    /// The URL to give the hub as `HUB_WEBHOOK_URL`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The next `times` requests get `answer`, then the receiver answers 204 again.
    pub fn answer_next(&self, answer: Answer, times: usize) {
        let mut inner = self.shared.inner.lock().unwrap();
        inner.planned.extend(std::iter::repeat_n(answer, times));
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.inner.lock().unwrap().received.clone()
    }

    /// Waits until `check` holds of the requests received, at most `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        check: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            let received = self.received();
            if check(&received) || tokio::time::Instant::now() >= end {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Whether `header` (`webhook-signature`) holds a valid `v1` signature of the event with
/// `key` (the bytes after `whsec_`, decoded), and its timestamp is within five minutes: what
/// an app checks before it trusts an event. The demo app checks with it too.
pub fn verify(key: &[u8], id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Ok(seconds) = timestamp.parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - seconds).abs() > TIMESTAMP_TOLERANCE_SECONDS {
        return false;
    }
    header
        .split(' ')
        .filter_map(|signature| signature.strip_prefix("v1,"))
        .filter_map(|encoded| B64.decode(encoded).ok())
        .any(|digest| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
            mac.update(format!("{id}.{timestamp}.").as_bytes());
            mac.update(body);
            mac.verify_slice(&digest).is_ok()
        })
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let verified = verify(&shared.key, &id, &timestamp, &body, &signature);
    let answer = {
        let mut inner = shared.inner.lock().unwrap();
        let answer = inner.planned.pop_front().unwrap_or(Answer::Status(204));
        inner.received.push(Received {
            webhook_id: id,
            timestamp,
            signature,
            body: String::from_utf8_lossy(&body).into_owned(),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_string(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            verified,
            answered: answer,
        });
        answer
    };
    match answer {
        Answer::Status(status) => {
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Answer::Slow(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::NO_CONTENT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's reference vector (standard-webhooks libraries' `test_sign`), with
    /// the age check left out: its timestamp is from 2022.
    #[test]
    fn the_check_accepts_the_specifications_vector_only() {
        let key = B64.decode("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(b"msg_27UH4WbU6Z5A5EzD8u03UvzRbpk.1649367553.");
        mac.update(body);
        assert_eq!(
            B64.encode(mac.finalize().into_bytes()),
            "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        // Old timestamps are refused, as an app's replay check does.
        assert!(!verify(
            &key,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            "1649367553",
            body,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        ));
    }
}
