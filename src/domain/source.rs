//! Sources: where a stage variable's value comes from.
//!
//! [`SOURCE_KINDS`] is the one table of source kinds: for each, the `Custom::StageBinding`
//! property keys that name it, the CLI's `kind:` form and its help, and how its properties
//! become a [`Source`]. Property parsing, the CLI and their messages are derived from it.
//! [`SourceKey`] is the registry key events are matched against.
//!
//! Adding a kind: a [`Source`] variant, its entry in [`SOURCE_KINDS`] with its build function,
//! its arms below (the compiler lists them), and its resolution in `resolve.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a stage variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// An output of a CloudFormation stack (name or stack ARN).
    StackOutput {
        stack: String,
        output_key: String,
        #[serde(flatten)]
        at: Place,
    },
    /// The load balancer in front of an ECS service.
    EcsService {
        cluster: String,
        service: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container_port: Option<u16>,
        #[serde(flatten)]
        at: Place,
    },
    /// An ELBv2 load balancer by name or ARN, or a classic ELB by name.
    LoadBalancer {
        name: String,
        #[serde(flatten)]
        at: Place,
    },
    /// A literal value.
    Literal { value: String },
}

impl Source {
    /// The registry key that events are matched against: every binding whose source has this
    /// key is affected by an event about that stack, service or load balancer.
    pub fn key(&self) -> SourceKey {
        match self {
            Source::StackOutput { stack, at, .. } => SourceKey::stack(stack).at(at),
            Source::EcsService {
                cluster,
                service,
                at,
                ..
            } => SourceKey::ecs(cluster, service).at(at),
            Source::LoadBalancer { name, at } => SourceKey::load_balancer(name).at(at),
            Source::Literal { .. } => SourceKey::Literal,
        }
    }

    /// The same source, without a region that is the hub's own (see [`Place::settled`]).
    pub fn settled(mut self, home_region: &str) -> Source {
        match &mut self {
            Source::StackOutput { at, .. }
            | Source::EcsService { at, .. }
            | Source::LoadBalancer { at, .. } => *at = at.settled(home_region),
            Source::Literal { .. } => {}
        }
        self
    }

    /// Where the source is read: the hub's own account and region unless it says otherwise
    /// (`None` for a literal, which is read nowhere).
    pub fn place(&self) -> Option<&Place> {
        match self {
            Source::StackOutput { at, .. }
            | Source::EcsService { at, .. }
            | Source::LoadBalancer { at, .. } => Some(at),
            Source::Literal { .. } => None,
        }
    }

    /// The value itself, for a source that needs no resolving (a literal).
    pub fn literal_value(&self) -> Option<&str> {
        match self {
            Source::Literal { value } => Some(value),
            Source::StackOutput { .. }
            | Source::EcsService { .. }
            | Source::LoadBalancer { .. } => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::StackOutput {
                stack,
                output_key,
                at,
            } => write!(f, "output {output_key} of stack {stack}{at}"),
            Source::EcsService {
                cluster,
                service,
                at,
                ..
            } => write!(f, "ECS service {service} in cluster {cluster}{at}"),
            Source::LoadBalancer { name, at } => write!(f, "load balancer {name}{at}"),
            Source::Literal { value } => write!(f, "literal {value:?}"),
        }
    }
}

/// Where a source is read: another region, and another account through a role the hub
/// assumes. Both absent: the hub's own account and region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Place {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

impl Place {
    /// The hub's own account and region.
    pub fn is_home(&self) -> bool {
        self.region.is_none() && self.role_arn.is_none()
    }

    /// The same place, without a region that is the hub's own: what the registry keys.
    pub fn settled(&self, home_region: &str) -> Place {
        Place {
            region: self.region.clone().filter(|r| r != home_region),
            role_arn: self.role_arn.clone(),
        }
    }

    /// The account of the role (`arn:PARTITION:iam::ACCOUNT:role/NAME`), when there is one.
    pub fn account(&self) -> Option<&str> {
        self.role_arn.as_deref().and_then(role_account)
    }

