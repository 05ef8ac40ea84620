//! Runs the provider stand-ins on their own, for shell-driven tests, benchmarks and the demo:
//! `fake-providers [PORT] [--files N] [--sample-drive] [--interactive] [--hub-env]` prints
//! `FAKE_PROVIDERS_URL=...` and serves until killed.
//! `--files N` gives the default Google, Microsoft, Dropbox and Box users N files each;
//! `--sample-drive` gives them a small drive of realistic folders and files;
//! `--interactive` shows an HTML consent page with Allow and Deny instead of consenting at once;
//! `--hub-env` also prints the hub's variables that point it at the stand-ins (the four
//! providers' clients and endpoints), one `NAME=value` a line, then an empty line;
//! `--control-port N` serves the demo's controls there (`hub_testkit::demo_control`: add,
//! rename and delete a file as its user would) and prints `FAKE_PROVIDERS_CONTROL_URL=...`.

use std::io::Write;
use std::process::exit;

use hub_testkit::FakeProviders;

const USAGE: &str =
    "usage: fake-providers [PORT] [--files N] [--sample-drive] [--interactive] [--hub-env] \
     [--control-port N]";

fn usage(problem: &str) -> ! {
    eprintln!("fake-providers: {problem}\n{USAGE}");
    exit(2)
}

#[tokio::main]
async fn main() {
    let mut port = 0;
    let mut files = 0;
    let mut sample_drive = false;
    let mut interactive = false;
    let mut hub_env = false;
    let mut control_port: Option<u16> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--files" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => files = n,
                None => usage("--files takes a number"),
            },
            "--sample-drive" => sample_drive = true,
            "--interactive" => interactive = true,
            "--hub-env" => hub_env = true,
            "--control-port" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => control_port = Some(n),
                None => usage("--control-port takes a port number"),
            },
            other => match other.parse() {
                Ok(p) => port = p,
                Err(_) => usage(&format!("not a port: {other}")),
            },
        }
    }
    let providers = FakeProviders::start_on(port).await;
    providers.interactive_consent(interactive);
    if sample_drive {
        hub_testkit::sample_drive::add_sample_drives(&providers);
    }
    providers.add_files("google", files);
    providers.add_files("onedrive", files);
    providers.add_files("dropbox", files);
    providers.add_files("box", files);
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "FAKE_PROVIDERS_URL={}", providers.base_url());
    if let Some(port) = control_port {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("fake-providers: cannot listen on 127.0.0.1:{port}: {e}");
                exit(1)
            }
        };
        let address = listener
            .local_addr()
            .expect("a bound socket has an address");
        let control = hub_testkit::demo_control::router(providers.handle());
        tokio::spawn(async move { axum::serve(listener, control).await });
        let _ = writeln!(stdout, "FAKE_PROVIDERS_CONTROL_URL=http://{address}");
    }
    if hub_env {
        let variables = providers.env_vars().into_iter();
        let others = providers.dropbox_env_vars().into_iter();
        for (name, value) in variables.chain(others).chain(providers.box_env_vars()) {
            let _ = writeln!(stdout, "{name}={value}");
        }
        let _ = writeln!(stdout);
    }
    let _ = stdout.flush();
    std::future::pending::<()>().await;
}
