//! Least privilege, proven rather than read: each function's role policy is rendered from
//! `template.yaml` (plus the `HubKey` key-policy statements naming that role), given to an IAM
//! user of a moto server that enforces IAM, and the function's real work runs through the hub
//! with that user's credentials. Every call must be allowed; calls outside the role must not.
//!
//! What moto 5 checks, and what this test checks itself:
//! - SQS: actions and queue ARNs (moto resolves the queue of each request).
//! - KMS: actions. The key policy's token statements are given without their
//!   `kms:EncryptionContextKeys` conditions (moto refuses every request under a condition it
//!   does not know); the test's `Authorizer` checks the encryption context of every KMS
//!   request against those conditions before it is sent, and refuses it as AWS would.
//! - DynamoDB: moto authorizes every DynamoDB request against resource `*` and by API name,
//!   whereas AWS authorizes a `TransactWriteItems` by the action of each item and every action
//!   on the table or index it names. So moto gets the DynamoDB actions on `*`, and the
//!   `Authorizer` checks every DynamoDB request, item by item, against the rendered
//!   statements with their real resources, and refuses what they do not allow.
//!
//! Statements that only an AWS service can use on the role's behalf (`kms:ViaService`, the
//! Lambda environment's `aws:lambda:FunctionArn` context) are left out: the hub never makes
//! those calls itself.

mod common;

use common::template::{load_template, strings, wildcard, Resolver};

use std::collections::{BTreeSet, HashMap};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Credentials, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use hub::config::Env;
use hub::crypto::kms::KmsCipher;
use hub::fanout::{self, SyncRequest};
use hub::login;
use hub::model::{FanOutPosition, SyncReason};
use hub::providers::http::RetryPolicy;
use hub::queue::sqs::SqsQueue;
use hub::store::dynamo::DynamoStore;
use hub::store::FileStore;
use hub::{accounts, sync, tokens, Hub};
use hub_testkit::webhook_receiver::{Answer, WebhookReceiver};
use hub_testkit::FakeProviders;
use serde_json::{json, Value as Json};
use serde_norway::Value as Yaml;

const ACCOUNT_ID: &str = "123456789012"; // moto's default account
const REGION: &str = "us-east-1";

// ------------------------------------------------------------------------------ moto

/// A moto server of this test alone: its IAM enforcement is global to the server.
async fn start_moto() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Detached on purpose: the watchdog loop ends moto when this test process exits.
    // INITIAL_NO_AUTH_ACTION_COUNT is set by `enforce_iam` once the resources exist.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .arg("-c")
        .arg(r#"moto_server -H 127.0.0.1 -p "$1" >/dev/null 2>&1 & m=$!; while kill -0 "$2" 2>/dev/null; do sleep 1; done; kill $m"#)
        .arg("sh")
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .spawn()
        .expect("moto_server must be installed: pip install 'moto[server]'");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return format!("http://127.0.0.1:{port}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto_server did not start on port {port}");
}

/// From now on every request is authenticated and checked against its caller's IAM policies:
/// moto's `/moto-api/reset-auth` sets INITIAL_NO_AUTH_ACTION_COUNT (0: no more free calls).
async fn enforce_iam(endpoint: &str) {
    let answer = reqwest::Client::new()
        .post(format!("{endpoint}/moto-api/reset-auth"))
        .body("0")
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
}

async fn sdk_config(endpoint: &str, key: &AccessKey) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(Credentials::new(
            &key.id,
            &key.secret,
            None,
            None,
            "least-privilege",
        ))
        .load()
        .await
}

#[derive(Clone)]
struct AccessKey {
    id: String,
    secret: String,
}

/// One IAM query-protocol call, made while moto does not check signatures yet (setup only).
async fn iam(endpoint: &str, params: &[(&str, &str)]) -> String {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .append_pair("Version", "2010-05-08")
        .finish();
    let answer = reqwest::Client::new()
        .post(endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        // moto routes a request by the service of its credential scope.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    assert!(status.is_success(), "IAM {params:?}: {text}");
    text
}

fn xml_element<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("{name} in {xml}")) + open.len();
    let end = start + xml[start..].find(&format!("</{name}>")).unwrap();
    &xml[start..end]
}

/// An IAM user whose only policy is `policy`, and its access key.
async fn iam_user(endpoint: &str, name: &str, policy: &Json) -> AccessKey {
    iam(endpoint, &[("Action", "CreateUser"), ("UserName", name)]).await;
    iam(
        endpoint,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", name),
            ("PolicyDocument", &policy.to_string()),
        ],
    )
    .await;
    let created = iam(
        endpoint,
        &[("Action", "CreateAccessKey"), ("UserName", name)],
    )
    .await;
    AccessKey {
        id: xml_element(&created, "AccessKeyId").to_string(),
        secret: xml_element(&created, "SecretAccessKey").to_string(),
    }
}

// ------------------------------------------------------------------------------ template

/// What the template's `!Sub`, `!Ref` and `!GetAtt` resolve to on this moto.
struct Deployment {
    stack: String,
    resolver: Resolver,
}