    /// What is wrong with the place, if anything: a region that is not a region's code, a
    /// role that is not an IAM role ARN.
    pub fn problem(&self) -> Option<String> {
        if let Some(region) = &self.region {
            if !is_region(region) {
                return Some(format!(
                    "Region {region:?} is not a region code (like eu-west-1)"
                ));
            }
        }
        if let Some(role) = &self.role_arn {
            if role_account(role).is_none() {
                return Some(format!(
                    "RoleArn {role:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
                ));
            }
        }
        None
    }
}

/// ` in region R through role ARN (account A)`, or nothing for the hub's own place.
impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(region) = &self.region {
            write!(f, " in region {region}")?;
        }
        if let Some(role) = &self.role_arn {
            write!(
                f,
                " through role {role} (account {})",
                role_account(role).unwrap_or("?")
            )?;
        }
        Ok(())
    }
}

/// The account of an IAM role ARN.
pub fn role_account(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.len() > "role/".len()
                && resource.starts_with("role/") =>
        {
            Some(account)
        }
        _ => None,
    }
}

/// `eu-west-1`, `us-gov-west-1`, `ap-southeast-4`: lowercase words and a number.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

// ---- the table of kinds ----

/// How a property's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A non-empty string (a number is taken as its decimal text).
    Text,
    /// A TCP port, 0 to 65535 (a number or a string holding one).
    Port,
}

/// One property key of a source kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub key: &'static str,
    pub ty: FieldType,
}

const fn text(key: &'static str) -> Field {
    Field {
        key,
        ty: FieldType::Text,
    }
}

/// The keys of [`Place`], accepted by every kind that is read somewhere.
pub const REGION: Field = text("Region");
pub const ROLE_ARN: Field = text("RoleArn");

fn place(f: &Fields) -> Place {
    Place {
        region: f.text(REGION.key),
        role_arn: f.text(ROLE_ARN.key),
    }
}

const fn port(key: &'static str) -> Field {
    Field {
        key,
        ty: FieldType::Port,
    }
}

/// A property value, read as its [`FieldType`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    Text(String),
    Port(u16),
}

/// The properties of one source, read and typed, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(BTreeMap<&'static str, FieldValue>);

impl Fields {
    pub fn insert(&mut self, key: &'static str, value: FieldValue) {
        self.0.insert(key, value);
    }

    fn text(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            FieldValue::Text(s) => Some(s.clone()),
            FieldValue::Port(_) => None,
        }
    }

    fn port(&self, key: &str) -> Option<u16> {
        match self.0.get(key)? {
            FieldValue::Port(p) => Some(*p),
            FieldValue::Text(_) => None,
        }
    }
}

/// One kind of source, as the properties, the CLI and their messages present it.
#[derive(Debug)]
pub struct SourceKind {
    /// Property keys that must all be given; any of them names the kind.
    pub required: &'static [Field],
    /// Property keys that may also be given.
    pub optional: &'static [Field],
    /// When the required keys of several kinds are given, the kind with the lowest precedence
    /// is the one parsed (and the other keys are reported as unsupported).
    pub precedence: u8,
    /// The CLI's `kind:` prefix.
    pub cli_prefix: &'static str,
    /// The CLI's form: the prefix, then the required properties (two are separated by the
    /// last '/', so that ARNs holding '/' work).
    pub cli_form: &'static str,
    /// What the source is, for help texts.
    pub help: &'static str,
    /// The source from its fields; `None` when a required field is missing.
    build: fn(&Fields) -> Option<Source>,
}

