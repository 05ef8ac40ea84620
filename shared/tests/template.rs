//! The template is the deployment: what the code assumes of it is checked here, against the
//! template itself (`hub::deployment` is the code's one copy of those assumptions).
//!
//! - every route can invoke its function (API Gateway needs a resource-based permission for
//!   it, or it answers its own empty 500 without calling the function);
//! - every function gets the variables its cold start requires;
//! - every SQS event source reports partial batch failures (the functions answer
//!   `batchItemFailures`, which Lambda ignores without `ReportBatchItemFailures`: a failed
//!   job would be deleted with the batch);
//! - every timeout, visibility timeout and receive count the code assumes is the template's.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use common::template::{
    load_template, logical_names, resources_of_type, strings, wildcard, Resolver,
};
use hub::deployment::{self, Function, DEPLOYMENT_ENV, EVENTS_ENV, FUNCTIONS, QUEUES};
use hub::error::ProviderError;
use serde_norway::Value as Yaml;

const REGION: &str = "eu-west-1";
const ACCOUNT_ID: &str = "123456789012";
const API_ID: &str = "a1b2c3d4e5";

/// Every resource and parameter resolves to its own logical id (`!GetAtt X.Arn` too), so a
/// reference reads as the name of what it refers to; the API's id is a sample id.
fn resolver(template: &Yaml) -> Resolver {
    let mut resolver = logical_names(template, REGION, ACCOUNT_ID, "hub");
    resolver.names.insert("HubHttpApi".into(), API_ID.into());
    resolver
}

/// The ARN API Gateway invokes a function with for a request on `route` (`GET /a/{b}`):
/// `arn:aws:execute-api:<region>:<account>:<api>/<stage>/<METHOD>/<path>`, each path
/// parameter given a sample value.
fn invoking_arn(stage: &str, route: &str) -> String {
    let (method, path) = route.split_once(' ').unwrap();
    let path: Vec<String> = path
        .split('/')
        .map(|part| match part.strip_prefix('{') {
            Some(parameter) => format!("sample-{}", parameter.trim_end_matches('}')),
            None => part.to_string(),
        })
        .collect();
    format!(
        "arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/{stage}/{method}{}",
        path.join("/")
    )
}

/// The stage the API serves (`$default`).
fn stage(template: &Yaml, resolver: &Resolver) -> String {
    let stages = resources_of_type(template, "AWS::ApiGatewayV2::Stage");
    assert_eq!(stages.len(), 1, "one stage");
    let properties = &stages[0].1["Properties"];
    assert_eq!(resolver.resolve(&properties["ApiId"]), API_ID);
    properties["StageName"].as_str().unwrap().to_string()
}

/// Each route's key and the logical id of the function its integration invokes.
fn routes(template: &Yaml, resolver: &Resolver) -> Vec<(String, String)> {
    resources_of_type(template, "AWS::ApiGatewayV2::Route")
        .into_iter()
        .map(|(name, route)| {
            let properties = &route["Properties"];
            let key = properties["RouteKey"].as_str().unwrap().to_string();
            let target = resolver.resolve(&properties["Target"]);
            let integration = target
                .as_str()
                .and_then(|t| t.strip_prefix("integrations/"))
                .unwrap_or_else(|| panic!("{name}: Target {target}"));
            let integration = &template["Resources"][integration];
            assert_eq!(
                integration["Type"].as_str(),
                Some("AWS::ApiGatewayV2::Integration")
            );
            assert_eq!(
                integration["Properties"]["IntegrationType"].as_str(),
                Some("AWS_PROXY")
            );
            let function = resolver.resolve(&integration["Properties"]["IntegrationUri"]);
            (key, function.as_str().unwrap().to_string())
        })
        .collect()
}

