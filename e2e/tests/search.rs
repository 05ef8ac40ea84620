//! Search through the real `users` binary under `cargo lambda watch` (docs/API.md,
//! "Search"), on the local backend and on the AWS backend (moto): a Drive file found by a
//! word of its content answers as the index's entry of the same file.

use hub_e2e::aws::AwsResources;
use hub_e2e::{LocalHub, StatusCode};
use hub_testkit::{FakeProviders, FileSpec, DEFAULT_GOOGLE_USER};
use oauth2::reqwest::Method;

#[tokio::test]
async fn search_through_the_real_binary_on_the_local_backend() {
    let providers = FakeProviders::start().await;
    let hub = LocalHub::start(&providers.env_vars()).await;
    finds_by_content(&providers, &hub).await;
}

#[tokio::test]
async fn search_through_the_real_binary_on_the_aws_backend() {
    let providers = FakeProviders::start().await;
    let aws = AwsResources::create().await;
    let mut env = providers.env_vars();
    env.extend(aws.env_vars());
    let hub = LocalHub::start(&env).await;
    let _worker_trigger = aws.event_source(&hub.url);
    finds_by_content(&providers, &hub).await;
    assert_eq!(aws.dead_letters().await, 0, "no job failed for good");
}

async fn finds_by_content(providers: &FakeProviders, hub: &LocalHub) {
    providers.add_file(
        "google",
        DEFAULT_GOOGLE_USER,
        FileSpec::new("memo-1", "memo.txt"),
    );
    providers.set_google_content(DEFAULT_GOOGLE_USER, "memo-1", b"budget for the lighthouse");
    providers.add_file(
        "google",
        DEFAULT_GOOGLE_USER,
        FileSpec::new("other-1", "other.txt"),
    );
    let (status, account) = hub.log_in("google").await;
    assert_eq!(status, StatusCode::OK, "{account}");
    let id = account["id"].as_str().unwrap().to_string();
    hub.sync_provider("google", &id).await;

    let (status, found) = hub
        .json(hub.authed(
            Method::GET,
            &format!("/users/{id}/search?q=lighthouse&limit=5"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let (_, index) = hub
        .json(hub.authed(Method::GET, &format!("/users/{id}/files")))
        .await;
    let mut indexed = index["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["id"] == "memo-1")
        .cloned()
        .expect("the memo is indexed");
    // A hit was never indexed: it has no time of an index change.
    indexed.as_object_mut().unwrap().remove("changed_at");
    let mut hit = found["files"][0].clone();
    hit.as_object_mut().unwrap().remove("changed_at");
    assert_eq!(found["files"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(hit, indexed);

    let (status, body) = hub
        .json(hub.authed(Method::GET, &format!("/users/{id}/search?q=")))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}