/// Every kind of source, in the order help texts and messages list them.
pub const SOURCE_KINDS: &[SourceKind] = &[
    SourceKind {
        required: &[text("StackName"), text("OutputKey")],
        optional: &[REGION, ROLE_ARN],
        precedence: 1,
        cli_prefix: "stack",
        cli_form: "stack:STACK/OUTPUTKEY",
        help: "an output of a CloudFormation stack (name or stack ARN)",
        build: |f| {
            Some(Source::StackOutput {
                stack: f.text("StackName")?,
                output_key: f.text("OutputKey")?,
                at: place(f),
            })
        },
    },
    SourceKind {
        required: &[text("Cluster"), text("Service")],
        optional: &[
            text("ContainerName"),
            port("ContainerPort"),
            REGION,
            ROLE_ARN,
        ],
        precedence: 2,
        cli_prefix: "ecs",
        cli_form: "ecs:CLUSTER/SERVICE",
        help: "the load balancer in front of an ECS service",
        build: |f| {
            Some(Source::EcsService {
                cluster: f.text("Cluster")?,
                service: f.text("Service")?,
                container_name: f.text("ContainerName"),
                container_port: f.port("ContainerPort"),
                at: place(f),
            })
        },
    },
    SourceKind {
        required: &[text("LoadBalancer")],
        optional: &[REGION, ROLE_ARN],
        precedence: 3,
        cli_prefix: "lb",
        cli_form: "lb:NAME_OR_ARN",
        help: "an ELBv2 load balancer by name or ARN, or a classic ELB by name",
        build: |f| {
            Some(Source::LoadBalancer {
                name: f.text("LoadBalancer")?,
                at: place(f),
            })
        },
    },
    SourceKind {
        required: &[text("Value")],
        optional: &[],
        precedence: 0,
        cli_prefix: "value",
        cli_form: "value:LITERAL",
        help: "a literal value",
        build: |f| {
            Some(Source::Literal {
                value: f.text("Value")?,
            })
        },
    },
];

impl SourceKind {
    /// Every property key of the kind: the required ones, then the optional ones.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> {
        self.required.iter().chain(self.optional).map(|f| f.key)
    }

    /// The readable form of the kind's required keys (`StackName + OutputKey`).
    pub fn readable(&self) -> String {
        let keys: Vec<&str> = self.required.iter().map(|f| f.key).collect();
        keys.join(" + ")
    }

    /// The source from fields read as the kind declares them.
    pub fn build(&self, fields: &Fields) -> Option<Source> {
        (self.build)(fields)
    }

    /// The text after the CLI prefix as the kind's properties: the required ones in the
    /// kind's form, then, for a kind with optional properties, `,Key=Value` for any of them
    /// (`stack:S/O,Region=eu-west-1,RoleArn=arn:...`); `None` when it does not have that form.
    pub fn cli_properties(&self, rest: &str) -> Option<Vec<(&'static str, String)>> {
        let (rest, options) = match rest.split_once(',') {
            Some((rest, options)) if !self.optional.is_empty() => (rest, Some(options)),
            _ => (rest, None),
        };
        let parts: Vec<&str> = match self.required {
            [_] => vec![rest],
            [_, _] => {
                let (a, b) = rest.rsplit_once('/')?;
                vec![a, b]
            }
            _ => return None,
        };
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let mut props: Vec<(&'static str, String)> = self
            .required
            .iter()
            .zip(parts)
            .map(|(f, p)| (f.key, p.to_string()))
            .collect();
        for option in options.into_iter().flat_map(|o| o.split(',')) {
            let (key, value) = option.split_once('=')?;
            let field = self.optional.iter().find(|f| f.key == key)?;
            if value.is_empty() || props.iter().any(|(k, _)| *k == field.key) {
                return None;
            }
            props.push((field.key, value.to_string()));
        }
        Some(props)
    }
}

/// The kind named by a set of property keys: among the kinds one of whose required keys is
/// present, the one of lowest precedence.
pub fn kind_of_properties(has: impl Fn(&str) -> bool) -> Option<&'static SourceKind> {
    SOURCE_KINDS
        .iter()
        .filter(|k| k.required.iter().any(|f| has(f.key)))
        .min_by_key(|k| k.precedence)
}

/// The kind with this CLI prefix.
pub fn kind_of_cli_prefix(prefix: &str) -> Option<&'static SourceKind> {
    SOURCE_KINDS.iter().find(|k| k.cli_prefix == prefix)
}

/// `a, b, c{last}d`.
fn list(items: impl IntoIterator<Item = String>, last: &str) -> String {
    let mut items: Vec<String> = items.into_iter().collect();
    match items.pop() {
        None => String::new(),
        Some(tail) if items.is_empty() => tail,
        Some(tail) => format!("{}{last}{tail}", items.join(", ")),
    }
}

/// Every kind's required keys, for messages: `StackName + OutputKey, ..., or Value`.
pub fn readable_kinds() -> String {
    list(SOURCE_KINDS.iter().map(SourceKind::readable), ", or ")
}

/// Every CLI form: `stack:STACK/OUTPUTKEY, ... or value:LITERAL`.
pub fn cli_forms() -> String {
    list(SOURCE_KINDS.iter().map(|k| k.cli_form.to_string()), " or ")
}

