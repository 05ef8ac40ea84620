//! Runs the provider stand-ins on their own, for shell-driven tests and benchmarks:
//! `fake-providers [PORT] [--files N]` prints `FAKE_PROVIDERS_URL=...` and serves until killed.

use std::io::Write;

use hub_testkit::FakeProviders;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut port = 0;
    let mut files = 0;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--files" => {
                files = rest
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--files takes a number")
            }
            other => port = other.parse().expect("the port is a number"),
        }
    }
    let providers = FakeProviders::start_on(port).await;
    providers.add_files("google", files);
    providers.add_files("onedrive", files);
    println!("FAKE_PROVIDERS_URL={}", providers.url());
    std::io::stdout().flush().unwrap();
    std::future::pending::<()>().await;
}
