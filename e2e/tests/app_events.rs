//! Events to the app through the real binaries under `cargo lambda watch`: with
//! `HUB_WEBHOOK_URL` pointing at the testkit's receiver (which checks signatures as an app
//! would), a login, a sync, a grant that died and a delete reach it as `account.connected`,
//! `sync.completed`, `account.reauth_required` and `account.deleted`, each verified with the secret and free of tokens; a receiver that answers
//! 500 first gets the same event again, with the same `webhook-id`, after the retry delay (the
//! local queue's, test-shortened; on the AWS backend the message's visibility, changed by
//! `app-webhooks`, under an SQS event source in front of it).

use std::time::Duration;

use hub_e2e::aws::AwsResources;
use hub_e2e::{LocalHub, StatusCode};
use hub_testkit::webhook_receiver::{Answer, Received, WebhookReceiver};
use hub_testkit::FakeProviders;
use oauth2::reqwest::Method;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwJf6zXZsZqeY=";

fn of_type<'a>(received: &'a [Received], kind: &str) -> Vec<&'a Received> {
    received.iter().filter(|r| r.event_type() == kind).collect()
}

async fn wait_for_type(receiver: &WebhookReceiver, kind: &str, count: usize) -> Vec<Received> {
    let received = receiver
        .wait_for(Duration::from_secs(120), |r| {
            of_type(r, kind).len() >= count
        })
        .await;
    assert!(
        of_type(&received, kind).len() >= count,
        "{count} {kind} expected; got {:?}",
        received.iter().map(|r| r.event_type()).collect::<Vec<_>>()
    );
    received
}

fn webhook_env(providers: &FakeProviders, receiver: &WebhookReceiver) -> Vec<(String, String)> {
    let mut env = providers.env_vars();
    env.extend([
        ("HUB_WEBHOOK_URL".to_string(), receiver.url()),
        ("HUB_WEBHOOK_SECRET".to_string(), SECRET.to_string()),
    ]);
    env
}

#[tokio::test]
async fn events_reach_the_app_signed_on_the_local_backend() {
    let providers = FakeProviders::start().await;
    let receiver = WebhookReceiver::start(SECRET).await;
    let mut env = webhook_env(&providers, &receiver);
    // 1 minute becomes 60 ms: the retries of this test come in well under a second.
    env.push((
        "HUB_LOCAL_EVENT_RETRY_SCALE".to_string(),
        "0.001".to_string(),
    ));
    let hub = LocalHub::start(&env).await;
    login_sync_and_delete_reach_the_app_signed_and_a_500_is_retried_with_the_same_id(
        &providers, &receiver, &hub,
    )
    .await;
}

#[tokio::test]
async fn events_reach_the_app_signed_on_the_aws_backend() {
    let providers = FakeProviders::start().await;
    let receiver = WebhookReceiver::start(SECRET).await;
    let aws = AwsResources::create().await;
    let mut env = webhook_env(&providers, &receiver);
    env.extend(aws.env_vars());
    let hub = LocalHub::start(&env).await;
    let _worker_trigger = aws.event_source(&hub.url);
    let _delivery_trigger = aws.events_source(&hub.url);
    login_sync_and_delete_reach_the_app_signed_and_a_500_is_retried_with_the_same_id(
        &providers, &receiver, &hub,
    )
    .await;
}

async fn login_sync_and_delete_reach_the_app_signed_and_a_500_is_retried_with_the_same_id(
    providers: &FakeProviders,
    receiver: &WebhookReceiver,
    hub: &LocalHub,
) {
    providers.add_files("google", 4);

    // The app is down for the first attempt of the first event.
    receiver.answer_next(Answer::Status(500), 1);
    let (status, account) = hub.log_in("google").await;
    assert_eq!(status, StatusCode::OK, "{account}");
    let id = account["id"].as_str().unwrap().to_string();
    let received = wait_for_type(receiver, "account.connected", 2).await;
    let connected = of_type(&received, "account.connected");
    assert_eq!(connected[0].answered, Answer::Status(500));
    assert_eq!(connected[1].answered, Answer::Status(204));
    assert_eq!(connected[0].webhook_id, connected[1].webhook_id);
    assert_eq!(connected[0].body, connected[1].body);
    assert!(
        !connected[0].timestamp.is_empty(),
        "webhook-timestamp is set"
    );
    assert_eq!(connected[1].json()["data"], account, "the /users row");

    let (status, started) = hub
        .json(
            hub.authed(Method::POST, "/sync")
                .header("content-type", "application/json")
                .body(r#"{"source_type": "google"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let received = wait_for_type(receiver, "sync.completed", 1).await;
    let completed = of_type(&received, "sync.completed")[0].json();
    assert_eq!(completed["data"]["account_id"], id.as_str());
    assert_eq!(completed["data"]["files_changed"], 4);
    assert_eq!(completed["data"]["files_deleted"], 0);
    assert_eq!(completed["data"]["reason"], "manual");

    // The grant dies at the provider: the next sync marks the account and tells the app.
    providers.expire_access_tokens();
    providers.revoke_refresh_tokens("google");
    let (status, started) = hub
        .json(
            hub.authed(Method::POST, "/sync")
                .header("content-type", "application/json")
                .body(format!(r#"{{"user_id": "{id}"}}"#)),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let received = wait_for_type(receiver, "account.reauth_required", 1).await;
    let reauth = of_type(&received, "account.reauth_required")[0].json();
    assert_eq!(
        reauth["data"],
        serde_json::json!({"account_id": id, "owner": null, "provider": "google", "email": account["email"]})
    );

    let response = hub
        .authed(Method::DELETE, &format!("/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let received = wait_for_type(receiver, "account.deleted", 1).await;
    let deleted = of_type(&received, "account.deleted")[0].json();
    assert_eq!(
        deleted["data"],
        serde_json::json!({"account_id": id, "owner": null, "provider": "google"})
    );

    // Every request verified with the secret; no token in any body or header; one id per
    // event.
    assert!(received.iter().all(|r| r.verified), "{received:?}");
    let tokens = providers.issued_tokens();
    assert!(!tokens.is_empty());
    for request in &received {
        let headers = format!("{:?}", request.headers);
        for token in &tokens {
            assert!(
                !request.body.contains(token.as_str()),
                "a token in an event"
            );
            assert!(!headers.contains(token.as_str()), "a token in a header");
        }
    }
    let mut ids: Vec<_> = received.iter().map(|r| r.webhook_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "four events, one retried");
    // And no token in the logs of the delivering function either.
    let log = hub.log();
    for token in &tokens {
        assert!(!log.contains(token.as_str()), "a token in the logs");
    }
    assert!(!log.contains(SECRET.trim_start_matches("whsec_")));
}
