//! The hub's own CloudWatch metrics, in CloudWatch's embedded metric format (EMF): one JSON
//! line on stdout per record, whose `_aws` member tells CloudWatch Logs which of its members
//! are metrics (in Lambda, stdout is the function's log group, where CloudWatch extracts
//! them; no `PutMetricData` call, no permission, no latency on the sync).
//! Specification: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>.
//!
//! A record is written only when `HUB_METRICS_NAMESPACE` is set (the template sets it to
//! `<stack>/hub`, the namespace its alarms watch); locally nothing is written, so the
//! console keeps the tracing lines only. The records are not tracing events: the tracing
//! layer would wrap them in its own fields, and the specification wants the directive at
//! the root of the line.
//!
//! Written as a small serde struct rather than with a metrics crate: the hub needs one
//! record per sync job and a fixed set of names that the template's alarms (and
//! `shared/tests/template.rs`) refer to, not a registry of counters flushed in the
//! background, which a Lambda invocation may freeze before it flushes.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use serde_json::Value;

/// The dimension every record carries: the function that wrote it (`sync-worker`), so that
/// an alarm names one metric without knowing the providers.
pub const DIMENSION_FUNCTION: &str = "Function";
/// The provider of the account a sync job was for.
pub const DIMENSION_PROVIDER: &str = "Provider";
/// Why a sync job failed: the contract's error code (`client_rejected`, `provider_error`...).
pub const DIMENSION_KIND: &str = "Kind";

/// The metrics the hub writes, each with its unit. The alarms of `template.yaml` refer to
/// these names (checked by `shared/tests/template.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// Sync jobs that synced their account to the end (1 per such job).
    SyncsCompleted,
    /// Pages of the provider's listing stored by the job.
    SyncPages,
    /// Index entries the job stored or marked deleted.
    FilesChanged,
    /// How long the job ran, from its start to its end (requeued or not).
    SyncDuration,
    /// Token refreshes the job made.
    TokenRefreshes,
    /// Sync jobs that failed, for the queue to retry (dimension [`DIMENSION_KIND`]).
    SyncFailures,
    /// Accounts the job turned `needs_reauth` (the provider refused the refresh token or
    /// no longer gives the user access).
    AccountsNeedingReauth,
    /// Jobs for an active account whose last completed sync is older than
    /// `HUB_STALE_SYNC_AFTER_MINUTES` (1 per such job): its syncs keep failing or stopping
    /// short.
    StaleAccounts,
}

/// Every metric, in the order of the enum.
pub const ALL: [Metric; 8] = [
    Metric::SyncsCompleted,
    Metric::SyncPages,
    Metric::FilesChanged,
    Metric::SyncDuration,
    Metric::TokenRefreshes,
    Metric::SyncFailures,
    Metric::AccountsNeedingReauth,
    Metric::StaleAccounts,
];

impl Metric {
    pub const fn name(self) -> &'static str {
        match self {
            Metric::SyncsCompleted => "SyncsCompleted",
            Metric::SyncPages => "SyncPages",
            Metric::FilesChanged => "FilesChanged",
            Metric::SyncDuration => "SyncDuration",
            Metric::TokenRefreshes => "TokenRefreshes",
            Metric::SyncFailures => "SyncFailures",
            Metric::AccountsNeedingReauth => "AccountsNeedingReauth",
            Metric::StaleAccounts => "StaleAccounts",
        }
    }

    /// One of the units the specification allows (CloudWatch's `StandardUnit`).
    pub const fn unit(self) -> &'static str {
        match self {
            Metric::SyncDuration => "Milliseconds",
            _ => "Count",
        }
    }
}

/// One record: the values of some metrics, with the dimensions they are published under.
#[derive(Clone, Debug)]
pub struct Record {
    function: &'static str,
    dimensions: BTreeMap<&'static str, String>,
    values: BTreeMap<Metric, f64>,
}

impl Record {
    /// An empty record of `function` (the `Function` dimension).
    pub fn new(function: &'static str) -> Self {
        Record {
            function,
            dimensions: BTreeMap::new(),
            values: BTreeMap::new(),
        }
    }

