//! `hub-bench`: the hub's benchmarks, one subcommand each, driven by `scripts/bench`.
//!
//! ```text
//! hub-bench coldstart [--bin-dir target/release] [--events events] [--runs 10]
//! hub-bench fanout    [--aws-accounts 10000] [--local-accounts 10000,100000]
//! hub-bench worker    [--sizes 10000,50000,100000] [--aws-sizes 10000,100000] [--changes 10]
//! hub-bench cost      [--fanout-accounts 1000] [--batch 10] [--drive-files 100] [--changes 10]
//! hub-bench sizes
//! hub-bench large-drive [--files 300000] [--latency-ms 300] [--timeout-secs 120] [--backends local,aws] [--budget-secs 1100]
//! hub-bench push        [--runs 5] [--latency-ms 0] [--backends local,aws]
//! hub-bench delivery    [--events 1000]
//! hub-bench content     [--sizes 10MB,100MB,1GB] [--runs 3] [--redirect-calls 20] [--bin-dir target/release]
//! hub-bench queries   [--sizes 1000,10000,100000] [--aws-sizes 1000,10000]
//! hub-bench proxy-latency [--runs 200] [--concurrency 50] [--rounds 10] [--instances 50]
//! hub-bench drives    [--drives 20] [--files-per-drive 2500] [--box-files 20000] [--box-changes 10] [--runs 3]
//! hub-bench report    [--output BENCHMARKS.md]
//! ```
//!
//! Every subcommand also takes `--workspace DIR` (default `.`) and `--results DIR` (default
//! `target/bench-results`), where each benchmark leaves `<name>.json` for `report`. The AWS
//! benchmarks need `AWS_ENDPOINT_URL` naming a moto server. Nothing here asserts a duration.

mod coldstart;
mod consumer;
mod content;
mod cost;
mod delivery;
mod drives;
mod fanout;
mod large_drive;
mod mappings;
mod moto;
mod proxy;
mod proxy_latency;
mod push_latency;
mod queries;
mod report;
mod sizes;
mod support;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;

use support::{write_results, Result};

/// `--name value` pairs after the subcommand, and the positional arguments.
struct Args {
    flags: HashMap<String, String>,
    positional: Vec<String>,
}

impl Args {
    fn parse(args: impl Iterator<Item = String>) -> Result<Args> {
        let mut flags = HashMap::new();
        let mut positional = Vec::new();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.strip_prefix("--") {
                Some(name) => {
                    let value = args.next().ok_or(format!("--{name} needs a value"))?;
                    flags.insert(name.to_string(), value);
                }
                None => positional.push(arg),
            }
        }
        Ok(Args { flags, positional })
    }

    fn path(&self, name: &str, default: &str) -> PathBuf {
        PathBuf::from(self.flags.get(name).map_or(default, String::as_str))
    }

    fn number(&self, name: &str, default: usize) -> Result<usize> {
        match self.flags.get(name) {
            Some(value) => Ok(value
                .replace('_', "")
                .parse()
                .map_err(|_| format!("--{name} must be a number"))?),
            None => Ok(default),
        }
    }

    fn numbers(&self, name: &str, default: &[usize]) -> Result<Vec<usize>> {
        match self.flags.get(name) {
            Some(list) => list
                .split(',')
                .filter(|n| !n.trim().is_empty())
                .map(|n| Ok(n.trim().replace('_', "").parse()?))
                .collect(),
            None => Ok(default.to_vec()),
        }
    }
}

fn main() {
    // The AWS SDK reads credentials and region from the environment; moto accepts any.
    // Set before the runtime starts any thread.
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ] {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(dispatch()) {
        eprintln!("hub-bench: {e}");
        std::process::exit(1);
    }
}