impl Deployment {
    fn new(stack: &str, queue_arns: &[(&str, String)]) -> Deployment {
        let mut names: HashMap<String, String> = [
            ("AWS::Partition", "aws".to_string()),
            ("AWS::Region", REGION.to_string()),
            ("AWS::AccountId", ACCOUNT_ID.to_string()),
            ("AWS::StackName", stack.to_string()),
            ("AWS::URLSuffix", "amazonaws.com".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (queue, arn) in queue_arns {
            names.insert(format!("{queue}.Arn"), arn.clone());
        }
        for role in ROLES.iter().map(|f| f.role) {
            names.insert(
                format!("{role}.Arn"),
                format!("arn:aws:iam::{ACCOUNT_ID}:role/{stack}-{role}"),
            );
        }
        Deployment {
            stack: stack.to_string(),
            resolver: Resolver { names },
        }
    }

    fn name(&self, name: &str) -> String {
        self.resolver.name(name)
    }

    fn table(&self) -> String {
        format!("{}-hub", self.stack)
    }

    fn table_arn(&self) -> String {
        format!(
            "arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{}",
            self.table()
        )
    }

    /// A template value with its intrinsic functions resolved, as JSON.
    fn resolve(&self, value: &Yaml) -> Json {
        self.resolver.resolve(value)
    }
}

struct Function {
    name: &'static str,
    role: &'static str,
}

const ROLES: [Function; 7] = [
    Function {
        name: "auth",
        role: "AuthRole",
    },
    Function {
        name: "users",
        role: "UsersRole",
    },
    Function {
        name: "sync-fanout",
        role: "SyncFanoutRole",
    },
    Function {
        name: "sync-worker",
        role: "SyncWorkerRole",
    },
    Function {
        name: "app-webhooks",
        role: "AppWebhooksRole",
    },
    Function {
        name: "provider-webhooks",
        role: "ProviderWebhooksRole",
    },
    Function {
        name: "content",
        role: "ContentRole",
    },
];

/// A function's permissions as the template gives them, rendered for this deployment.
#[derive(Debug)]
struct Permissions {
    /// Role policy statements and the key-policy statements naming the role, conditions of
    /// the latter removed (see `encryption_context_keys`), resources as in the template.
    statements: Vec<Json>,
    /// Encryption context keys the key policy allows each KMS action with (its
    /// `ForAllValues:StringEquals` on `kms:EncryptionContextKeys`, with `Null` false).
    encryption_context_keys: HashMap<String, BTreeSet<String>>,
}

fn permissions(template: &Yaml, deployment: &Deployment, role: &str) -> Permissions {
    let resources = &template["Resources"];
    let mut statements = Vec::new();
    for policy in resources[role]["Properties"]["Policies"]
        .as_sequence()
        .unwrap()
    {
        let document = deployment.resolve(&policy["PolicyDocument"]);
        statements.extend(document["Statement"].as_array().unwrap().iter().cloned());
    }
    let role_arn = deployment.name(&format!("{role}.Arn"));
    let key_policy = deployment.resolve(&resources["HubKey"]["Properties"]["KeyPolicy"]);
    let mut encryption_context_keys = HashMap::new();
    for statement in key_policy["Statement"].as_array().unwrap() {
        let principals = strings(&statement["Principal"]["AWS"]);
        if !principals.contains(&role_arn) {
            continue;
        }
        let mut statement = statement.as_object().unwrap().clone();
        statement.remove("Principal");
        match statement.remove("Condition") {
            None => {}
            Some(condition) if is_for_aws_services_only(&condition) => continue,
            Some(condition) => {
                let keys = &condition["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"];
                assert_eq!(
                    condition["Null"]["kms:EncryptionContextKeys"], "false",
                    "a token statement requires an encryption context: {condition}"
                );
                assert_eq!(
                    condition.as_object().unwrap().len(),
                    2,
                    "the test knows no other condition: {condition}"
                );
                for action in strings(&statement["Action"]) {
                    encryption_context_keys
                        .insert(action, strings(keys).into_iter().collect::<BTreeSet<_>>());
                }
            }
        }
        statements.push(Json::Object(statement));
    }
    for statement in &statements {
        assert_eq!(statement["Effect"], "Allow", "the test knows no Deny");
    }
    Permissions {
        statements,
        encryption_context_keys,
    }
}

/// Conditions only an AWS service acting for the role meets: DynamoDB or Lambda using the key
/// (`kms:ViaService`), Lambda decrypting a function's environment (its ARN in the context).
fn is_for_aws_services_only(condition: &Json) -> bool {
    let text = condition.to_string();
    text.contains("kms:ViaService") || text.contains("kms:EncryptionContext:aws:lambda")
}

/// A statement's condition on the items' partition keys: none, or `dynamodb:LeadingKeys`
/// patterns the key must match.
fn leading_keys_allowed(condition: &Json, leading_key: Option<&str>) -> bool {
    if condition.is_null() {
        return true;
    }
    let conditions = condition.as_object().unwrap();
    assert_eq!(
        conditions.len(),
        1,
        "the test knows one table condition: {condition}"
    );
    let patterns = strings(&condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]);
    assert!(
        !patterns.is_empty(),
        "the test knows only dynamodb:LeadingKeys: {condition}"
    );
    leading_key.is_some_and(|key| patterns.iter().any(|p| wildcard(p, key)))
}

/// The partition key an item request names (`Key` or `Item`).
fn leading_key(request: &Json) -> Option<String> {
    request["Key"]["pk"]["S"]
        .as_str()
        .or_else(|| request["Item"]["pk"]["S"].as_str())
        .map(str::to_string)
}

impl Permissions {
    /// Whether a statement allows `action` on `resource` for an item whose partition key is
    /// `leading_key`. The one condition the template uses on the table is
    /// `ForAllValues:StringLike` on `dynamodb:LeadingKeys` (a statement for some records only).
    fn allows(&self, action: &str, resource: &str, leading_key: Option<&str>) -> bool {
        self.statements.iter().any(|s| {
            strings(&s["Action"])
                .iter()
                .any(|a| wildcard(&a.to_lowercase(), &action.to_lowercase()))
                && strings(&s["Resource"])
                    .iter()
                    .any(|r| wildcard(r, resource))
                && leading_keys_allowed(&s["Condition"], leading_key)
        })
    }