    /// A further dimension (`Provider`, `Kind`): the record's metrics are published once
    /// under `Function` alone and once under `Function` with each further dimension.
    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.insert(name, value.into());
        self
    }

    pub fn set(&mut self, metric: Metric, value: f64) {
        self.values.insert(metric, value);
    }

    pub fn add(&mut self, metric: Metric, value: f64) {
        *self.values.entry(metric).or_insert(0.0) += value;
    }

    pub fn value(&self, metric: Metric) -> Option<f64> {
        self.values.get(&metric).copied()
    }

    /// The EMF document of this record in `namespace`, at `timestamp_ms` (milliseconds since
    /// the epoch): the `_aws` metadata, then each dimension and metric as a root member.
    pub fn to_emf(&self, namespace: &str, timestamp_ms: i64) -> Value {
        let mut dimension_sets = vec![vec![DIMENSION_FUNCTION]];
        dimension_sets.extend(
            self.dimensions
                .keys()
                .map(|name| vec![DIMENSION_FUNCTION, *name]),
        );
        let metrics: Vec<MetricDefinition> = self
            .values
            .keys()
            .map(|metric| MetricDefinition {
                name: metric.name(),
                unit: metric.unit(),
            })
            .collect();
        let metadata = Metadata {
            timestamp: timestamp_ms,
            cloud_watch_metrics: vec![MetricDirective {
                namespace,
                dimensions: dimension_sets,
                metrics,
            }],
        };
        let mut root = serde_json::Map::new();
        root.insert(
            "_aws".into(),
            serde_json::to_value(metadata).expect("plain data serializes"),
        );
        root.insert(DIMENSION_FUNCTION.into(), Value::from(self.function));
        for (name, value) in &self.dimensions {
            root.insert((*name).into(), Value::from(value.as_str()));
        }
        for (metric, value) in &self.values {
            root.insert(metric.name().into(), Value::from(*value));
        }
        Value::Object(root)
    }
}

/// The specification's metadata object (`_aws`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata<'a> {
    timestamp: i64,
    #[serde(rename = "CloudWatchMetrics")]
    cloud_watch_metrics: Vec<MetricDirective<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDirective<'a> {
    namespace: &'a str,
    dimensions: Vec<Vec<&'static str>>,
    metrics: Vec<MetricDefinition>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDefinition {
    name: &'static str,
    unit: &'static str,
}

/// Writes `record` as one line on stdout when `namespace` is set (`HUB_METRICS_NAMESPACE`).
/// The line is written whole under stdout's lock, so that it never interleaves with a log
/// line of another task. A failed write is dropped: metrics never fail a sync.
pub fn emit(namespace: Option<&str>, record: &Record) {
    let Some(namespace) = namespace else {
        return;
    };
    if record.values.is_empty() {
        return;
    }
    let mut line = record
        .to_emf(namespace, chrono::Utc::now().timestamp_millis())
        .to_string();
    line.push('\n');
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape the specification asks: `_aws` with an integer `Timestamp` and one
    /// directive naming the namespace, the dimension sets (each key a root member, at most
    /// 30 per set) and the metrics (each a root member, a number, with a standard unit).
    #[test]
    fn a_record_is_an_emf_document() {
        let mut record = Record::new("sync-worker")
            .dimension(DIMENSION_PROVIDER, "google")
            .dimension(DIMENSION_KIND, "client_rejected");
        record.set(Metric::SyncFailures, 1.0);
        record.set(Metric::SyncDuration, 1234.0);
        record.add(Metric::TokenRefreshes, 1.0);
        record.add(Metric::TokenRefreshes, 1.0);
        let document = record.to_emf("hub-stack/hub", 1_700_000_000_123);
        assert_eq!(
            document,
            serde_json::json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_123i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "hub-stack/hub",
                        "Dimensions": [["Function"], ["Function", "Kind"], ["Function", "Provider"]],
                        "Metrics": [
                            {"Name": "SyncDuration", "Unit": "Milliseconds"},
                            {"Name": "TokenRefreshes", "Unit": "Count"},
                            {"Name": "SyncFailures", "Unit": "Count"}
                        ]
                    }]
                },
                "Function": "sync-worker",
                "Provider": "google",
                "Kind": "client_rejected",
                "SyncDuration": 1234.0,
                "TokenRefreshes": 2.0,
                "SyncFailures": 1.0
            })
        );
        // Every key a directive names is a member of the root (the specification's "target
        // members"), with a string value for dimensions and a number for metrics.
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        for set in directive["Dimensions"].as_array().unwrap() {
            let set = set.as_array().unwrap();
            assert!(!set.is_empty() && set.len() <= 30);
            for key in set {
                assert!(document[key.as_str().unwrap()].is_string(), "{key}");
            }
        }
        for definition in directive["Metrics"].as_array().unwrap() {
            assert!(document[definition["Name"].as_str().unwrap()].is_number());
        }
    }

    #[test]
    fn names_are_unique_and_units_standard() {
        let names: std::collections::BTreeSet<_> = ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), ALL.len());
        for metric in ALL {
            assert!(["Count", "Milliseconds"].contains(&metric.unit()));
            // Names CloudWatch accepts: 1 to 255 characters, no reserved dimension name.
            assert!(!metric.name().is_empty() && metric.name().len() <= 255);
            assert!(
                ![DIMENSION_FUNCTION, DIMENSION_PROVIDER, DIMENSION_KIND].contains(&metric.name())
            );
        }
    }
}
