//! `template.yaml` as the tests read it: parsed with a real YAML parser (CloudFormation's
//! short-form intrinsics `!Ref`, `!GetAtt`, `!Sub` are YAML tags), and the few intrinsics the
//! tests need resolved against names the test chooses.

use std::collections::HashMap;

use serde_json::{json, Value as Json};
use serde_norway::Value as Yaml;

pub fn load_template() -> Yaml {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A resolver of a sample stack named `stack`: every parameter and resource resolves to its
/// own logical id (`!GetAtt X.Arn` and `X.QueueName` too), so that a reference reads as the
/// name of what it refers to; a test adds the names it wants otherwise.
pub fn logical_names(template: &Yaml, region: &str, account_id: &str, stack: &str) -> Resolver {
    let mut names: HashMap<String, String> = [
        ("AWS::Partition", "aws"),
        ("AWS::Region", region),
        ("AWS::AccountId", account_id),
        ("AWS::StackName", stack),
        ("AWS::URLSuffix", "amazonaws.com"),
        ("AWS::NoValue", "AWS::NoValue"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for section in ["Parameters", "Resources"] {
        for name in template[section].as_mapping().unwrap().keys() {
            let name = name.as_str().unwrap();
            names.insert(name.to_string(), name.to_string());
            names.insert(format!("{name}.Arn"), name.to_string());
            names.insert(format!("{name}.QueueName"), name.to_string());
        }
    }
    Resolver { names }
}

/// The template's resources of type `kind` (`AWS::SQS::Queue`), with their logical ids.
pub fn resources_of_type<'a>(template: &'a Yaml, kind: &str) -> Vec<(&'a str, &'a Yaml)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some(kind))
        .map(|(name, resource)| (name.as_str().unwrap(), resource))
        .collect()
}

/// What the template's `!Sub`, `!Ref` and `!GetAtt` resolve to: `names` maps a pseudo
/// parameter, parameter or resource (`HubHttpApi`) and an attribute (`AuthFunction.Arn`) to
/// the value the test gives it.
pub struct Resolver {
    pub names: HashMap<String, String>,
}

impl Resolver {
    pub fn name(&self, name: &str) -> String {
        self.names
            .get(name)
            .unwrap_or_else(|| panic!("the test does not know what {name} is"))
            .clone()
    }

    /// A template value with its intrinsic functions resolved, as JSON.
    pub fn resolve(&self, value: &Yaml) -> Json {
        match value {
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                match (tag.as_str(), &tagged.value) {
                    ("!Sub", Yaml::String(text)) => Json::String(self.substitute(text)),
                    ("!Ref", Yaml::String(name)) => Json::String(self.name(name)),
                    ("!GetAtt", Yaml::String(name)) => Json::String(self.name(name)),
                    _ => panic!("the test cannot render {tag} {:?}", tagged.value),
                }
            }
            Yaml::Mapping(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (k.as_str().unwrap().to_string(), self.resolve(v)))
                    .collect(),
            ),
            Yaml::Sequence(items) => Json::Array(items.iter().map(|v| self.resolve(v)).collect()),
            Yaml::String(s) => Json::String(s.clone()),
            Yaml::Bool(b) => Json::Bool(*b),
            Yaml::Number(n) => json!(n.as_f64()),
            Yaml::Null => Json::Null,
        }
    }

    pub fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = start + rest[start..].find('}').unwrap();
            out.push_str(&self.name(&rest[start + 2..end]));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

pub fn strings(value: &Json) -> Vec<String> {
    match value {
        Json::String(s) => vec![s.clone()],
        Json::Array(items) => items
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect(),
        _ => vec![],
    }
}

/// IAM's wildcard match (`*` any run, `/` included; `?` one character), as IAM compares
/// actions, resources, `SourceArn` and `dynamodb:LeadingKeys`.
pub fn wildcard(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}