/// One line per CLI form with its help, indented by two spaces and aligned.
pub fn cli_help() -> String {
    let width = SOURCE_KINDS
        .iter()
        .map(|k| k.cli_form.len())
        .max()
        .unwrap_or(0)
        + 3;
    let mut lines: Vec<String> = SOURCE_KINDS
        .iter()
        .map(|k| format!("  {:<width$}{}", k.cli_form, k.help))
        .collect();
    lines.push(format!(
        "  A source other than a literal may end with ,{}=REGION and/or ,{}=ROLE_ARN: read in \
another region, or in another account through that role.",
        REGION.key, ROLE_ARN.key
    ));
    lines.join("\n")
}

// ---- registry keys ----

/// The registry key of a source: what events about stacks, ECS services and load balancers
/// are matched against. Its text form (`stack#NAME`, `ecs#CLUSTER/SERVICE`, `lb#NAME`,
/// `literal`) is what the registry stores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKey {
    Stack(String),
    Ecs {
        cluster: String,
        service: String,
    },
    LoadBalancer(String),
    Literal,
    /// The key of a source read elsewhere: in the account of its role and/or another region
    /// (`None`: the hub's own). Text form: the key, `@ACCOUNT/REGION` (either may be empty).
    At {
        account: Option<String>,
        region: Option<String>,
        key: Box<SourceKey>,
    },
}

impl SourceKey {
    /// This key as read at `place`: unchanged for the hub's own account and region.
    pub fn at(self, place: &Place) -> SourceKey {
        self.located(place.account(), place.region.as_deref())
    }

    /// This key in `account` and `region` (`None`: the hub's own).
    pub fn located(self, account: Option<&str>, region: Option<&str>) -> SourceKey {
        match (account, region, self) {
            (None, None, key) => key,
            (_, _, SourceKey::Literal) => SourceKey::Literal,
            (_, _, SourceKey::At { key, .. }) => key.located(account, region),
            (account, region, key) => SourceKey::At {
                account: account.map(str::to_owned),
                region: region.map(str::to_owned),
                key: Box::new(key),
            },
        }
    }

    /// The key of a stack, by name or stack ARN.
    pub fn stack(name_or_arn: &str) -> SourceKey {
        SourceKey::Stack(stack_name(name_or_arn).to_string())
    }

    /// The key of an ECS service; cluster and service may be names or ARNs.
    pub fn ecs(cluster: &str, service: &str) -> SourceKey {
        SourceKey::Ecs {
            cluster: name_of(cluster).to_string(),
            service: name_of(service).to_string(),
        }
    }

    /// The key of a load balancer, by name or ELBv2 ARN.
    pub fn load_balancer(name_or_arn: &str) -> SourceKey {
        SourceKey::LoadBalancer(load_balancer_name(name_or_arn).to_string())
    }
}

/// A stack's name, taken out of a stack ARN when given one
/// (`arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/UUID`).
pub fn stack_name(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") {
        name_or_arn.split('/').nth(1).unwrap_or(name_or_arn)
    } else {
        name_or_arn
    }
}

/// A load balancer's name, taken out of an ELBv2 ARN when given one
/// (`arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID`).
pub fn load_balancer_name(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") {
        let parts: Vec<&str> = name_or_arn.split('/').collect();
        if parts.len() >= 3 {
            return parts[parts.len() - 2];
        }
    }
    name_or_arn
}

/// The last path segment of an ARN-like identifier (`.../name` -> `name`), or the input.
fn name_of(id: &str) -> &str {
    if id.starts_with("arn:") {
        id.rsplit('/').next().unwrap_or(id)
    } else {
        id
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceKey::Stack(name) => write!(f, "stack#{name}"),
            SourceKey::Ecs { cluster, service } => write!(f, "ecs#{cluster}/{service}"),
            SourceKey::LoadBalancer(name) => write!(f, "lb#{name}"),
            SourceKey::Literal => f.write_str("literal"),
            SourceKey::At {
                account,
                region,
                key,
            } => write!(
                f,
                "{key}@{}/{}",
                account.as_deref().unwrap_or(""),
                region.as_deref().unwrap_or("")
            ),
        }
    }
}

