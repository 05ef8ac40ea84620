//! The settings an operator changes while the hub runs: the second API key and webhook
//! secret of a rotation, the per-file log lines, the metrics.

use super::*;
use crate::webhook_signature::WebhookSecret;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// During a rotation each delivery carries two signatures, one per secret: a receiver
/// that knows either verifies it (Standard Webhooks: a space-separated list), and a
/// malformed next secret stops the function without echoing it.
#[test]
fn a_next_webhook_secret_signs_beside_the_current_one() {
    const NEXT: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let url = ("HUB_WEBHOOK_URL", "https://app.example/hooks");
    let rotating = Config::from_env(&Env::from_map([
        url,
        ("HUB_WEBHOOK_SECRET", SECRET),
        ("HUB_WEBHOOK_SECRET_NEXT", NEXT),
    ]))
    .unwrap()
    .webhook
    .unwrap();
    let header = rotating.signature("msg_1", 1_700_000_000, b"{}");
    assert_eq!(header.split(' ').count(), 2, "{header}");
    for secret in [SECRET, NEXT] {
        let secret = WebhookSecret::parse(secret).unwrap();
        assert!(secret.verifies("msg_1", 1_700_000_000, b"{}", &header));
    }
    let other = WebhookSecret::parse("whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkh").unwrap();
    assert!(!other.verifies("msg_1", 1_700_000_000, b"{}", &header));
    // Without a next secret, one signature, as before.
    let settled = Config::from_env(&Env::from_map([url, ("HUB_WEBHOOK_SECRET", SECRET)]))
        .unwrap()
        .webhook
        .unwrap();
    let header = settled.signature("msg_1", 1_700_000_000, b"{}");
    assert_eq!(header.split(' ').count(), 1, "{header}");
    let error = Config::from_env(&Env::from_map([
        url,
        ("HUB_WEBHOOK_SECRET", SECRET),
        ("HUB_WEBHOOK_SECRET_NEXT", "whsec_short"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(error.contains("HUB_WEBHOOK_SECRET_NEXT"), "{error}");
    assert!(!error.contains("whsec_short"), "{error}");
}

#[test]
fn the_next_api_key_is_accepted_beside_the_current_one() {
    let keys = |vars: &[(&'static str, &'static str)]| {
        Config::from_env(&Env::from_map(vars.iter().copied()))
            .unwrap()
            .api_keys()
            .map(|keys| keys.len())
    };
    assert_eq!(keys(&[("HUB_API_KEY", "current")]).unwrap(), 1);
    assert_eq!(
        keys(&[("HUB_API_KEY", "current"), ("HUB_API_KEY_NEXT", "next")]).unwrap(),
        2
    );
    // The next key alone opens nothing: the current one stays required.
    assert!(keys(&[("HUB_API_KEY_NEXT", "next")]).is_err());
}

/// File names in the logs: on by default locally, off by default in AWS, and either way
/// when asked.
#[test]
fn file_name_lines_default_by_backend() {
    let aws = [
        ("HUB_BACKEND", "aws"),
        ("TABLE_NAME", "t"),
        ("KMS_KEY_ID", "k"),
        ("SYNC_QUEUE_URL", "q"),
    ];
    let config = |extra: Option<(&'static str, &'static str)>, on_aws: bool| {
        let mut vars: Vec<(&str, &str)> = if on_aws { aws.to_vec() } else { Vec::new() };
        vars.extend(extra);
        Config::from_env(&Env::from_map(vars))
    };
    assert!(config(None, false).unwrap().log_file_names);
    assert!(!config(None, true).unwrap().log_file_names);
    assert!(
        config(Some(("HUB_LOG_FILE_NAMES", "true")), true)
            .unwrap()
            .log_file_names
    );
    assert!(
        !config(Some(("HUB_LOG_FILE_NAMES", "false")), false)
            .unwrap()
            .log_file_names
    );
    let error = config(Some(("HUB_LOG_FILE_NAMES", "yes")), false).unwrap_err();
    assert!(error.to_string().contains("HUB_LOG_FILE_NAMES"), "{error}");
    // Metrics: none unless a namespace is given; staleness after three hourly schedules.
    let local = config(None, false).unwrap();
    assert_eq!(local.metrics_namespace, None);
    assert_eq!(local.stale_sync_after.as_secs(), 3 * 3600);
    let error = config(Some(("HUB_STALE_SYNC_AFTER_MINUTES", "0")), false).unwrap_err();
    assert!(error.to_string().contains("HUB_STALE_SYNC_AFTER_MINUTES"));
}
