//! A bounded load test on loopback: concurrent logins, syncs and `/users` calls against the
//! local hub under `cargo lambda watch`. It asserts that nothing fails and no account is
//! lost, and prints the figures (no timing assertion: timings go to the report, not to
//! pass/fail).

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use hub_e2e::{LocalHub, StatusCode};
use hub_testkit::FakeProviders;
use oauth2::reqwest::Method;
use serde_json::Value;

const LOGINS_PER_PROVIDER: usize = 15;
const USERS_CALLS: usize = 150;
const SYNC_CALLS: usize = 10;
const CONCURRENCY: usize = 8;

fn percentile(latencies: &mut [Duration], p: f64) -> Duration {
    latencies.sort();
    latencies[((latencies.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, mut latencies: Vec<Duration>, wall: Duration) {
    println!(
        "load: {what}: {} requests in {:.2} s ({:.1}/s), p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        latencies.len(),
        wall.as_secs_f64(),
        latencies.len() as f64 / wall.as_secs_f64(),
        percentile(&mut latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&mut latencies, 0.95).as_secs_f64() * 1e3,
        percentile(&mut latencies, 1.0).as_secs_f64() * 1e3,
    );
}

/// Runs `count` requests made by `request`, `CONCURRENCY` at a time; every answer must have
/// status `expected`. Returns the latencies and the wall time.
async fn run<F, Fut>(count: usize, expected: StatusCode, request: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = StatusCode>,
{
    let started = Instant::now();
    let results: Vec<(StatusCode, Duration)> = stream::iter(0..count)
        .map(|i| {
            let call = request(i);
            async move {
                let sent = Instant::now();
                let status = call.await;
                (status, sent.elapsed())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let wall = started.elapsed();
    let failures: Vec<_> = results
        .iter()
        .filter(|(status, _)| *status != expected)
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {count} failed: {failures:?}",
        failures.len()
    );
    (
        results.into_iter().map(|(_, latency)| latency).collect(),
        wall,
    )
}

/// The problem body `cargo lambda watch` answers with when an invocation fails inside the
/// emulator (the hub's errors are `{"error": ..., "message": ...}`).
fn is_emulator_fault(body: &Value) -> bool {
    body["type"] == "https://httpstatuses.com/500" && body.get("error").is_none()
}

#[tokio::test]
async fn concurrent_logins_syncs_and_reads_lose_nothing() {
    let providers = FakeProviders::start().await;
    providers.fresh_identity_per_consent();
    providers.add_files("google", 50);
    providers.add_files("onedrive", 50);
    let hub = LocalHub::start(&providers.env_vars()).await;

    let (latencies, wall) = run(2 * LOGINS_PER_PROVIDER, StatusCode::OK, |i| {
        let provider = if i % 2 == 0 { "google" } else { "onedrive" };
        let hub = &hub;
        async move { hub.log_in(provider).await.0 }
    })
    .await;
    report("logins (login, consent, callback)", latencies, wall);
    let (_, users) = hub.json(hub.authed(Method::GET, "/users")).await;
    assert_eq!(
        users.as_array().unwrap().len(),
        2 * LOGINS_PER_PROVIDER,
        "no account lost or doubled"
    );

    let (latencies, wall) = run(USERS_CALLS, StatusCode::OK, |_| async {
        hub.authed(Method::GET, "/users")
            .send()
            .await
            .unwrap()
            .status()
    })
    .await;
    report("GET /users", latencies, wall);

    let started = Instant::now();
    let (latencies, wall) = run(SYNC_CALLS, StatusCode::ACCEPTED, |_| async {
        hub.authed(Method::POST, "/sync")
            .send()
            .await
            .unwrap()
            .status()
    })
    .await;
    report("POST /sync", latencies, wall);
    // Every account ends up synced with its whole drive, however the jobs interleaved.
    let ids: Vec<String> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    hub.eventually("every account synced", || async {
        let (_, users) = hub.json(hub.authed(Method::GET, "/users")).await;
        users
            .as_array()
            .unwrap()
            .iter()
            .all(|u| !u["last_synced_at"].is_null())
            .then_some(())
    })
    .await;
    println!(
        "load: {} sync requests drained ({} accounts) in {:.2} s",
        SYNC_CALLS,
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    for (read, id) in ids.iter().enumerate() {
        let path = format!("/users/{id}/files?limit=100");
        let (mut status, mut page) = hub.json(hub.authed(Method::GET, &path)).await;
        // Once in a full run on this machine, `cargo lambda watch` itself answered one of
        // these reads with its own problem body (not the hub's error shape), and the users
        // function logged no request, no error and no panic: a fault of the emulator's
        // invoke path, not of the hub. One more try for that exact answer only; a 500 of the
        // hub's, or a second emulator fault, still fails.
        if status == StatusCode::INTERNAL_SERVER_ERROR && is_emulator_fault(&page) {
            println!(
                "load: cargo lambda watch answered {page} after {read} reads; trying once more"
            );
            (status, page) = hub.json(hub.authed(Method::GET, &path)).await;
        }
        assert_eq!(status, StatusCode::OK, "{page}; log:\n{}", hub.log());
        assert_eq!(
            page["files"].as_array().map(Vec::len),
            Some(50),
            "{id}: {page}"
        );
    }
    let (_, after) = hub.json(hub.authed(Method::GET, "/users")).await;
    assert!(after
        .as_array()
        .unwrap()
        .iter()
        .all(|u: &Value| u["status"] == "active"));
}
