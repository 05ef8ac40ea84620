//! The README's commands, run as written against the real binaries, so that the README cannot
//! drift from what the hub does: the quick start's `curl` examples (with a real account's id
//! for `<id>`, and with `<id>` pasted literally, which must get the API's JSON error), every
//! `cargo lambda invoke` example under `cargo lambda watch` (each must return within a
//! timeout; `app-webhooks` with and without `HUB_WEBHOOK_URL`), an unknown path (the API's
//! JSON 404, not the emulator's list of functions), and `scripts/dev`'s refusals (a busy port,
//! a public URL on another port) with the redirect URIs it prints.
//!
//! The commands are read from README.md's code blocks, not copied here.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hub_e2e::{free_port, stop_process_tree, workspace_root, LocalHub};
use hub_testkit::webhook_receiver::WebhookReceiver;
use hub_testkit::FakeProviders;
use rustix::process::Signal;
use serde_json::Value;

const README_URL: &str = "http://localhost:9000";
const README_KEY: &str = "local-dev-key";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwJf6zXZsZqeY=";

/// One command of a README code block: its words, and the example answer printed under it
/// (the comment line that starts with `# {` or `# [`), if any.
#[derive(Debug)]
struct Example {
    words: Vec<String>,
    answer: Option<Value>,
}

/// The `sh` code blocks of the README's quick start (up to "## What it does").
fn quick_start_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let quick_start = readme
        .split("\n## What it does")
        .next()
        .unwrap()
        .to_string();
    quick_start
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap().to_string())
        .collect()
}

/// The commands of a block that start with `program`: continuation lines joined, trailing
/// comments cut, each with the example answer that follows it.
fn examples(block: &str, program: &str) -> Vec<Example> {
    let mut found: Vec<Example> = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        let trimmed = line.trim();
        if let Some(comment) = trimmed.strip_prefix('#') {
            let comment = comment.trim();
            if comment.starts_with('{') || comment.starts_with('[') {
                if let Some(last) = found.last_mut() {
                    last.answer = last.answer.take().or(serde_json::from_str(comment).ok());
                }
            }
            continue;
        }
        pending.push_str(trimmed.trim_end_matches('\\'));
        pending.push(' ');
        if trimmed.ends_with('\\') {
            continue;
        }
        let command = std::mem::take(&mut pending);
        let words = shell_words(&command);
        if words.first().map(String::as_str) == Some(program) {
            found.push(Example {
                words,
                answer: None,
            });
        }
    }
    found
}

/// Splits a command line as sh does for the README's commands: words, single and double
/// quotes, and a `#` comment after a word.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                word.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                in_word = true;
                word.extend(chars.by_ref().take_while(|&c| c != '"'));
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Runs `program` with `args` in the workspace, killed after `timeout`: exit success, stdout,
/// stderr.
fn run(program: &str, args: &[String], timeout: Duration) -> (bool, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).ok();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).ok();
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            stop_process_tree(&mut child, Signal::KILL);
            panic!(
                "`{program} {}` did not return within {timeout:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (status.success(), out.join().unwrap(), err.join().unwrap())
}

/// A curl example with the README's hub and key replaced by the test's, `$id` by `id` (as
/// the shell does); prints the status after the body.
fn curl_args(example: &Example, hub: &LocalHub, id: &str) -> Vec<String> {
    let mut args: Vec<String> = example.words[1..]
        .iter()
        .map(|word| {
            word.replace(README_URL, &hub.url)
                .replace(README_KEY, hub_e2e::API_KEY)
                .replace("$id", id)
        })
        .collect();
    args.extend(["-sS", "-w", "\n%{http_code}"].map(String::from));
    args
}

/// Runs a curl example: status and body (JSON, or `Null` when empty).
fn curl(example: &Example, hub: &LocalHub, id: &str) -> (u16, Value) {
    let args = curl_args(example, hub, id);
    let (ok, out, err) = run("curl", &args, Duration::from_secs(120));
    assert!(ok, "curl {args:?} failed: {err}");
    let (body, status) = out.rsplit_once('\n').unwrap();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {body}"))
    };
    (status.parse().unwrap(), body)
}

/// The answer has the README's example shape: the same JSON type and, for an object, the
/// same keys.
fn assert_shape(example: &Example, answer: &Value) {
    let Some(expected) = &example.answer else {
        return;
    };
    match (expected, answer) {
        (Value::Object(want), Value::Object(got)) => {
            let want: Vec<_> = want.keys().collect();
            let got: Vec<_> = got.keys().collect();
            assert_eq!(want, got, "{:?}: {answer}", example.words);
        }
        (Value::Array(_), Value::Array(_)) => {}
        _ => panic!(
            "{:?} answered {answer}, the README shows {expected}",
            example.words
        ),
    }
}

/// The hub's variables for every stand-in, as the demo configures them.
fn every_provider(providers: &FakeProviders) -> Vec<(String, String)> {
    let mut env = providers.env_vars();
    env.extend(providers.dropbox_env_vars());
    env.extend(providers.box_env_vars());
    env
}