    /// The policy moto gets. SQS batch calls are authorized by their single action in AWS and
    /// by their own name in moto; DynamoDB requests moto authorizes on `*` and by API name (so
    /// a transaction needs its name there), their resources and items this test checks.
    fn for_moto(&self) -> Json {
        let statements: Vec<Json> = self
            .statements
            .iter()
            .map(|statement| {
                let mut actions = strings(&statement["Action"]);
                let mut resource = statement["Resource"].clone();
                for (single, batch) in [
                    ("sqs:SendMessage", "sqs:SendMessageBatch"),
                    ("sqs:DeleteMessage", "sqs:DeleteMessageBatch"),
                    (
                        "sqs:ChangeMessageVisibility",
                        "sqs:ChangeMessageVisibilityBatch",
                    ),
                    ("dynamodb:PutItem", "dynamodb:TransactWriteItems"),
                    ("dynamodb:DeleteItem", "dynamodb:TransactWriteItems"),
                    ("dynamodb:GetItem", "dynamodb:TransactGetItems"),
                ] {
                    if actions.iter().any(|a| a == single) && !actions.iter().any(|a| a == batch) {
                        actions.push(batch.to_string());
                    }
                }
                if actions.iter().any(|a| a.starts_with("dynamodb:")) {
                    resource = json!("*");
                }
                json!({"Effect": "Allow", "Action": actions, "Resource": resource})
            })
            .collect();
        json!({"Version": "2012-10-17", "Statement": statements})
    }
}

// ------------------------------------------------------------------------------ checking

/// One AWS request as sent: the operation of its `X-Amz-Target` and its JSON body.
#[derive(Clone, Debug)]
struct Call {
    operation: String,
    body: Json,
}

/// What moto cannot check, checked on each DynamoDB and KMS request before it is sent: a
/// request the template does not allow fails as AWS would fail it (`AccessDenied...`), so the
/// hub sees the refusal and the work that needed it fails.
#[derive(Clone, Debug)]
struct Authorizer {
    function: &'static str,
    permissions: Arc<Permissions>,
    table: String,
    table_arn: String,
    refusals: Arc<Mutex<Vec<String>>>,
}

impl Intercept for Authorizer {
    fn name(&self) -> &'static str {
        "Authorizer"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let (service, operation) = target.split_once('.').unwrap_or_default();
        let call = Call {
            operation: operation.to_string(),
            body: request
                .body()
                .bytes()
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or(Json::Null),
        };
        let refusal = if service.starts_with("DynamoDB") {
            self.dynamodb_refusal(&call)
        } else if service == "TrentService" {
            self.kms_refusal(&call)
        } else {
            Some(format!("{target}: not a DynamoDB or KMS request"))
        };
        match refusal {
            None => Ok(()),
            Some(refusal) => {
                let refusal = format!("AccessDenied ({}): {refusal}", self.function);
                self.refusals.lock().unwrap().push(refusal.clone());
                Err(refusal.into())
            }
        }
    }
}

impl Authorizer {
    /// AWS authorizes a DynamoDB request by its action on the table or index it names; a batch
    /// on every table; a transaction by each item's own action
    /// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html).
    fn dynamodb_refusal(&self, call: &Call) -> Option<String> {
        let operation = call.operation.as_str();
        let body = &call.body;
        let table_arn = |table: &Json| {
            assert_eq!(
                table.as_str(),
                Some(self.table.as_str()),
                "the hub's own table"
            );
            self.table_arn.clone()
        };
        let authorizations: Vec<(String, String, Option<String>)> = match operation {
            "BatchGetItem" | "BatchWriteItem" => body["RequestItems"]
                .as_object()
                .unwrap()
                .keys()
                .map(|table| {
                    (
                        format!("dynamodb:{operation}"),
                        table_arn(&json!(table)),
                        None,
                    )
                })
                .collect(),
            "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|item| item.as_object().unwrap().iter())
                .map(|(kind, item)| {
                    let action = match kind.as_str() {
                        "ConditionCheck" => "ConditionCheckItem".to_string(),
                        other => format!("{other}Item"),
                    };
                    (
                        format!("dynamodb:{action}"),
                        table_arn(&item["TableName"]),
                        leading_key(item),
                    )
                })
                .collect(),
            _ => {
                let mut resource = table_arn(&body["TableName"]);
                if let Some(index) = body["IndexName"].as_str() {
                    resource = format!("{resource}/index/{index}");
                }
                vec![(format!("dynamodb:{operation}"), resource, leading_key(body))]
            }
        };
        authorizations
            .into_iter()
            .find(|(action, resource, key)| {
                !self.permissions.allows(action, resource, key.as_deref())
            })
            .map(|(action, resource, key)| {
                format!("{action} on {resource} (item {key:?}) is not in template.yaml")
            })
    }

    /// The key policy's conditions on the token statements: an encryption context, its keys
    /// among those listed.
    fn kms_refusal(&self, call: &Call) -> Option<String> {
        let action = format!("kms:{}", call.operation);
        let Some(allowed) = self.permissions.encryption_context_keys.get(&action) else {
            return Some(format!("{action}: no key-policy statement for it"));
        };
        let keys: BTreeSet<String> = call.body["EncryptionContext"]
            .as_object()
            .map(|context| context.keys().cloned().collect())
            .unwrap_or_default();
        (keys.is_empty() || !keys.is_subset(allowed)).then(|| {
            format!(
                "{action} with encryption context keys {keys:?}, the key policy allows {allowed:?}"
            )
        })
    }
}

// ------------------------------------------------------------------------------ hubs

/// One function's hub, with its IAM user's credentials.
struct FunctionHub {
    hub: Hub,
    sqs: aws_sdk_sqs::Client,
    refusals: Arc<Mutex<Vec<String>>>,
}