async fn dispatch() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    let args = Args::parse(argv)?;
    let workspace = args.path("workspace", ".");
    let results = args.path("results", "target/bench-results");
    match command.as_str() {
        "coldstart" => {
            let options = coldstart::Options {
                bin_dir: args.path("bin-dir", "target/release"),
                events_dir: workspace.join("events"),
                runs: args.number("runs", 10)?,
                log_dir: results.clone(),
            };
            std::fs::create_dir_all(&results)?;
            write_results(&results, "coldstart", &coldstart::run(options).await?)
        }
        "fanout" => {
            let options = fanout::Options {
                aws_accounts: args.number("aws-accounts", 10_000)?,
                local_accounts: args.numbers("local-accounts", &[10_000, 100_000])?,
            };
            write_results(&results, "fanout", &fanout::run(options).await?)
        }
        "worker" => {
            let options = worker::Options {
                local_sizes: args.numbers("sizes", &[10_000, 50_000, 100_000])?,
                aws_sizes: args.numbers("aws-sizes", &[10_000, 100_000])?,
                changes: args.number("changes", 10)?,
            };
            write_results(&results, "worker", &worker::run(options).await?)
        }
        "worker-child" => match args.positional.as_slice() {
            [account, provider] => worker::child(account, provider).await,
            _ => Err("usage: hub-bench worker-child ACCOUNT_ID PROVIDER".into()),
        },
        "cost" => {
            let options = cost::Options {
                fanout_accounts: args.number("fanout-accounts", 1_000)?,
                batch: args.number("batch", 10)?,
                drive_files: args.number("drive-files", 100)?,
                changes: args.number("changes", 10)?,
            };
            write_results(&results, "cost", &cost::run(options).await?)
        }
        "large-drive" => {
            let backends = args.flags.get("backends").map_or("local,aws", String::as_str);
            let options = large_drive::Options {
                files: args.number("files", 300_000)?,
                latency: std::time::Duration::from_millis(args.number("latency-ms", 300)? as u64),
                timeout: std::time::Duration::from_secs(args.number("timeout-secs", 120)? as u64),
                local: backends.split(',').any(|b| b.trim() == "local"),
                aws: backends.split(',').any(|b| b.trim() == "aws"),
                budget: std::time::Duration::from_secs(args.number("budget-secs", 1_100)? as u64),
            };
            write_results(&results, "large-drive", &large_drive::run(options).await?)
        }
        "push" => {
            let backends = args.flags.get("backends").map_or("local,aws", String::as_str);
            let options = push_latency::Options {
                runs: args.number("runs", 5)?,
                latency: std::time::Duration::from_millis(args.number("latency-ms", 0)? as u64),
                local: backends.split(',').any(|b| b.trim() == "local"),
                aws: backends.split(',').any(|b| b.trim() == "aws"),
                push_queue: args.flags.get("push-queue").is_none_or(|v| v != "off"),
            };
            write_results(&results, "push", &push_latency::run(options).await?)
        }
        "delivery" => {
            let options = delivery::Options {
                events: args.number("events", 1_000)?,
            };
            write_results(&results, "delivery", &delivery::run(options).await?)
        }
        "content" => {
            let sizes = match args.flags.get("sizes") {
                Some(list) => list
                    .split(',')
                    .filter(|size| !size.trim().is_empty())
                    .map(content::parse_size)
                    .collect::<Result<Vec<_>>>()?,
                None => vec![10_000_000, 100_000_000, 1_000_000_000],
            };
            let options = content::Options {
                sizes,
                runs: args.number("runs", 3)?,
                redirect_calls: args.number("redirect-calls", 20)?,
                bin_dir: args.path("bin-dir", "target/release"),
                events_dir: workspace.join("events"),
                log_dir: results.clone(),
            };
            std::fs::create_dir_all(&results)?;
            write_results(&results, "content", &content::run(options).await?)
        }
        "queries" => {
            let options = queries::Options {
                sizes: args.numbers("sizes", &[1_000, 10_000, 100_000])?,
                aws_sizes: args.numbers("aws-sizes", &[1_000, 10_000])?,
            };
            write_results(&results, "queries", &queries::run(options).await?)
        }
        "proxy-latency" => {
            let concurrency = args.number("concurrency", 50)?;
            let options = proxy_latency::Options {
                runs: args.number("runs", 200)?,
                concurrency,
                rounds: args.number("rounds", 10)?,
                instances: args.number("instances", concurrency)?,
                workspace: workspace.clone(),
                log_dir: results.clone(),
            };
            write_results(&results, "proxy-latency", &proxy_latency::run(options).await?)
        }
        "drives" => {
            let options = drives::Options {
                drives: args.number("drives", 20)?,
                files_per_drive: args.number("files-per-drive", 2_500)?,
                box_files: args.number("box-files", 20_000)?,
                box_changes: args.number("box-changes", 10)?,
                runs: args.number("runs", 3)?,
            };
            write_results(&results, "drives", &drives::run(options).await?)
        }
        "sizes" => {
            let options = sizes::Options { workspace };
            write_results(&results, "sizes", &sizes::run(options)?)
        }
        "report" => {
            let options = report::Options {
                results_dir: results,
                output: args.path("output", "BENCHMARKS.md"),
            };
            let markdown = report::run(options)?;
            println!("{markdown}");
            Ok(())
        }
        _ => Err(format!(
            "unknown command '{command}': coldstart, fanout, worker, cost, sizes, large-drive, push, delivery, content, queries, proxy-latency, drives or report"
        )
        .into()),
    }
}
