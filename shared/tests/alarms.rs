//! The template's alarms watch metrics that exist, and the operator knows what to do when
//! one goes off:
//!
//! - every alarm's metric (and every metric of a metric-math alarm) is either one AWS
//!   publishes for a resource of the stack, or one the hub writes itself: a name of
//!   `hub::metrics` in the namespace the functions get as `HUB_METRICS_NAMESPACE`, under the
//!   dimension the code gives it, or the metric of a metric filter of the template;
//! - the function errors and throttles alarms cover every function the code knows;
//! - every alarm notifies `AlarmTopicArn` when it is set, and has a runbook line in
//!   docs/DEPLOY.md;
//! - the optional dashboard is valid JSON and shows only metrics that exist;
//! - the rotation parameters are secret and reach the functions that use them.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::template::{load_template, logical_names, resources_of_type, Resolver};
use hub::deployment::FUNCTIONS;
use hub::metrics::{self, Metric};
use serde_json::Value as Json;
use serde_norway::Value as Yaml;

const STACK: &str = "hub";

/// Resources and parameters resolve to their logical ids, and a function's `!Ref` to its
/// `FunctionName` (`<stack>-<binary>`), as CloudFormation resolves it.
fn resolver(template: &Yaml) -> Resolver {
    let mut resolver = logical_names(template, "eu-west-1", "123456789012", STACK);
    for function in FUNCTIONS {
        resolver.names.insert(
            function.resource.to_string(),
            format!("{STACK}-{}", function.name),
        );
    }
    resolver
}

/// One metric an alarm or the dashboard reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Watched {
    namespace: String,
    name: String,
    dimensions: BTreeMap<String, String>,
}

