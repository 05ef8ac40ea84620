//! Querying the index through the real `users` binary under `cargo lambda watch`
//! (docs/API.md, "File index and change feed"): after a Box sync, a folder's entries, each
//! drive's top, a path's subtree and a kind, followed across pages; an unknown parameter and a
//! bad value are 400. On the local backend and on the AWS backend (moto: the `by-folder` GSI).

use std::collections::BTreeSet;

use hub_e2e::aws::AwsResources;
use hub_e2e::{LocalHub, StatusCode};
use hub_testkit::{FakeProviders, BOX_ROOT_ID, DEFAULT_BOX_USER};
use oauth2::reqwest::Method;

const USER: &str = DEFAULT_BOX_USER;

#[tokio::test]
async fn filters_through_the_real_binaries_on_the_local_backend() {
    let providers = FakeProviders::start().await;
    let mut env = providers.env_vars();
    env.extend(providers.box_env_vars());
    let hub = LocalHub::start(&env).await;
    filters(&providers, &hub).await;
}

#[tokio::test]
async fn filters_through_the_real_binaries_on_the_aws_backend() {
    let providers = FakeProviders::start().await;
    let aws = AwsResources::create().await;
    let mut env = providers.env_vars();
    env.extend(providers.box_env_vars());
    env.extend(aws.env_vars());
    let hub = LocalHub::start(&env).await;
    let _worker_trigger = aws.event_source(&hub.url);
    filters(&providers, &hub).await;
    assert_eq!(aws.dead_letters().await, 0, "no job failed for good");
}

/// Every entry id a query lists, one entry a page, so that every page boundary is crossed.
async fn listed(hub: &LocalHub, id: &str, query: &str) -> BTreeSet<String> {
    let (mut ids, mut cursor) = (BTreeSet::new(), None::<String>);
    for _ in 0..100 {
        let path = match &cursor {
            Some(c) => format!("/users/{id}/files?limit=1&{query}&cursor={c}"),
            None => format!("/users/{id}/files?limit=1&{query}"),
        };
        let (status, page) = hub.json(hub.authed(Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        for file in page["files"].as_array().unwrap() {
            ids.insert(file["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return ids,
        }
    }
    panic!("{query}: the listing never ended");
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

async fn filters(providers: &FakeProviders, hub: &LocalHub) {
    let docs = providers.box_add_folder(USER, "Docs", BOX_ROOT_ID);
    let a = providers.box_add_file(USER, "a.txt", &docs);
    let sub = providers.box_add_folder(USER, "Sub", &docs);
    let b = providers.box_add_file(USER, "b.txt", &sub);
    let keep = providers.box_add_file(USER, "keep.txt", BOX_ROOT_ID);
    let (status, account) = hub.log_in("box").await;
    assert_eq!(status, StatusCode::OK, "{account}");
    let id = account["id"].as_str().unwrap().to_string();
    hub.sync_provider("box", &id).await;

    let (docs, a, sub, b, keep) = (
        format!("folder_{docs}"),
        format!("file_{a}"),
        format!("folder_{sub}"),
        format!("file_{b}"),
        format!("file_{keep}"),
    );
    assert_eq!(
        listed(hub, &id, "parent_id=root").await,
        set(&[&docs, &keep])
    );
    assert_eq!(
        listed(hub, &id, &format!("parent_id={docs}")).await,
        set(&[&a, &sub])
    );
    assert_eq!(
        listed(hub, &id, "path_prefix=/DOCS").await,
        set(&[&docs, &a, &sub, &b])
    );
    assert_eq!(
        listed(hub, &id, "kind=folder&drive_id=box").await,
        set(&[&docs, &sub])
    );
    for query in ["colour=red", "kind=document", "modified_after=yesterday"] {
        let (status, error) = hub
            .json(hub.authed(Method::GET, &format!("/users/{id}/files?{query}")))
            .await;
        assert_eq!(
            (status, error["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{query}: {error}"
        );
    }
}