/// A stored key that is none of the forms [`SourceKey`] writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a source key (stack#NAME, ecs#CLUSTER/SERVICE, lb#NAME or literal, the first three optionally followed by @ACCOUNT/REGION)"
)]
pub struct ParseSourceKeyError(String);

impl FromStr for SourceKey {
    type Err = ParseSourceKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseSourceKeyError(s.to_string());
        if let Some((key, place)) = s.rsplit_once('@') {
            let (account, region) = place.split_once('/').ok_or_else(bad)?;
            fn some(p: &str) -> Option<&str> {
                (!p.is_empty()).then_some(p)
            }
            return match key.parse::<SourceKey>() {
                Ok(SourceKey::Literal | SourceKey::At { .. }) | Err(_) => Err(bad()),
                Ok(_) if some(account).is_none() && some(region).is_none() => Err(bad()),
                Ok(key) => Ok(key.located(some(account), some(region))),
            };
        }
        if s == "literal" {
            return Ok(SourceKey::Literal);
        }
        let (kind, rest) = s.split_once('#').ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        match kind {
            "stack" => Ok(SourceKey::Stack(rest.to_string())),
            "lb" => Ok(SourceKey::LoadBalancer(rest.to_string())),
            "ecs" => match rest.split_once('/') {
                Some((cluster, service)) if !cluster.is_empty() && !service.is_empty() => {
                    Ok(SourceKey::Ecs {
                        cluster: cluster.to_string(),
                        service: service.to_string(),
                    })
                }
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_keys_reduce_arns_to_names() {
        let key = |k: SourceKey| k.to_string();
        assert_eq!(
            key(SourceKey::stack(
                "arn:aws:cloudformation:us-east-1:123456789012:stack/EcsHelloworldProd/0f1e"
            )),
            "stack#EcsHelloworldProd"
        );
        assert_eq!(
            key(SourceKey::stack("EcsHelloworldProd")),
            "stack#EcsHelloworldProd"
        );
        assert_eq!(
            key(SourceKey::load_balancer("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/my-alb/50dc6c495c0c9188")),
            "lb#my-alb"
        );
        assert_eq!(key(SourceKey::load_balancer("my-elb")), "lb#my-elb");
        assert_eq!(
            key(SourceKey::ecs(
                "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
                "arn:aws:ecs:us-east-1:123456789012:service/prod/helloworld"
            )),
            "ecs#prod/helloworld"
        );
        assert_eq!(
            stack_name("arn:aws:cloudformation:us-east-1:1:stack/S/uuid"),
            "S"
        );
        assert_eq!(
            load_balancer_name("arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/nlb/1"),
            "nlb"
        );
    }

    #[test]
    fn source_keys_read_back_what_they_write() {
        let keys = [
            SourceKey::Stack("EcsHelloworldProd".into()),
            SourceKey::Ecs {
                cluster: "prod".into(),
                service: "helloworld".into(),
            },
            SourceKey::LoadBalancer("my-alb".into()),
            SourceKey::Literal,
        ];
        for key in keys {
            assert_eq!(key.to_string().parse::<SourceKey>(), Ok(key.clone()));
        }
        for bad in [
            "",
            "stack#",
            "lb",
            "ecs#prod",
            "ecs#/svc",
            "s3#bucket",
            "literal#x",
        ] {
            assert!(bad.parse::<SourceKey>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_source_has_its_key() {
        let cases = [
            (
                Source::StackOutput {
                    stack: "S".into(),
                    output_key: "O".into(),
                    at: Default::default(),
                },
                "stack#S",
            ),
            (
                Source::EcsService {
                    cluster: "c".into(),
                    service: "s".into(),
                    container_name: None,
                    container_port: Some(80),
                    at: Default::default(),
                },
                "ecs#c/s",
            ),
            (
                Source::LoadBalancer {
                    name: "lb1".into(),
                    at: Default::default(),
                },
                "lb#lb1",
            ),
            (Source::Literal { value: "v".into() }, "literal"),
        ];
        for (source, key) in cases {
            assert_eq!(source.key().to_string(), key, "{source}");
        }
    }

    #[test]
    fn the_table_is_consistent() {
        let mut prefixes: Vec<&str> = SOURCE_KINDS.iter().map(|k| k.cli_prefix).collect();
        prefixes.sort();
        prefixes.dedup();
        assert_eq!(
            prefixes.len(),
            SOURCE_KINDS.len(),
            "CLI prefixes are unique"
        );
        let mut precedences: Vec<u8> = SOURCE_KINDS.iter().map(|k| k.precedence).collect();
        precedences.sort();
        precedences.dedup();
        assert_eq!(
            precedences.len(),
            SOURCE_KINDS.len(),
            "precedences are unique"
        );
        let place = [REGION.key, ROLE_ARN.key];
        let mut keys: Vec<&str> = SOURCE_KINDS
            .iter()
            .flat_map(SourceKind::keys)
            .filter(|k| !place.contains(k))
            .collect();
        let all = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(
            keys.len(),
            all,
            "no key but Region and RoleArn belongs to two kinds"
        );
        for kind in SOURCE_KINDS {
            let placed = kind.optional.contains(&REGION) && kind.optional.contains(&ROLE_ARN);
            assert_eq!(placed, kind.cli_prefix != "value", "{kind:?}");
        }
        for kind in SOURCE_KINDS {
            assert!(
                kind.cli_form.starts_with(&format!("{}:", kind.cli_prefix)),
                "{kind:?}"
            );
            assert!(matches!(kind.required.len(), 1 | 2), "{kind:?}");
            // Every key the kind declares is read by its build function, and the required
            // ones are enough.
            let value = |f: &Field| match f.ty {
                FieldType::Text => FieldValue::Text(format!("x{}", f.key)),
                FieldType::Port => FieldValue::Port(8080),
            };
            let mut required = Fields::default();
            for f in kind.required {
                required.insert(f.key, value(f));
            }
            let minimal = kind.build(&required).expect("required fields suffice");
            let mut all = required.clone();
            for f in kind.optional {
                all.insert(f.key, value(f));
            }
            let full = kind.build(&all).expect("every field");
            assert_eq!(
                kind.optional.is_empty(),
                minimal == full,
                "optional fields are read: {kind:?}"
            );
            for f in kind.required {
                let mut missing = required.clone();
                missing.0.remove(f.key);
                assert_eq!(kind.build(&missing), None, "{} is required", f.key);
            }
            // The CLI form gives the required properties.
            let rest = match kind.required {
                [_] => "a".to_string(),
                _ => "a/b".to_string(),
            };
            let props = kind.cli_properties(&rest).expect("CLI form");
            assert_eq!(
                props.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
                kind.required.iter().map(|f| f.key).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn sources_elsewhere_have_keys_of_their_account_and_region() {
        let role = "arn:aws:iam::222222222222:role/stagewire-source";
        let at = |region: Option<&str>, role_arn: Option<&str>| Place {
            region: region.map(str::to_owned),
            role_arn: role_arn.map(str::to_owned),
        };
        let stack = |at| Source::StackOutput {
            stack: "S".into(),
            output_key: "O".into(),
            at,
        };
        let cases = [
            (at(None, None), "stack#S"),
            (at(Some("eu-west-1"), None), "stack#S@/eu-west-1"),
            (at(None, Some(role)), "stack#S@222222222222/"),
            (
                at(Some("eu-west-1"), Some(role)),
                "stack#S@222222222222/eu-west-1",
            ),
        ];
        for (place, text) in cases {
            let key = stack(place.clone()).key();
            assert_eq!(key.to_string(), text);
            assert_eq!(text.parse::<SourceKey>(), Ok(key), "{text}");
            // The registry's JSON of a source in the hub's own place is what it always was.
            let json = serde_json::to_value(stack(place.clone())).unwrap();
            assert_eq!(json.get("region").is_some(), place.region.is_some());
            assert_eq!(
                serde_json::from_value::<Source>(json).unwrap(),
                stack(place)
            );
        }
        assert_eq!(
            SourceKey::ecs("c", "s")
                .located(Some("333333333333"), None)
                .to_string(),
            "ecs#c/s@333333333333/"
        );
        for bad in [
            "stack#S@",
            "stack#S@/",
            "literal@1/r",
            "stack#S@1/r@2/r",
            "@1/r",
        ] {
            assert!(bad.parse::<SourceKey>().is_err(), "{bad:?}");
        }
        assert_eq!(at(Some("eu-west-1"), Some(role)).problem(), None);
        assert_eq!(at(Some("us-gov-west-1"), None).problem(), None);
        for (place, needle) in [
            (at(Some("Ireland"), None), "Region \"Ireland\""),
            (at(Some("eu-west"), None), "Region"),
            (at(None, Some("arn:aws:iam::2222:role/x")), "RoleArn"),
            (
                at(None, Some("arn:aws:iam::222222222222:user/x")),
                "RoleArn",
            ),
        ] {
            assert!(place.problem().unwrap().contains(needle), "{place:?}");
        }
        assert_eq!(
            stack(at(Some("eu-west-1"), Some(role))).to_string(),
            "output O of stack S in region eu-west-1 through role arn:aws:iam::222222222222:role/stagewire-source (account 222222222222)"
        );
    }

    #[test]
    fn cli_options_name_the_place() {
        let stack = kind_of_cli_prefix("stack").unwrap();
        assert_eq!(
            stack.cli_properties("S/O,Region=eu-west-1,RoleArn=arn:aws:iam::2:role/r"),
            Some(vec![
                ("StackName", "S".to_string()),
                ("OutputKey", "O".to_string()),
                ("Region", "eu-west-1".to_string()),
                ("RoleArn", "arn:aws:iam::2:role/r".to_string()),
            ])
        );
        assert_eq!(stack.cli_properties("S/O,Bogus=1"), None);
        assert_eq!(stack.cli_properties("S/O,Region="), None);
        assert_eq!(stack.cli_properties("S/O,Region=a,Region=b"), None);
        // A literal's commas are part of its value.
        assert_eq!(
            kind_of_cli_prefix("value").unwrap().cli_properties("a,b"),
            Some(vec![("Value", "a,b".to_string())])
        );
    }

    #[test]
    fn derived_texts() {
        assert_eq!(
            readable_kinds(),
            "StackName + OutputKey, Cluster + Service, LoadBalancer, or Value"
        );
        assert_eq!(
            cli_forms(),
            "stack:STACK/OUTPUTKEY, ecs:CLUSTER/SERVICE, lb:NAME_OR_ARN or value:LITERAL"
        );
        assert_eq!(
            cli_help(),
            "  stack:STACK/OUTPUTKEY   an output of a CloudFormation stack (name or stack ARN)\n  \
ecs:CLUSTER/SERVICE     the load balancer in front of an ECS service\n  \
lb:NAME_OR_ARN          an ELBv2 load balancer by name or ARN, or a classic ELB by name\n  \
value:LITERAL           a literal value\n  \
A source other than a literal may end with ,Region=REGION and/or ,RoleArn=ROLE_ARN: read in \
another region, or in another account through that role."
        );
    }

    #[test]
    fn kinds_by_keys_and_prefix() {
        let by = |keys: &[&str]| kind_of_properties(|k| keys.contains(&k)).map(|k| k.cli_prefix);
        assert_eq!(by(&["StackName"]), Some("stack"));
        assert_eq!(by(&["OutputKey", "Value"]), Some("value"));
        assert_eq!(by(&["Service", "LoadBalancer"]), Some("ecs"));
        assert_eq!(by(&["ContainerPort", "LoadBalancer"]), Some("lb"));
        assert_eq!(by(&["ContainerPort"]), None);
        assert_eq!(by(&["Bogus"]), None);
        assert_eq!(
            kind_of_cli_prefix("lb").map(|k| k.cli_form),
            Some("lb:NAME_OR_ARN")
        );
        assert!(kind_of_cli_prefix("s3").is_none());
        let ecs = kind_of_cli_prefix("ecs").unwrap();
        assert_eq!(
            ecs.cli_properties("arn:aws:ecs:us-east-1:1:cluster/prod/orders"),
            Some(vec![
                (
                    "Cluster",
                    "arn:aws:ecs:us-east-1:1:cluster/prod".to_string()
                ),
                ("Service", "orders".to_string())
            ])
        );
        assert_eq!(ecs.cli_properties("/orders"), None);
        assert_eq!(ecs.cli_properties("prod"), None);
        assert_eq!(
            kind_of_cli_prefix("value").unwrap().cli_properties(""),
            None
        );
    }
}