impl FunctionHub {
    /// No DynamoDB or KMS request of the work so far was refused (moto refuses SQS and KMS
    /// actions itself, and the work fails with them).
    fn assert_nothing_refused(&self) {
        let refusals = std::mem::take(&mut *self.refusals.lock().unwrap());
        assert!(refusals.is_empty(), "refused: {refusals:?}");
    }
}

#[allow(clippy::too_many_arguments)]
async fn function_hub(
    function: &Function,
    env: &Env,
    endpoint: &str,
    key: &AccessKey,
    deployment: &Deployment,
    key_arn: &str,
    queue_url: &str,
    permissions: Permissions,
) -> FunctionHub {
    let sdk = sdk_config(endpoint, key).await;
    let authorizer = Authorizer {
        function: function.name,
        permissions: Arc::new(permissions),
        table: deployment.table(),
        table_arn: deployment.table_arn(),
        refusals: Arc::default(),
    };
    let mut hub = Hub::build(env, RetryPolicy::default()).await.unwrap();
    // Hub::build takes credentials from the SDK's default chain (the process environment),
    // one set per process; each hub here needs its own, so its clients are made here.
    hub.store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .interceptor(authorizer.clone())
                .build(),
        ),
        deployment.table(),
    ));
    hub.cipher = Arc::new(KmsCipher::new(
        aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::config::Builder::from(&sdk)
                .interceptor(authorizer.clone())
                .build(),
        ),
        key_arn,
    ));
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    hub.queue = Arc::new(SqsQueue::new(sqs.clone(), queue_url));
    FunctionHub {
        hub,
        sqs,
        refusals: authorizer.refusals,
    }
}

fn refused<T: std::fmt::Debug>(outcome: Result<T, impl std::fmt::Debug>, what: &str) {
    let error = format!("{:?}", outcome.expect_err(what));
    assert!(
        error.contains("AccessDenied") || error.contains("not authorized"),
        "{what}: refused for another reason: {error}"
    );
}

/// Consents at the stand-in as a browser would, and completes the callback.
async fn log_in(hub: &Hub, provider: &str) -> hub::model::AccountView {
    let url = login::begin(hub, provider).await.unwrap();
    let callback = common::consent(&url).await;
    login::complete(hub, provider, callback).await.unwrap()
}

/// Follows a consent URL to the stand-in and hands its redirect to the callback.
async fn consent_and_finish(
    hub: &Hub,
    provider: &str,
    started: &login::Started,
) -> login::Finished {
    let callback = common::consent(started).await;
    login::finish_by(
        hub,
        provider,
        callback,
        hub::deadline::Deadline::of_invocation(None),
    )
    .await
}

// ------------------------------------------------------------------------------ the test

const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwJf6zXZsZqeY=";