/// The quick start's curl examples in order, as a newcomer runs them: `/config`, `/users`
/// (empty), the login (done by the test as the browser would), `POST /sync`, the account's
/// files and its `DELETE`. Then `<id>` pasted as printed, and an unknown path.
// Multi-threaded: the commands run blocking on the test's thread while the stand-ins and the
// webhook receiver answer on the runtime's others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_curl_examples_work_as_written() {
    let blocks = quick_start_blocks();
    let curls: Vec<Example> = blocks.iter().flat_map(|b| examples(b, "curl")).collect();
    assert_eq!(curls.len(), 5, "the quick start's curl examples: {curls:?}");
    let providers = FakeProviders::start().await;
    let hub = LocalHub::start(&every_provider(&providers)).await;

    let (status, config) = curl(&curls[0], &hub, "");
    assert_eq!(status, 200, "{config}");
    assert_shape(&curls[0], &config);
    let (status, users) = curl(&curls[1], &hub, "");
    assert_eq!((status, &users), (200, &curls[1].answer.clone().unwrap()));

    let (status, account) = hub.log_in("google").await;
    assert_eq!(status, 200, "{account}");
    let id = account["id"].as_str().unwrap().to_string();

    let (status, started) = curl(&curls[2], &hub, &id);
    assert_eq!(status, 202, "{started}");
    assert_shape(&curls[2], &started);
    assert!(
        started["jobs_enqueued"].as_u64().unwrap() >= 1,
        "the example syncs the account just connected: {started}"
    );
    let (status, files) = curl(&curls[3], &hub, &id);
    assert_eq!(status, 200, "{files}");
    assert!(files["files"].is_array(), "{files}");

    // The id left as printed (the placeholder, or `$id` unset), or `<id>` percent-encoded as a
    // browser sends it: the API's JSON error, never an empty answer. (A raw `<` never reaches
    // the hub locally: `cargo lambda watch`'s HTTP server refuses the request line with an
    // empty 400, which is why the README prints no `<id>` in a URL.)
    for pasted in [placeholder_id(&blocks), "", "%3Cid%3E"] {
        let (status, error) = curl(&curls[3], &hub, pasted);
        assert!(
            (400..500).contains(&status)
                && error["error"].is_string()
                && error["message"].is_string(),
            "{pasted}: {status} {error}"
        );
    }

    let (status, deleted) = curl(&curls[4], &hub, &id);
    assert_eq!((status, deleted), (204, Value::Null));

    // A path no function serves: the API's JSON 404, not `cargo lambda watch`'s own answer.
    let unknown = hub.get("/no/such/route").send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"], "not_found", "{body}");
}

/// The value the README's `id=` line gives: what a reader who does not replace it sends.
fn placeholder_id(blocks: &[String]) -> &str {
    blocks
        .iter()
        .flat_map(|block| block.lines())
        .find_map(|line| line.strip_prefix("id="))
        .expect("the quick start sets `id=` before using $id")
        .trim()
}

/// `cargo lambda invoke`'s arguments of a README example, against the test's hub's port.
fn invoke_args(example: &Example, hub: &LocalHub) -> Vec<String> {
    let port = hub.url.rsplit(':').next().unwrap().to_string();
    let mut args = example.words[1..].to_vec();
    args.extend(["--invoke-port".to_string(), port]);
    args
}

/// The function an invoke example names (its first argument that is no option or value).
fn invoked_function(example: &Example) -> String {
    let words = &example.words[3..];
    let mut skip = false;
    for word in words {
        if skip {
            skip = false;
        } else if word.starts_with('-') {
            skip = !word.contains('=');
        } else {
            return word.clone();
        }
    }
    panic!("{:?} names no function", example.words)
}

fn invoke_examples() -> Vec<Example> {
    let examples: Vec<Example> = quick_start_blocks()
        .iter()
        .flat_map(|b| examples(b, "cargo"))
        .filter(|e| e.words.get(1..3) == Some(&["lambda".to_string(), "invoke".to_string()]))
        .collect();
    assert_eq!(
        examples.len(),
        5,
        "the README's invoke examples: {examples:?}"
    );
    examples
}