fn dimensions(value: &Json) -> BTreeMap<String, String> {
    value
        .as_array()
        .map(|dimensions| {
            dimensions
                .iter()
                .map(|d| {
                    (
                        d["Name"].as_str().unwrap().to_string(),
                        d["Value"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The metrics an alarm reads: its own, or each `MetricStat` of its metric math.
fn watched(alarm: &Json) -> Vec<Watched> {
    if let Some(name) = alarm["MetricName"].as_str() {
        return vec![Watched {
            namespace: alarm["Namespace"].as_str().unwrap().to_string(),
            name: name.to_string(),
            dimensions: dimensions(&alarm["Dimensions"]),
        }];
    }
    alarm["Metrics"]
        .as_array()
        .expect("an alarm has MetricName or Metrics")
        .iter()
        .filter(|query| !query["MetricStat"].is_null())
        .map(|query| {
            let metric = &query["MetricStat"]["Metric"];
            Watched {
                namespace: metric["Namespace"].as_str().unwrap().to_string(),
                name: metric["MetricName"].as_str().unwrap().to_string(),
                dimensions: dimensions(&metric["Dimensions"]),
            }
        })
        .collect()
}

/// What exists: the hub's own metrics (the code's names, in the namespace the template
/// gives the functions, under `Function`), the metric filters' metrics, and the AWS metrics
/// of the stack's own resources.
fn exists(template: &Yaml, resolver: &Resolver, metric: &Watched) -> Result<(), String> {
    let hub_namespace = resolver.resolve(
        &template["Globals"]["Function"]["Environment"]["Variables"]["HUB_METRICS_NAMESPACE"],
    );
    let functions: BTreeSet<String> = FUNCTIONS.iter().map(|f| f.name.to_string()).collect();
    let function_names: BTreeSet<String> = FUNCTIONS
        .iter()
        .map(|f| format!("{STACK}-{}", f.name))
        .collect();
    let resource = |id: &str| !template["Resources"][id].is_null();
    let dims: Vec<(&str, &str)> = metric
        .dimensions
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match metric.namespace.as_str() {
        namespace if Json::String(namespace.into()) == hub_namespace => {
            let filters: BTreeSet<String> = resources_of_type(template, "AWS::Logs::MetricFilter")
                .iter()
                .flat_map(|(_, filter)| {
                    resolver
                        .resolve(&filter["Properties"]["MetricTransformations"])
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| t["MetricName"].as_str().unwrap().to_string())
                        .collect::<Vec<_>>()
                })
                .collect();
            if filters.contains(&metric.name) && dims.is_empty() {
                return Ok(());
            }
            if !metrics::ALL.iter().any(|m| m.name() == metric.name) {
                return Err(format!("the code writes no metric {}", metric.name));
            }
            // Every record carries `Function` (alone, or with one further dimension).
            match dims.as_slice() {
                [(metrics::DIMENSION_FUNCTION, function)] if functions.contains(*function) => {
                    Ok(())
                }
                other => Err(format!("{}: dimensions {other:?}", metric.name)),
            }
        }
        "AWS/Lambda" if ["Errors", "Throttles"].contains(&metric.name.as_str()) => {
            match dims.as_slice() {
                [("FunctionName", name)] if function_names.contains(*name) => Ok(()),
                other => Err(format!("{}: dimensions {other:?}", metric.name)),
            }
        }
        "AWS/SQS" if metric.name == "ApproximateNumberOfMessagesVisible" => match dims.as_slice() {
            [("QueueName", queue)]
                if template["Resources"][*queue]["Type"].as_str() == Some("AWS::SQS::Queue") =>
            {
                Ok(())
            }
            other => Err(format!("{}: dimensions {other:?}", metric.name)),
        },
        // HTTP APIs publish Count, 4xx, 5xx, latencies by `ApiId` (and finer).
        "AWS/ApiGateway" if ["Count", "4xx", "5xx"].contains(&metric.name.as_str()) => {
            match dims.as_slice() {
                [("ApiId", api)] if resource(api) => Ok(()),
                other => Err(format!("{}: dimensions {other:?}", metric.name)),
            }
        }
        other => Err(format!(
            "{other} {} is not a metric of this stack",
            metric.name
        )),
    }
}

fn alarms(template: &Yaml) -> Vec<(&str, &Yaml)> {
    resources_of_type(template, "AWS::CloudWatch::Alarm")
}

/// An alarm's properties resolved, but for its actions (an `!If` on `HasAlarmTopic`, which
/// `every_alarm_notifies_the_topic_and_has_a_runbook_line` checks).
fn alarm_properties(resolver: &Resolver, alarm: &Yaml) -> Json {
    let mut properties = alarm["Properties"].as_mapping().unwrap().clone();
    properties.remove("AlarmActions");
    properties.remove("OKActions");
    resolver.resolve(&Yaml::Mapping(properties))
}

#[test]
fn every_alarm_watches_a_metric_that_exists() {
    let template = load_template();
    let resolver = resolver(&template);
    let mut wrong = Vec::new();
    for (name, alarm) in alarms(&template) {
        let alarm = alarm_properties(&resolver, alarm);
        let metrics = watched(&alarm);
        assert!(!metrics.is_empty(), "{name}");
        for metric in metrics {
            if let Err(why) = exists(&template, &resolver, &metric) {
                wrong.push(format!("{name}: {why}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The alarms the issue asks for are there, on the metrics the code writes.
#[test]
fn the_hubs_own_alarms_watch_the_workers_metrics() {
    let template = load_template();
    let resolver = resolver(&template);
    for (alarm, metric) in [
        ("StaleAccountsAlarm", Metric::StaleAccounts),
        ("AccountsNeedingReauthAlarm", Metric::AccountsNeedingReauth),
    ] {
        let alarm = alarm_properties(&resolver, &template["Resources"][alarm]);
        let watched = watched(&alarm);
        assert_eq!(watched.len(), 1);
        assert_eq!(watched[0].name, metric.name());
        assert_eq!(
            watched[0].dimensions[metrics::DIMENSION_FUNCTION],
            hub::deployment::SYNC_WORKER.name
        );
        // Counts: summed over the period.
        assert_eq!(alarm["Statistic"], "Sum");
    }
}

#[test]
fn function_errors_and_throttles_cover_every_function() {
    let template = load_template();
    let resolver = resolver(&template);
    for (alarm, metric) in [
        ("FunctionErrorsAlarm", "Errors"),
        ("FunctionThrottlesAlarm", "Throttles"),
    ] {
        let properties = alarm_properties(&resolver, &template["Resources"][alarm]);
        let covered: BTreeSet<String> = watched(&properties)
            .into_iter()
            .filter(|m| m.namespace == "AWS/Lambda" && m.name == metric)
            .map(|m| m.dimensions["FunctionName"].clone())
            .collect();
        let expected: BTreeSet<String> = FUNCTIONS
            .iter()
            .map(|f| format!("{STACK}-{}", f.name))
            .collect();
        assert_eq!(covered, expected, "{alarm}");
        // The one time series returned is the sum of them all.
        let returned: Vec<&Json> = properties["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|query| query["ReturnData"] == Json::Bool(true))
            .collect();
        assert_eq!(returned.len(), 1, "{alarm}");
        assert_eq!(returned[0]["Expression"], "SUM(METRICS())", "{alarm}");
    }
}

#[test]
fn every_alarm_notifies_the_topic_and_has_a_runbook_line() {
    let template = load_template();
    let deploy =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DEPLOY.md")).unwrap();
    let runbook = deploy
        .split("\n## ")
        .find(|section| section.contains("Alarms and their runbook"))
        .expect("docs/DEPLOY.md has a section \"Alarms and their runbook\"");
    for (name, alarm) in alarms(&template) {
        for action in ["AlarmActions", "OKActions"] {
            let Yaml::Tagged(choice) = &alarm["Properties"][action] else {
                panic!("{name}: {action} is an !If on HasAlarmTopic")
            };
            assert_eq!(choice.tag.to_string(), "!If", "{name}");
            assert_eq!(choice.value[0].as_str(), Some("HasAlarmTopic"), "{name}");
        }
        assert!(
            runbook.contains(&format!("`{name}`")),
            "docs/DEPLOY.md's runbook has no line for {name}"
        );
    }
}

#[test]
fn the_dashboard_is_optional_and_shows_metrics_that_exist() {
    let template = load_template();
    let resolver = resolver(&template);
    let dashboard = &template["Resources"]["HubDashboard"];
    assert_eq!(dashboard["Condition"].as_str(), Some("HasDashboard"));
    let Yaml::Tagged(body) = &dashboard["Properties"]["DashboardBody"] else {
        panic!("DashboardBody is a !Sub")
    };
    let body: Json =
        serde_json::from_str(&resolver.substitute(body.value.as_str().unwrap())).unwrap();
    let mut shown = 0;
    for widget in body["widgets"].as_array().unwrap() {
        for line in widget["properties"]["metrics"].as_array().unwrap() {
            // [namespace, name, dimension, value, ..., {options}]
            let parts: Vec<&str> = line
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Json::as_str)
                .collect();
            let dimensions = parts[2..]
                .chunks(2)
                .map(|pair| (pair[0].to_string(), pair[1].to_string()))
                .collect();
            let metric = Watched {
                namespace: parts[0].to_string(),
                name: parts[1].to_string(),
                dimensions,
            };
            exists(&template, &resolver, &metric).unwrap_or_else(|why| panic!("{why}"));
            shown += 1;
        }
    }
    assert!(shown >= metrics::ALL.len());
}

/// The rotation parameters are secret, and each reaches the functions that read its
/// variable: the next API key wherever the current one is, the next webhook secret wherever
/// the current one is.
#[test]
fn rotation_parameters_are_secret_and_reach_their_functions() {
    let template = load_template();
    for parameter in ["HubApiKeyNext", "WebhookSecretNext"] {
        assert_eq!(
            template["Parameters"][parameter]["NoEcho"].as_bool(),
            Some(true),
            "{parameter}"
        );
        assert_eq!(
            template["Parameters"][parameter]["Default"].as_str(),
            Some(""),
            "{parameter}: empty outside a rotation"
        );
    }
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert!(!globals["HUB_WEBHOOK_SECRET"].is_null());
    assert!(!globals["HUB_WEBHOOK_SECRET_NEXT"].is_null());
    for (name, function) in resources_of_type(&template, "AWS::Serverless::Function") {
        let own = &function["Properties"]["Environment"]["Variables"];
        assert_eq!(
            own["HUB_API_KEY"].is_null(),
            own["HUB_API_KEY_NEXT"].is_null(),
            "{name}: HUB_API_KEY_NEXT goes where HUB_API_KEY goes"
        );
    }
}

/// Per-file log lines are off by default in AWS (the parameter's default), on the worker,
/// which writes them; the variables are documented with the others.
#[test]
fn file_name_lines_are_off_by_default_and_documented() {
    let template = load_template();
    assert_eq!(
        template["Parameters"]["LogFileNames"]["Default"].as_str(),
        Some("false")
    );
    let worker = &template["Resources"][hub::deployment::SYNC_WORKER.resource];
    let Yaml::Tagged(reference) =
        &worker["Properties"]["Environment"]["Variables"]["HUB_LOG_FILE_NAMES"]
    else {
        panic!("sync-worker's HUB_LOG_FILE_NAMES is !Ref LogFileNames")
    };
    assert_eq!(reference.value.as_str(), Some("LogFileNames"));
    let api =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md")).unwrap();
    let deploy =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DEPLOY.md")).unwrap();
    for var in [
        "HUB_LOG_FILE_NAMES",
        "HUB_METRICS_NAMESPACE",
        "HUB_STALE_SYNC_AFTER_MINUTES",
        "HUB_API_KEY_NEXT",
        "HUB_WEBHOOK_SECRET_NEXT",
    ] {
        assert!(api.contains(&format!("`{var}`")), "docs/API.md: {var}");
        assert!(
            deploy.contains(&format!("`{var}`")),
            "docs/DEPLOY.md: {var}"
        );
    }
}

fn deploy_md() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DEPLOY.md")).unwrap()
}

/// Every `sam deploy --parameter-overrides NAME=...` of docs/DEPLOY.md names a parameter of
/// the template (a misspelt one makes `sam deploy` fail), including those continued on the
/// next lines of the command.
#[test]
fn the_parameters_deploy_md_overrides_exist() {
    let template = load_template();
    let deploy = deploy_md();
    let commands = deploy
        .replace("\\\n", " ")
        .lines()
        .filter_map(|line| {
            line.split_once("--parameter-overrides")
                .map(|(_, rest)| rest.to_string())
        })
        .collect::<Vec<_>>();
    assert!(commands.len() >= 5, "{commands:?}");
    for rest in commands {
        // Stop at a comment; each `NAME=` is a parameter.
        let rest = rest.split('#').next().unwrap();
        for word in rest.split_whitespace() {
            let Some((name, _)) = word.split_once('=') else {
                continue;
            };
            assert!(
                !template["Parameters"][name].is_null(),
                "docs/DEPLOY.md overrides {name}, which template.yaml does not have"
            );
        }
    }
}

/// docs/DEPLOY.md's table of metrics lists exactly the metrics the code writes, with their
/// units.
#[test]
fn deploy_md_lists_the_metrics_the_code_writes() {
    let deploy = deploy_md();
    let section = deploy
        .split("\n### ")
        .find(|section| section.starts_with("Metrics"))
        .expect("docs/DEPLOY.md has a section \"Metrics\"");
    let listed: BTreeSet<(String, String)> = section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            match cells.as_slice() {
                ["", name, unit, _, ""] if name.starts_with('`') => {
                    Some((name.trim_matches('`').to_string(), unit.to_string()))
                }
                _ => None,
            }
        })
        .collect();
    let written: BTreeSet<(String, String)> = metrics::ALL
        .iter()
        .map(|m| (m.name().to_string(), m.unit().to_string()))
        .collect();
    assert_eq!(listed, written);
}