#[tokio::test]
async fn each_function_works_with_its_role_and_nothing_more() {
    let endpoint = start_moto().await;
    let providers = FakeProviders::start().await;
    let receiver = WebhookReceiver::start(WEBHOOK_SECRET).await;
    let stack = format!("lp{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);

    // Resources, as the template names them, created before IAM is enforced.
    let admin = sdk_config(
        &endpoint,
        &AccessKey {
            id: "testing".into(),
            secret: "testing".into(),
        },
    )
    .await;
    let sqs_admin = aws_sdk_sqs::Client::new(&admin);
    let mut queues = Vec::new();
    for name in [
        "SyncQueue",
        "ScheduleDeadLetterQueue",
        "EventsQueue",
        "PushQueue",
    ] {
        let url = sqs_admin
            .create_queue()
            .queue_name(format!("{stack}-{name}"))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let arn = sqs_admin
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        queues.push((name, url, arn));
    }
    let (sync_queue_url, schedule_dlq_url, events_queue_url, push_queue_url) = (
        queues[0].1.clone(),
        queues[1].1.clone(),
        queues[2].1.clone(),
        queues[3].1.clone(),
    );
    let deployment = Deployment::new(
        &stack,
        &queues
            .iter()
            .map(|(name, _, arn)| (*name, arn.clone()))
            .collect::<Vec<_>>(),
    );
    hub::store::dynamo::create_table(&aws_sdk_dynamodb::Client::new(&admin), &deployment.table())
        .await
        .unwrap();
    let key_arn = aws_sdk_kms::Client::new(&admin)
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();

    let mut vars = vec![
        ("HUB_BACKEND".to_string(), "aws".to_string()),
        ("TABLE_NAME".into(), deployment.table()),
        ("KMS_KEY_ID".into(), key_arn.clone()),
        ("SYNC_QUEUE_URL".into(), sync_queue_url.clone()),
        ("PUSH_QUEUE_URL".into(), push_queue_url.clone()),
        ("AWS_ENDPOINT_URL".into(), endpoint.clone()),
        ("HUB_PUBLIC_URL".into(), "https://hub.example".into()),
        ("HUB_API_KEY".into(), "k".repeat(32)),
        ("EVENTS_QUEUE_URL".into(), events_queue_url.clone()),
        ("HUB_WEBHOOK_URL".into(), receiver.url()),
        ("HUB_WEBHOOK_ALLOW_HTTP".into(), "true".into()),
        ("HUB_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
    ];
    vars.extend(providers.handle().env_vars());
    vars.extend(providers.handle().dropbox_env_vars());
    let env = Env::from_map(vars);

    let template = load_template();
    let mut hubs = Vec::new();
    for function in &ROLES {
        let permissions = permissions(&template, &deployment, function.role);
        let key = iam_user(&endpoint, function.name, &permissions.for_moto()).await;
        let mut function_hub = function_hub(
            function,
            &env,
            &endpoint,
            &key,
            &deployment,
            &key_arn,
            &sync_queue_url,
            permissions,
        )
        .await;
        function_hub.hub.events = Some(Arc::new(SqsQueue::new(
            function_hub.sqs.clone(),
            &events_queue_url,
        )));
        function_hub.hub.queue = Arc::new(
            SqsQueue::new(function_hub.sqs.clone(), &sync_queue_url)
                .with_push_queue(Some(push_queue_url.clone())),
        );
        hubs.push(function_hub);
    }
    enforce_iam(&endpoint).await;
    let [auth, users, fanout_fn, sync_worker, app_webhooks, provider_webhooks, content] =
        <[FunctionHub; 7]>::try_from(hubs).ok().unwrap();

    // auth: a login (state put, callback opening the verifier, account and identity created),
    // and a second account for the fan-out and the deletion below.
    providers.handle().add_files("google", 2);
    let every_byte: Vec<u8> = (0..=255).collect();
    providers.handle().add_file(
        "google",
        hub_testkit::DEFAULT_GOOGLE_USER,
        hub_testkit::FileSpec {
            mime_type: "application/octet-stream".into(),
            ..hub_testkit::FileSpec::new("lp-bin", "bytes.bin")
        },
    );
    providers
        .handle()
        .set_google_content(hub_testkit::DEFAULT_GOOGLE_USER, "lp-bin", &every_byte);
    let first = log_in(&auth.hub, "google").await;
    let first_identity = auth
        .hub
        .store
        .get_account(&first.id)
        .await
        .unwrap()
        .unwrap()
        .provider_user_id;
    providers
        .handle()
        .set_next_identity("google", "second-user", "second@example.com");
    let second = log_in(&auth.hub, "google").await;
    auth.assert_nothing_refused();

    // sync-fanout: POST /sync queues one job per active account.
    let started = fanout::start(
        &fanout_fn.hub,
        SyncRequest {
            source_type: Some("both".into()),
            account_id: None,
        },
        fanout::Trigger::new(SyncReason::Manual, sync::fresh_invocation(), None),
    )
    .await
    .unwrap();
    assert_eq!(started.jobs_enqueued, 2);
    fanout_fn.assert_nothing_refused();

    // sync-worker: receives the jobs as the event source mapping does, syncs (tokens opened,
    // files stored, account updated), deletes them.
    let received = sync_worker
        .sqs
        .receive_message()
        .queue_url(&sync_queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let messages: Vec<_> = received
        .messages()
        .iter()
        .map(|m| sync::Message {
            id: m.message_id().unwrap().to_string(),
            body: m.body().unwrap().to_string(),
        })
        .collect();
    assert_eq!(messages.len(), 2);
    let failed = sync::handle_batch(&sync_worker.hub, messages, sync::fresh_invocation()).await;
    assert!(failed.is_empty(), "failed jobs: {failed:?}");
    // With HUB_PUSH on (an https public URL), each sync opened a Drive channel (stored
    // before the watch call, then confirmed).
    let channels = sync_worker
        .hub
        .store
        .account_channels(&first.id)
        .await
        .unwrap();
    assert_eq!(channels.len(), 1);
    assert!(channels[0].resource_id.is_some());
    for message in received.messages() {
        sync_worker
            .sqs
            .delete_message()
            .queue_url(&sync_queue_url)
            .receipt_handle(message.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    // A fan-out continuation, as the worker runs it: the index queried, jobs and the rest of
    // the fan-out queued.
    let queued = fanout::fan_out(
        &sync_worker.hub,
        FanOutPosition {
            providers: vec!["google".into(), "onedrive".into()],
            after: None,
            reason: SyncReason::Schedule,
            chain: "least-privilege".into(),
            step: 1,
        },
        hub::deadline::Deadline::after(Duration::ZERO),
    )
    .await
    .unwrap();
    assert_eq!(queued, 2);
    sync_worker.assert_nothing_refused();

    // users: a content link (the file read from the index, the token opened to ask Drive,
    // the link put); content: the link streamed (link and account read, the expired access
    // token refreshed, sealed and stored as the worker stores it).
    let deadline = hub::deadline::Deadline::of_invocation(None);
    let location = hub::content::locate(&users.hub, &first.id, "lp-bin", None, deadline)
        .await
        .unwrap();
    assert!(location.streamed_by_hub);
    let link_token = location.url.rsplit('/').next().unwrap().to_string();
    providers.handle().expire_access_tokens();
    let served = hub::content::open(
        &content.hub,
        &link_token,
        hub::content::Want::Bytes(None),
        deadline,
    )
    .await
    .unwrap();
    let mut body = served.body.expect("bytes").body;
    let mut streamed = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        streamed.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(streamed, every_byte);
    users.assert_nothing_refused();
    content.assert_nothing_refused();

    // users: list, files, delete (tokens opened to revoke them, the tombstone put with the
    // identity deleted, the purge job queued on the sync queue, index and tombstone deleted).
    let listed = accounts::page(users.hub.store.as_ref(), accounts::MAX_ACCOUNT_PAGE, None)
        .await
        .unwrap();
    assert_eq!(listed.accounts.len(), 2);
    let files = accounts::files(users.hub.store.as_ref(), &first.id, 10, None)
        .await
        .unwrap();
    assert_eq!(files.files.len(), 3);
    // The filters' indexes: a drive's and each drive's top through `by-folder` (and the
    // entries it found, by BatchGetItem).
    for parent in [None, Some(hub::queries::Parent::Root)] {
        let filter = hub::queries::FileFilter {
            parent,
            drive_id: Some("my-drive".into()),
            ..Default::default()
        };
        let files = hub::queries::files(users.hub.store.as_ref(), &first.id, &filter, 10, None)
            .await
            .unwrap();
        assert_eq!(files.files.len(), 3, "{filter:?}");
    }
    accounts::delete(&users.hub, &second.id).await.unwrap();
    assert!(
        providers.handle().revocations() >= 1,
        "the deletion revoked the grant"
    );

    // sync-worker: a purge job finishes a delete its request left (the tombstone put by users;
    // the index, channel and push mark deleted by the worker, and the tombstone last).
    providers
        .handle()
        .set_next_identity("google", "third-user", "third@example.com");
    let third = log_in(&auth.hub, "google").await;
    sync_worker
        .hub
        .store
        .put_files(&third.id, &[hub::model::FileEntry::new("f", "f.txt")], 0, 1)
        .await
        .unwrap();
    let third = users
        .hub
        .store
        .get_account(&third.id)
        .await
        .unwrap()
        .unwrap();
    let event = hub::events::Event::deleted(&third)
        .produce(chrono::Utc::now())
        .unwrap();
    let deletion = hub::model::Deletion {
        announced: true,
        ..hub::model::Deletion::of(&third, event, chrono::Utc::now())
    };
    assert_eq!(
        users
            .hub
            .store
            .begin_deletion(&third, &deletion)
            .await
            .unwrap(),
        hub::store::Write::Done
    );
    let purged = hub::purge::run(
        &sync_worker.hub,
        &hub::model::PurgeJob {
            account_id: third.id.clone(),
            requested_at: chrono::Utc::now(),
        },
        sync::fresh_invocation(),
    )
    .await
    .unwrap();
    assert_eq!(purged, hub::purge::Progress::Gone);
    assert!(sync_worker
        .hub
        .store
        .list_files(&third.id, None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    sync_worker.assert_nothing_refused();
    users.assert_nothing_refused();

    // Connect sessions: users creates one (conditional put), auth checks it at the login and
    // spends it at the callback (get, conditional update), users lists the owner's accounts
    // (owner query) and deletes the owned account, finding that the first account shares
    // its grant (identity query) and deleting the owner's record in the transaction.
    let session = hub::connect::create(
        &users.hub,
        hub::connect::NewSession {
            owner: Some("app-user-1".into()),
            return_to: None,
            providers: Some(vec!["google".into()]),
        },
    )
    .await
    .unwrap();
    providers
        .handle()
        .set_next_identity("google", &first_identity, &first.email);
    let consent_url = login::begin_with(&auth.hub, "google", Some(&session.token))
        .await
        .unwrap();
    let owned = consent_and_finish(&auth.hub, "google", &consent_url)
        .await
        .result
        .unwrap();
    assert_eq!(owned.owner.as_deref(), Some("app-user-1"));
    assert_ne!(owned.id, first.id);
    auth.assert_nothing_refused();
    let listed = accounts::page_of(users.hub.store.as_ref(), Some("app-user-1"), 10, None)
        .await
        .unwrap();
    assert_eq!(listed.accounts.len(), 1);
    let revocations = providers.handle().revocations();
    accounts::delete(&users.hub, &owned.id).await.unwrap();
    assert_eq!(providers.handle().revocations(), revocations);
    users.assert_nothing_refused();

    // sync-worker: a Dropbox folder deleted by path (the by-path index queried, the tree
    // rewritten), after a first sync.
    let dbx = providers.handle();
    let dbx_user = hub_testkit::DEFAULT_DROPBOX_USER;
    dbx.add_file(
        "dropbox",
        dbx_user,
        hub_testkit::FileSpec::folder("id:d", "D"),
    );
    dbx.add_file(
        "dropbox",
        dbx_user,
        hub_testkit::FileSpec::new("id:e", "e.txt").in_folder("id:d"),
    );
    let dropbox = log_in(&auth.hub, "dropbox").await;
    let dropbox_job = hub::model::SyncJob {
        account_id: dropbox.id.clone(),
        provider: "dropbox".into(),
        reason: SyncReason::Manual,
        requested_at: chrono::Utc::now(),
        stalled_requeues: 0,
    };
    sync::run(&sync_worker.hub, &dropbox_job, sync::fresh_invocation())
        .await
        .unwrap();
    dbx.delete_folder_tree("dropbox", dbx_user, "id:d");
    let dropbox_job = hub::model::SyncJob {
        requested_at: chrono::Utc::now(),
        ..dropbox_job
    };
    sync::run(&sync_worker.hub, &dropbox_job, sync::fresh_invocation())
        .await
        .unwrap();
    // The tombstones, under their path (`by-path`).
    let tombstones = hub::queries::FileFilter {
        deleted: hub::queries::Deleted::Only,
        path_prefix: Some("/".into()),
        ..Default::default()
    };
    let files = hub::queries::files(users.hub.store.as_ref(), &dropbox.id, &tombstones, 10, None)
        .await
        .unwrap();
    assert_eq!(files.files.len(), 2);
    assert!(files.files.iter().all(|f| f.deleted), "the tree is deleted");
    let live = accounts::files(users.hub.store.as_ref(), &dropbox.id, 10, None)
        .await
        .unwrap();
    assert!(live.files.is_empty(), "tombstones only on asking");
    sync_worker.assert_nothing_refused();
    auth.assert_nothing_refused();
    users.assert_nothing_refused();

    // provider-webhooks: a Dropbox notification (the identity's records queried, the account
    // read, its push mark put, the job queued), a burst coalesced, a Drive notification with
    // a wrong token (the channel read by its id) refused.
    let body = serde_json::to_vec(&json!({"list_folder": {"accounts": [dbx_user]}})).unwrap();
    let signature = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(
            hub_testkit::DROPBOX_CLIENT_SECRET.as_bytes(),
        )
        .unwrap();
        mac.update(&body);
        hex::encode(mac.finalize().into_bytes())
    };
    for expected_jobs in [1, 0] {
        let queued =
            hub::push::app_notification(&provider_webhooks.hub, "dropbox", Some(&signature), &body)
                .await
                .unwrap();
        assert_eq!(queued.jobs, expected_jobs);
    }
    let forged = hub::push::channel_notification(
        &provider_webhooks.hub,
        "google",
        Some(&channels[0].id),
        Some("not-the-token"),
        false,
    )
    .await;
    assert!(matches!(forged, Err(hub::HubError::ForgedNotification)));
    // A Graph notification's channels are read in one BatchGetItem (an item that does not
    // check out is ignored: 202, nothing queued); a renewal notice marks its channel in a
    // transaction conditional on the account (ConditionCheckItem).
    let graph =
        json!({"value": [{"subscriptionId": "s", "clientState": format!("{}.x", channels[0].id)}]});
    let queued = hub::push::subscription_notification(
        &provider_webhooks.hub,
        "onedrive",
        &serde_json::to_vec(&graph).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(queued.jobs, 0);
    let secret = "graph-channel.secret";
    let graph_channel = hub::model::PushChannel {
        provider: "onedrive".into(),
        id: "graph-channel".into(),
        account_id: dropbox.id.clone(),
        secret_hash: {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(secret.as_bytes()))
        },
        resource_id: Some("subscription-1".into()),
        expires_at: chrono::Utc::now() + chrono::Duration::days(1),
        created_at: chrono::Utc::now(),
        renew: false,
    };
    sync_worker
        .hub
        .store
        .put_channel(&graph_channel)
        .await
        .unwrap();
    let renewal = json!({"value": [{"subscriptionId": "subscription-1", "clientState": secret,
                                    "lifecycleEvent": "reauthorizationRequired"}]});
    hub::push::subscription_notification(
        &provider_webhooks.hub,
        "onedrive",
        &serde_json::to_vec(&renewal).unwrap(),
    )
    .await
    .unwrap();
    let marked = users
        .hub
        .store
        .get_channel("onedrive", "graph-channel")
        .await;
    assert!(marked.unwrap().unwrap().renew);
    provider_webhooks.assert_nothing_refused();
    refused(
        provider_webhooks
            .hub
            .store
            .create_account(&hub::testing::account("google").build())
            .await,
        "provider-webhooks writes an account",
    );

    // app-webhooks: receives the events the others queued (the logins, the syncs that
    // stored changes, the deletions), delivers them, delays the one the app refused
    // (ChangeMessageVisibility) and deletes the others, as the event source mapping does.
    let sender =
        hub::delivery::Sender::new(app_webhooks.hub.config.webhook.clone().unwrap()).unwrap();
    receiver.answer_next(Answer::Status(500), 1);
    let mut records = Vec::new();
    for _ in 0..10 {
        let received = app_webhooks
            .sqs
            .receive_message()
            .queue_url(&events_queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .send()
            .await
            .unwrap();
        records.extend(
            received
                .messages()
                .iter()
                .map(|m| hub::delivery::EventRecord {
                    message_id: m.message_id().unwrap().into(),
                    receipt_handle: m.receipt_handle().unwrap().into(),
                    receive_count: 1,
                    body: m.body().unwrap().into(),
                }),
        );
        if received.messages().is_empty() {
            break;
        }
    }
    let types: std::collections::BTreeSet<String> = records
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            body["type"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["account.connected", "account.deleted", "sync.completed"],
        "{records:?}"
    );
    let failed = hub::delivery::handle_batch(
        &app_webhooks.hub,
        &sender,
        records.clone(),
        sync::fresh_invocation(),
    )
    .await;
    assert_eq!(failed.len(), 1, "the app refused one");
    let refused_record = records.iter().find(|r| r.message_id == failed[0]).unwrap();
    app_webhooks
        .hub
        .events
        .as_ref()
        .unwrap()
        .retry_after(&refused_record.receipt_handle, Duration::from_secs(60))
        .await
        .expect("app-webhooks changes a message's visibility");
    for record in records.iter().filter(|r| !failed.contains(&r.message_id)) {
        app_webhooks
            .sqs
            .delete_message()
            .queue_url(&events_queue_url)
            .receipt_handle(&record.receipt_handle)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(receiver.received().len(), records.len());
    assert!(receiver.received().iter().all(|r| r.verified));
    app_webhooks.assert_nothing_refused();

    // Outside the roles: refused. The two SQS refusals are moto's own (nothing else checks
    // SQS here), so they also prove that moto enforces IAM at all.
    let job = hub::model::QueueMessage::Sync(hub::model::SyncJob {
        account_id: first.id.clone(),
        provider: "google".into(),
        reason: SyncReason::Manual,
        requested_at: chrono::Utc::now(),
        stalled_requeues: 0,
    });
    refused(
        users
            .sqs
            .send_message()
            .queue_url(&schedule_dlq_url)
            .message_body(serde_json::to_string(&job).unwrap())
            .send()
            .await,
        "users sends to the schedule dead-letter queue",
    );
    let event = hub::events::Event::deleted(&hub::testing::account("google").build())
        .produce(chrono::Utc::now())
        .unwrap();
    refused(
        fanout_fn.hub.events.as_ref().unwrap().publish(&event).await,
        "sync-fanout queues an event",
    );
    refused(
        app_webhooks
            .hub
            .events
            .as_ref()
            .unwrap()
            .publish(&event)
            .await,
        "app-webhooks queues an event",
    );
    refused(
        sync_worker
            .sqs
            .send_message()
            .queue_url(&schedule_dlq_url)
            .message_body("{}")
            .send()
            .await,
        "sync-worker sends to the schedule dead-letter queue",
    );
    let account = users
        .hub
        .store
        .get_account(&first.id)
        .await
        .unwrap()
        .unwrap();
    refused(
        tokens::open(fanout_fn.hub.cipher.as_ref(), &account).await,
        "sync-fanout opens a token",
    );
    refused(
        tokens::seal(
            fanout_fn.hub.cipher.as_ref(),
            &account.id,
            "google",
            &tokens::open(users.hub.cipher.as_ref(), &account)
                .await
                .unwrap(),
        )
        .await,
        "sync-fanout seals a token",
    );
    // content, a public function, reads links and accounts and writes tokens, nothing else.
    refused(
        content
            .hub
            .store
            .put_content_link(&hub::model::ContentLink {
                id: "f".repeat(64),
                account_id: account.id.clone(),
                source: hub::model::StreamSource {
                    file_id: "lp-bin".into(),
                    format: None,
                    name: "bytes.bin".into(),
                    media_type: "application/octet-stream".into(),
                    size: Some(256),
                    locator: None,
                },
                expires_at: chrono::Utc::now() + chrono::Duration::minutes(5),
            })
            .await,
        "content writes a link",
    );
    refused(
        content.hub.store.list_files(&account.id, None, 10).await,
        "content lists an index",
    );
    refused(
        content
            .hub
            .queue
            .enqueue(&[hub::model::QueueMessage::Sync(hub::model::SyncJob {
                account_id: account.id.clone(),
                provider: "google".into(),
                reason: SyncReason::Manual,
                requested_at: chrono::Utc::now(),
                stalled_requeues: 0,
            })])
            .await,
        "content queues a sync job",
    );
    refused(
        users.hub.store.create_account(&account).await,
        "users writes an account",
    );
    refused(
        hub::purge::delete_at_once(fanout_fn.hub.store.as_ref(), &account.id).await,
        "sync-fanout deletes an account",
    );

    // auth, a public function, writes its own records only (its statement's
    // dynamodb:LeadingKeys): no fan-out claim, push mark or channel, though its work above
    // wrote login states, accounts, identities, owner records and spent a session.
    refused(
        auth.hub
            .store
            .claim(
                "auth-claim",
                chrono::Utc::now() + chrono::Duration::hours(1),
            )
            .await,
        "auth claims a fan-out step",
    );
    refused(
        auth.hub.store.clear_push_pending(&first.id).await,
        "auth deletes a push mark",
    );
    refused(
        auth.hub.store.put_channel(&channels[0]).await,
        "auth writes a channel",
    );
    refused(
        auth.hub.store.get_channel("google", &channels[0].id).await,
        "auth reads a channel",
    );
}

/// `hub-migrate` runs with the policy docs/DEPLOY.md ("Upgrading a deployed stack") gives its
/// operator, and needs all of it: without `UpdateItem` it is refused.
#[tokio::test]
async fn the_migration_runs_with_the_policy_the_deploy_guide_gives() {
    let deploy = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/DEPLOY.md"),
    )
    .unwrap();
    let after = &deploy[deploy
        .find("The policy:")
        .expect("the guide gives the policy")..];
    let block = &after[after.find("```json").unwrap() + 7..];
    let stack = format!("lp{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let deployment = Deployment::new(&stack, &[]);
    let policy: Json = serde_json::from_str(
        &block[..block.find("```").unwrap()]
            .replace("<region>", REGION)
            .replace("<account>", ACCOUNT_ID)
            .replace("<stack>", &stack),
    )
    .unwrap();
    let statements = policy["Statement"].as_array().unwrap().clone();

    let admin = aws_sdk_dynamodb::Client::new(&common::sdk_config().await);
    let table = deployment.table();
    hub::store::dynamo::create_table(&admin, &table)
        .await
        .unwrap();
    let entries: Vec<hub::model::FileEntry> = (0..3)
        .map(|n| hub::model::FileEntry {
            parent_ids: Some(vec!["folder_0".into()]),
            drive_id: Some("box".into()),
            ..hub::model::FileEntry::new(format!("file_{n}"), format!("{n}.txt"))
        })
        .collect();
    DynamoStore::new(admin.clone(), &table)
        .put_files("acct", &entries, 1, 1)
        .await
        .unwrap();
    for entry in &entries {
        admin
            .update_item()
            .table_name(&table)
            .key("pk", AttributeValue::S("ACCOUNT#acct".into()))
            .key("sk", AttributeValue::S(format!("FILE#{}", entry.id)))
            .update_expression("REMOVE drive_key, place")
            .send()
            .await
            .unwrap();
    }
    let operator = |statements: Vec<Json>| {
        let authorizer = Authorizer {
            function: "hub-migrate",
            permissions: Arc::new(Permissions {
                statements,
                encryption_context_keys: HashMap::new(),
            }),
            table: table.clone(),
            table_arn: deployment.table_arn(),
            refusals: Arc::default(),
        };
        let sdk = admin.config().clone();
        let client = aws_sdk_dynamodb::Client::from_conf(
            sdk.to_builder().interceptor(authorizer.clone()).build(),
        );
        (DynamoStore::new(client, &table), authorizer.refusals)
    };
    let scan_only: Vec<Json> = statements
        .iter()
        .map(|statement| {
            let mut statement = statement.clone();
            statement["Action"] = json!(["dynamodb:Scan"]);
            statement
        })
        .collect();
    let (narrower, _) = operator(scan_only);
    refused(
        narrower.backfill_folder_index().await,
        "the backfill without UpdateItem",
    );
    let (migrate, refusals) = operator(statements);
    let report = migrate.backfill_folder_index().await.unwrap();
    assert_eq!((report.found, report.updated), (3, 3));
    assert!(refusals.lock().unwrap().is_empty());
}