/// Every `cargo lambda invoke` example returns, within a minute, what its function answers
/// to its sample event. Without `HUB_WEBHOOK_URL`, `app-webhooks` cannot start: the
/// invocation returns that reason instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_invoke_examples_return_their_answers() {
    let providers = FakeProviders::start().await;
    let hub = LocalHub::start(&every_provider(&providers)).await;
    for example in invoke_examples() {
        let function = invoked_function(&example);
        let args = invoke_args(&example, &hub);
        let (ok, out, err) = run("cargo", &args, Duration::from_secs(120));
        let answer = || -> Value {
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{function}: {e}: {out} {err}"))
        };
        match function.as_str() {
            "users" => {
                assert!(ok, "{err}");
                assert_eq!(answer()["statusCode"], 200, "{out}");
                let body: Value = serde_json::from_str(answer()["body"].as_str().unwrap()).unwrap();
                assert!(body["available_providers"].is_array(), "{body}");
            }
            "sync-fanout" => {
                assert!(ok, "{err}");
                assert_eq!(answer()["message"], "Sync process started...", "{out}");
            }
            "sync-worker" => {
                assert!(ok, "{err}");
                assert_eq!(
                    answer()["batchItemFailures"],
                    serde_json::json!([]),
                    "{out}"
                );
            }
            "app-webhooks" => {
                assert!(
                    !ok,
                    "without HUB_WEBHOOK_URL app-webhooks cannot deliver: {out}"
                );
                // cargo lambda prints the function's error in a box, wrapped to its width.
                let words: Vec<&str> = err
                    .split(|c: char| c.is_whitespace() || "│×╰─▶├".contains(c))
                    .filter(|word| !word.is_empty())
                    .collect();
                let said = words.join(" ");
                assert!(
                    said.contains("app-webhooks cannot start")
                        && said.contains("HUB_WEBHOOK_URL is required by app-webhooks"),
                    "{err}"
                );
            }
            "provider-webhooks" => {
                assert!(ok, "{err}");
                assert_eq!(answer()["statusCode"], 200, "{out}");
                assert_eq!(answer()["body"], "dropbox-challenge-1", "{out}");
            }
            other => panic!("an invoke example of {other}: say here what it answers"),
        }
    }
    // The log says why the function cannot start, once, at its cold start.
    assert!(
        hub.log().contains("the function cannot start"),
        "{}",
        hub.log()
    );

    drop(hub);

    // With HUB_WEBHOOK_URL set, as the example's comment says, the batch's event is delivered.
    let receiver = WebhookReceiver::start(SECRET).await;
    let mut env = every_provider(&providers);
    env.extend([
        ("HUB_WEBHOOK_URL".to_string(), receiver.url()),
        ("HUB_WEBHOOK_SECRET".to_string(), SECRET.to_string()),
    ]);
    let hub = LocalHub::start(&env).await;
    let example = invoke_examples()
        .into_iter()
        .find(|e| invoked_function(e) == "app-webhooks")
        .unwrap();
    let (ok, out, err) = run(
        "cargo",
        &invoke_args(&example, &hub),
        Duration::from_secs(120),
    );
    assert!(ok, "{out} {err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        answer["batchItemFailures"],
        serde_json::json!([]),
        "{out}; log:\n{}",
        hub.log()
    );
    assert_eq!(receiver.received().len(), 1);
}

/// `scripts/dev` with a Google client in its env file, on `port`: exit success and output,
/// within a minute (it refuses before starting anything in these cases).
fn dev_with_client(env_file: &str, port: u16) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.env");
    std::fs::write(&path, env_file).unwrap();
    let mut child = Command::new(workspace_root().join("scripts/dev"))
        .current_dir(workspace_root())
        .env("HUB_ENV_FILE", &path)
        .env("HUB_PORT", port.to_string())
        .env_remove("HUB_PUBLIC_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            stop_process_tree(&mut child, Signal::KILL);
            panic!("scripts/dev did not end: it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut output = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    (status.success(), output)
}

const CLIENTS: &str = "HUB_API_KEY=local-dev-key\nGOOGLE_CLIENT_ID=id\nGOOGLE_CLIENT_SECRET=secret\nBOX_CLIENT_ID=id\nBOX_CLIENT_SECRET=secret\n";

#[test]
fn scripts_dev_refuses_a_busy_port_after_printing_the_redirect_uris() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (ok, output) = dev_with_client(CLIENTS, port);
    assert!(!ok, "{output}");
    assert!(
        output.contains(&format!("port {port} is in use")),
        "{output}"
    );
    for provider in ["google", "box"] {
        let uri = format!("http://localhost:{port}/auth/{provider}/callback");
        assert!(output.contains(&uri), "{uri}: {output}");
    }
}

#[test]
fn scripts_dev_refuses_a_public_url_on_another_port() {
    let port = free_port();
    let env_file = format!("{CLIENTS}HUB_PUBLIC_URL=http://localhost:9000\n");
    let (ok, output) = dev_with_client(&env_file, port);
    assert!(!ok, "{output}");
    assert!(
        output.contains("HUB_PUBLIC_URL is http://localhost:9000")
            && output.contains(&format!("HUB_PUBLIC_URL=http://localhost:{port}")),
        "{output}"
    );
}

#[test]
fn the_readme_examples_are_found() {
    let blocks = quick_start_blocks();
    let curls: Vec<Example> = blocks.iter().flat_map(|b| examples(b, "curl")).collect();
    let first = &curls[0];
    assert_eq!(first.words, ["curl", "http://localhost:9000/config"]);
    assert!(first.answer.is_some());
    let invokes = invoke_examples();
    assert!(invokes
        .iter()
        .all(|e| e.words.contains(&"--data-file".to_string())));
    assert_eq!(shell_words(r#"a 'b c' "d" e # f"#), ["a", "b c", "d", "e"]);
}