/// The API's invoke permissions: `(function, SourceArn pattern)`.
fn invoke_permissions(template: &Yaml, resolver: &Resolver) -> Vec<(String, String)> {
    resources_of_type(template, "AWS::Lambda::Permission")
        .into_iter()
        .map(|(name, permission)| {
            let properties = resolver.resolve(&permission["Properties"]);
            assert_eq!(properties["Action"], "lambda:InvokeFunction", "{name}");
            assert_eq!(
                properties["Principal"], "apigateway.amazonaws.com",
                "{name}"
            );
            (
                properties["FunctionName"].as_str().unwrap().to_string(),
                properties["SourceArn"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name} names its SourceArn"))
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn every_route_can_invoke_its_function_and_no_permission_is_spare() {
    let template = load_template();
    let resolver = resolver(&template);
    let stage = stage(&template, &resolver);
    let routes = routes(&template, &resolver);
    let permissions = invoke_permissions(&template, &resolver);
    assert!(!routes.is_empty());

    let cannot: Vec<&str> = routes
        .iter()
        .filter(|(key, function)| {
            let arn = invoking_arn(&stage, key);
            !permissions
                .iter()
                .any(|(allowed, pattern)| allowed == function && wildcard(pattern, &arn))
        })
        .map(|(key, _)| key.as_str())
        .collect();
    assert!(
        cannot.is_empty(),
        "API Gateway cannot invoke the function of {cannot:?}"
    );

    // Least privilege the other way: a permission lets the API invoke a function only for a
    // route of that function.
    let spare: Vec<&(String, String)> = permissions
        .iter()
        .filter(|(function, pattern)| {
            !routes
                .iter()
                .any(|(key, f)| f == function && wildcard(pattern, &invoking_arn(&stage, key)))
        })
        .collect();
    assert!(spare.is_empty(), "permissions for no route: {spare:?}");
}

/// The template's functions by logical id.
fn functions(template: &Yaml) -> BTreeMap<&str, &Yaml> {
    resources_of_type(template, "AWS::Serverless::Function")
        .into_iter()
        .collect()
}

/// A function property, or the `Globals.Function` one it inherits.
fn property<'a>(template: &'a Yaml, function: &'a Yaml, name: &str) -> &'a Yaml {
    match &function["Properties"][name] {
        Yaml::Null => &template["Globals"]["Function"][name],
        own => own,
    }
}

fn seconds(value: &Yaml, what: &str) -> Duration {
    Duration::from_secs(
        value
            .as_u64()
            .unwrap_or_else(|| panic!("{what} is a number of seconds: {value:?}")),
    )
}

#[test]
fn the_template_deploys_the_functions_the_code_knows() {
    let template = load_template();
    let resolver = resolver(&template);
    let deployed: BTreeSet<&str> = functions(&template).keys().copied().collect();
    let known: BTreeSet<&str> = FUNCTIONS.iter().map(|f| f.resource).collect();
    assert_eq!(deployed, known);
    for function in FUNCTIONS {
        let resource = &template["Resources"][function.resource];
        assert_eq!(
            resolver.resolve(&resource["Properties"]["FunctionName"]),
            format!("hub-{}", function.name)
        );
        assert_eq!(
            resource["Metadata"]["BuildProperties"]["Binary"].as_str(),
            Some(function.name)
        );
    }
}

/// The variables of a function's environment (its own over the globals), unresolved.
fn environment<'a>(template: &'a Yaml, function: &'a Yaml) -> BTreeMap<&'a str, &'a Yaml> {
    let mut vars = BTreeMap::new();
    for variables in [
        &template["Globals"]["Function"]["Environment"]["Variables"],
        &function["Properties"]["Environment"]["Variables"],
    ] {
        if let Some(map) = variables.as_mapping() {
            for (name, value) in map {
                vars.insert(name.as_str().unwrap(), value);
            }
        }
    }
    vars
}

#[test]
fn every_function_gets_the_variables_its_cold_start_requires() {
    let template = load_template();
    let functions = functions(&template);
    let mut missing = Vec::new();
    for function in FUNCTIONS {
        let env = environment(&template, functions[function.resource]);
        let mut required = function.required_env();
        // Events are optional, but all or nothing (see `EVENTS_ENV`).
        if env.contains_key("HUB_WEBHOOK_URL") {
            required.extend(EVENTS_ENV);
        }
        // Every provider's client: the deployer configures one through the template only.
        for provider in hub::providers::PROVIDERS {
            required.extend([provider.client_id_var, provider.client_secret_var]);
        }
        for var in required {
            if !env.contains_key(var) {
                missing.push(format!("{}: {var}", function.name));
            }
        }
        // The management key goes only where it is checked: a function serving public
        // routes only has no use for it.
        assert_eq!(
            env.contains_key("HUB_API_KEY"),
            function.needs.contains(&hub::deployment::Need::ApiKey),
            "{}: HUB_API_KEY",
            function.name
        );
        for (var, value) in DEPLOYMENT_ENV {
            if let Some(value) = value {
                assert_eq!(
                    env[var].as_str(),
                    Some(value),
                    "{}: {var} must be {value}",
                    function.name
                );
            }
        }
    }
    assert!(missing.is_empty(), "not in the environment: {missing:?}");
}

/// `(function logical id, event source properties)` of every SQS event source.
fn sqs_event_sources(template: &Yaml) -> Vec<(&str, &Yaml)> {
    let mut sources = Vec::new();
    for (name, function) in functions(template) {
        if let Some(events) = function["Properties"]["Events"].as_mapping() {
            for event in events.values() {
                if event["Type"].as_str() == Some("SQS") {
                    sources.push((name, &event["Properties"]));
                }
            }
        }
    }
    sources
}

#[test]
fn every_sqs_event_source_reports_batch_item_failures() {
    let template = load_template();
    let resolver = resolver(&template);
    let sources = sqs_event_sources(&template);
    assert_eq!(sources.len(), QUEUES.len(), "one consumer per queue");
    for (function, source) in sources {
        let source = resolver.resolve(source);
        assert!(
            strings(&source["FunctionResponseTypes"]).contains(&"ReportBatchItemFailures".into()),
            "{function}: without ReportBatchItemFailures Lambda ignores batchItemFailures"
        );
    }
}

#[test]
fn every_timeout_and_receive_count_the_code_assumes_is_the_templates() {
    let template = load_template();
    let resolver = resolver(&template);
    let functions = functions(&template);
    for function in FUNCTIONS {
        let timeout = seconds(
            property(&template, functions[function.resource], "Timeout"),
            &format!("{} Timeout", function.resource),
        );
        assert_eq!(timeout, function.timeout, "{} Timeout", function.resource);
    }

    // Behind a route, a function answers before the HTTP API gives up.
    let by_resource: HashMap<&str, &Function> =
        FUNCTIONS.iter().map(|f| (f.resource, *f)).collect();
    for (route, function) in routes(&template, &resolver) {
        let function = by_resource[function.as_str()];
        assert!(
            function.timeout < deployment::API_TIMEOUT,
            "{route}: {} runs up to {:?}",
            function.name,
            function.timeout
        );
    }

    let sources = sqs_event_sources(&template);
    for queue in QUEUES {
        let properties = &template["Resources"][queue.resource]["Properties"];
        assert_eq!(
            seconds(&properties["VisibilityTimeout"], "VisibilityTimeout"),
            queue.visibility_timeout,
            "{} VisibilityTimeout",
            queue.resource
        );
        assert_eq!(
            seconds(
                &properties["MessageRetentionPeriod"],
                "MessageRetentionPeriod"
            ),
            queue.message_retention,
            "{} MessageRetentionPeriod",
            queue.resource
        );
        let redrive = resolver.resolve(&properties["RedrivePolicy"]);
        assert_eq!(
            redrive["maxReceiveCount"].as_f64(),
            Some(f64::from(queue.max_receive_count)),
            "{} maxReceiveCount",
            queue.resource
        );
        let (_, source) = sources
            .iter()
            .find(|(function, source)| {
                *function == queue.consumer.resource
                    && resolver.resolve(&source["Queue"]) == queue.resource
            })
            .unwrap_or_else(|| {
                panic!(
                    "{} consumes {} as the code assumes",
                    queue.consumer.resource, queue.resource
                )
            });
        assert_eq!(
            seconds(
                &source["MaximumBatchingWindowInSeconds"],
                "MaximumBatchingWindowInSeconds"
            ),
            queue.batching_window,
            "{} batching window",
            queue.resource
        );
    }
}

/// `(METHOD /path)` of every operation docs/openapi.yaml documents as public (`security: []`).
fn public_operations() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml");
    let document: Yaml = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut public = BTreeSet::new();
    for (path, item) in document["paths"].as_mapping().unwrap() {
        for (method, operation) in item.as_mapping().unwrap() {
            if operation["security"]
                .as_sequence()
                .is_some_and(|security| security.is_empty())
            {
                public.insert(format!(
                    "{} {}",
                    method.as_str().unwrap().to_uppercase(),
                    path.as_str().unwrap()
                ));
            }
        }
    }
    public
}

/// A flood of the public routes cannot take the account's whole Lambda pool: each function
/// behind one has reserved concurrency, from `PublicFunctionsReservedConcurrency` (0 leaves
/// it out, for accounts whose quota allows no reservation), on by default.
#[test]
fn the_public_routes_functions_have_reserved_concurrency() {
    let template = load_template();
    let resolver = resolver(&template);
    let public = public_operations();
    assert!(public.contains("GET /connect") && public.contains("POST /webhooks/{provider}"));
    let parameter = "PublicFunctionsReservedConcurrency";
    assert!(template["Parameters"][parameter]["Default"].as_u64() > Some(0));
    let functions: BTreeSet<String> = routes(&template, &resolver)
        .into_iter()
        .filter(|(key, _)| public.contains(key))
        .map(|(_, function)| function)
        .collect();
    assert_eq!(
        functions,
        ["AuthFunction", "ProviderWebhooksFunction", "UsersFunction"]
            .map(String::from)
            .into()
    );
    for function in &functions {
        let reserved =
            &template["Resources"][function.as_str()]["Properties"]["ReservedConcurrentExecutions"];
        let Yaml::Tagged(reserved) = reserved else {
            panic!("{function}: no ReservedConcurrentExecutions");
        };
        assert_eq!(reserved.tag.to_string(), "!If", "{function}");
        let branches = reserved.value.as_sequence().unwrap();
        let condition = &template["Conditions"][branches[0].as_str().unwrap()];
        assert!(
            format!("{condition:?}").contains(parameter),
            "{function}: the condition tests {parameter}"
        );
        assert_eq!(resolver.resolve(&branches[1]), parameter, "{function}");
        assert_eq!(resolver.resolve(&branches[2]), "AWS::NoValue", "{function}");
    }
}

/// The alarm on a provider refusing the hub's OAuth client counts the log lines the worker
/// writes for it: the metric filter reads the worker's own log group, matches the `error`
/// code the worker logs ([`ProviderError::CLIENT_REJECTED`]), and the alarm watches the
/// metric the filter writes.
#[test]
fn the_client_rejected_alarm_counts_the_workers_log_lines() {
    let template = load_template();
    let resolver = resolver(&template);
    let filter = &template["Resources"]["ClientRejectedMetricFilter"]["Properties"];
    let Yaml::Tagged(reference) = &filter["LogGroupName"] else {
        panic!("LogGroupName is a !Ref: {:?}", filter["LogGroupName"])
    };
    assert_eq!(reference.tag.to_string(), "!Ref");
    let log_group = &template["Resources"][reference.value.as_str().unwrap()];
    assert_eq!(
        resolver.resolve(&log_group["Properties"]["LogGroupName"]),
        format!("/aws/lambda/hub-{}", deployment::SYNC_WORKER.name)
    );
    assert_eq!(
        filter["FilterPattern"].as_str(),
        Some(format!(r#"{{ $.error = "{}" }}"#, ProviderError::CLIENT_REJECTED).as_str())
    );
    let metric = &filter["MetricTransformations"][0];
    let alarm = &template["Resources"]["ClientRejectedAlarm"]["Properties"];
    assert_eq!(
        resolver.resolve(&alarm["Namespace"]),
        resolver.resolve(&metric["MetricNamespace"])
    );
    assert_eq!(alarm["MetricName"], metric["MetricName"]);
    assert_eq!(alarm["Statistic"].as_str(), Some("Sum"));
}
