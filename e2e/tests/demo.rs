//! The click-through demo as a newcomer gets it: `scripts/dev` with no OAuth client configured
//! (its env file created from `.env.example` on this first run) starts the hub against the
//! testkit's stand-ins and the demo app, and prints one URL. A real browser opens it, connects
//! a drive through the connect page and the stand-in's consent page, lands on the demo app's
//! `/connected` page and sees the sample drive's files there once the first sync has run.
//!
//! Runs `scripts/dev` itself, on free ports, with its env file, temporary directory and data in
//! a temp dir (never the developer's `.env.local` or `.hub-data`), and stops its whole process
//! tree at the end. Needs `chromium` and `chromedriver` (see `hub_e2e::browser`).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use hub_e2e::browser::{click, landed_at, param, screenshot, Driver};
use hub_e2e::{descendants, free_port, stop_process_tree, workspace_root};
use hub_testkit::sample_drive::sample_drive;
use hub_testkit::Provider;
use rustix::process::{kill_process, Pid, Signal};

/// Waits until the page shows every one of `present` and none of `absent`.
async fn wait_for_page(browser: &fantoccini::Client, present: &[&str], absent: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = browser.source().await.unwrap();
        if present.iter().all(|text| page.contains(text))
            && !absent.iter().any(|text| page.contains(text))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {present:?} and not {absent:?}; page:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `scripts/dev` in a process group of its own, its whole tree stopped when dropped.
struct Dev {
    child: Child,
    log: std::path::PathBuf,
    stopped: bool,
}

impl Dev {
    fn start(dir: &Path, ports: [u16; 3]) -> Dev {
        let [hub, standins, demo] = ports;
        let log = dir.join("dev.log");
        let output = File::create(&log).unwrap();
        let child = Command::new(workspace_root().join("scripts/dev"))
            .current_dir(workspace_root())
            .env("HUB_ENV_FILE", dir.join("hub.env"))
            .env("HUB_PORT", hub.to_string())
            .env("HUB_STANDINS_PORT", standins.to_string())
            .env("HUB_DEMO_APP_PORT", demo.to_string())
            // The demo's working files (its env file, the hub's data) go under the temp dir.
            .env("TMPDIR", dir)
            .env_remove("HUB_PUBLIC_URL")
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .process_group(0)
            .spawn()
            .expect("scripts/dev runs");
        Dev {
            child,
            log,
            stopped: false,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until scripts/dev has printed `line` (it builds the functions first).
    async fn printed(&mut self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(1800);
        while !self.log().lines().any(|printed| printed.trim() == line) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "scripts/dev ended ({status}) before printing {line}:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "scripts/dev did not print {line}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// SIGTERM to every process of its tree (the functions are in process groups of their
    /// own), then to its process group; once.
    fn stop(&mut self) {
        if !std::mem::replace(&mut self.stopped, true) {
            stop_process_tree(&mut self.child, Signal::TERM);
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the process is gone (or a zombie, about to be reaped).
fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn a_newcomer_clicks_through_the_demo_against_the_stand_ins() {
    let dir = tempfile::tempdir().unwrap();
    let mut ports = [free_port(), free_port(), free_port()];
    while ports[1] == ports[0] || ports[2] == ports[0] || ports[2] == ports[1] {
        ports = [free_port(), free_port(), free_port()];
    }
    let [hub_port, standins_port, demo_port] = ports;
    let mut dev = Dev::start(dir.path(), ports);
    let demo_url = format!("http://localhost:{demo_port}/");
    dev.printed(&demo_url).await;
    let log = dev.log();
    assert!(
        log.contains("DEMO MODE") && log.contains("NOT the real providers"),
        "it says loudly what it runs against:\n{log}"
    );
    let env_file = std::fs::read_to_string(dir.path().join("hub.env")).unwrap();
    let example = std::fs::read_to_string(workspace_root().join(".env.example")).unwrap();
    assert_eq!(
        env_file, example,
        "the first run's env file is .env.example"
    );

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.goto(&demo_url).await.unwrap();
    screenshot(&browser, "demo-app").await;
    click(&browser, Locator::LinkText("Connect a drive")).await;

    // The hub's connect page, with the four stand-in providers; the user picks Dropbox.
    landed_at(
        &browser,
        &format!("http://localhost:{hub_port}/connect?session="),
    )
    .await;
    let mut labels = Vec::new();
    for link in browser.find_all(Locator::Css("a.provider")).await.unwrap() {
        labels.push(link.text().await.unwrap());
    }
    assert_eq!(
        labels,
        [
            "Connect Google Drive",
            "Connect Microsoft OneDrive",
            "Connect Dropbox",
            "Connect Box"
        ]
    );
    click(&browser, Locator::LinkText("Connect Dropbox")).await;

    // The stand-in's consent page; the user allows.
    landed_at(
        &browser,
        &format!("http://127.0.0.1:{standins_port}/dropbox/"),
    )
    .await;
    let signed_in = browser.find(Locator::Css("strong.email")).await.unwrap();
    assert_eq!(
        signed_in.text().await.unwrap(),
        hub_testkit::DEFAULT_DROPBOX_EMAIL
    );
    screenshot(&browser, "demo-consent-page").await;
    click(&browser, Locator::Css("button.allow")).await;

    // Back in the demo app, which says so and, once the first sync ran, lists the files.
    let back = landed_at(&browser, &format!("{demo_url}connected")).await;
    assert_eq!(param(&back, "status"), Some("connected"), "{back:?}");
    assert_eq!(param(&back, "provider"), Some("dropbox"));
    let names: Vec<String> = sample_drive(Provider::Dropbox)
        .into_iter()
        .map(|item| item.name)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        // The page reloads itself until the account has synced.
        let page = browser.source().await.unwrap();
        if names.iter().all(|name| page.contains(name.as_str())) {
            assert!(page.contains(hub_testkit::DEFAULT_DROPBOX_EMAIL), "{page}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sample drive's files did not show up; page:\n{page}\nlog:\n{}",
            dev.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    screenshot(&browser, "demo-connected").await;

    // A file's bytes through the whole chain: the demo app's Download link (the app asks the
    // hub's content route with its key), the hub's 302, the provider's link.
    let download = browser
        .find(Locator::XPath(
            "//li[span[@class='file-name' and contains(., 'Shopping list.txt')]]/a[@class='download']",
        ))
        .await
        .expect("a Download link by the shopping list")
        .attr("href")
        .await
        .unwrap()
        .expect("an href");
    let fetched = oauth2::reqwest::get(format!("{}{}", demo_url.trim_end_matches('/'), download))
        .await
        .unwrap();
    assert_eq!(fetched.status(), oauth2::reqwest::StatusCode::OK);
    assert_eq!(
        &fetched.bytes().await.unwrap()[..],
        hub_testkit::sample_drive::SHOPPING_LIST,
        "the file's bytes arrive exactly"
    );

    // Folders, as a file picker shows them: the top level, a folder's children, back up.
    click(&browser, Locator::Css("a.browse")).await;
    wait_for_page(
        &browser,
        &["Projects", "Shopping list.txt"],
        &["Roadmap 2026.xlsx"],
    )
    .await;
    click(&browser, Locator::LinkText("Projects")).await;
    wait_for_page(
        &browser,
        &["Roadmap 2026.xlsx", "Quarterly report Q3.pdf"],
        &["Shopping list.txt"],
    )
    .await;
    screenshot(&browser, "demo-browse-folder").await;
    click(&browser, Locator::Css("a.up")).await;
    wait_for_page(
        &browser,
        &["Projects", "Shopping list.txt"],
        &["Roadmap 2026.xlsx"],
    )
    .await;

    // The search box asks the provider's own search.
    browser
        .find(Locator::Css("input[name=q]"))
        .await
        .unwrap()
        .send_keys("roadmap")
        .await
        .unwrap();
    click(&browser, Locator::Css("form.search button")).await;
    wait_for_page(
        &browser,
        &["Results for", "Roadmap 2026.xlsx"],
        &["Shopping list.txt"],
    )
    .await;
    screenshot(&browser, "demo-search").await;
    browser.close().await.unwrap();

    // Stopping scripts/dev (SIGTERM to the script alone) stops everything it started, and
    // removes the demo's files; then its whole process group is stopped anyway.
    let started: Vec<i32> = descendants(dev.child.id())
        .into_iter()
        .map(|(pid, _)| pid.as_raw_nonzero().get())
        .collect();
    assert!(!started.is_empty());
    let script = Pid::from_child(&dev.child);
    kill_process(script, Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while dev.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "scripts/dev did not end on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !started.iter().all(|pid| ended(*pid)) {
        let left: Vec<_> = started.iter().filter(|pid| !ended(**pid)).collect();
        assert!(Instant::now() < deadline, "processes left: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    dev.stop();
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name())
        .filter(|name| name.to_string_lossy().starts_with("hub-demo."))
        .collect();
    assert!(
        left.is_empty(),
        "the demo's working dir is removed: {left:?}"
    );
}
