//! The one table of source kinds ([`SOURCE_KINDS`]) and what is derived from it: how a kind's
//! properties are read and become a [`Source`], the CLI's forms and the texts of help and
//! messages.

use std::collections::BTreeMap;

use super::{Place, Source};

/// How a property's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A non-empty string (a number is taken as its decimal text).
    Text,
    /// A TCP port, 0 to 65535 (a number or a string holding one).
    Port,
    /// A whole source of a kind that names a load balancer (a wrapping kind's one required
    /// field): in the properties an object, on the CLI another kind's form.
    Source,
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
    Source(Box<Source>),
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
            _ => None,
        }
    }

    fn port(&self, key: &str) -> Option<u16> {
        match self.0.get(key)? {
            FieldValue::Port(p) => Some(*p),
            _ => None,
        }
    }

    fn source(&self, key: &str) -> Option<Box<Source>> {
        match self.0.get(key)? {
            FieldValue::Source(s) => Some(s.clone()),
            _ => None,
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
        build: stack_output,
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
        build: ecs_service,
    },
    SourceKind {
        required: &[text("LoadBalancer")],
        optional: &[REGION, ROLE_ARN],
        precedence: 3,
        cli_prefix: "lb",
        cli_form: "lb:NAME_OR_ARN",
        help: "an ELBv2 load balancer by name or ARN, or a classic ELB by name",
        build: load_balancer,
    },
    SourceKind {
        required: &[text("Value")],
        optional: &[],
        precedence: 0,
        cli_prefix: "value",
        cli_form: "value:LITERAL",
        help: "a literal value",
        build: literal,
    },
    SourceKind {
        required: &[Field {
            key: "VpcLinkFor",
            ty: FieldType::Source,
        }],
        optional: &[],
        precedence: 4,
        cli_prefix: "vpclink-for",
        cli_form: "vpclink-for:SOURCE",
        help: "the id of the REST VPC link in front of the load balancer SOURCE names \
(stack:, ecs: or lb:)",
        build: vpc_link_for,
    },
];

/// An output of a stack.
fn stack_output(f: &Fields) -> Option<Source> {
    Some(Source::StackOutput {
        stack: f.text("StackName")?,
        output_key: f.text("OutputKey")?,
        at: place(f),
    })
}

/// The load balancer in front of an ECS service.
fn ecs_service(f: &Fields) -> Option<Source> {
    Some(Source::EcsService {
        cluster: f.text("Cluster")?,
        service: f.text("Service")?,
        container_name: f.text("ContainerName"),
        container_port: f.port("ContainerPort"),
        at: place(f),
    })
}

/// A load balancer by name or ARN.
fn load_balancer(f: &Fields) -> Option<Source> {
    Some(Source::LoadBalancer {
        name: f.text("LoadBalancer")?,
        at: place(f),
    })
}

/// The REST VPC link of a load balancer.
fn vpc_link_for(f: &Fields) -> Option<Source> {
    Some(Source::VpcLinkFor {
        target: f.source("VpcLinkFor")?,
    })
}

/// A literal.
fn literal(f: &Fields) -> Option<Source> {
    Some(Source::Literal {
        value: f.text("Value")?,
    })
}

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

    /// Whether the kind wraps another source (its one required field is a
    /// [`FieldType::Source`]).
    pub fn wraps(&self) -> bool {
        self.required.iter().any(|f| f.ty == FieldType::Source)
    }

    /// The text after the CLI prefix as the kind's properties: the required ones in the
    /// kind's form, then, for a kind with optional properties, `,Key=Value` for any of them
    /// (`stack:S/O,Region=eu-west-1,RoleArn=arn:...`); `None` when it does not have that form.
    /// A wrapping kind's one property is the whole text, another source's CLI form, which the
    /// caller parses in turn.
    pub fn cli_properties(&self, rest: &str) -> Option<Vec<(&'static str, String)>> {
        if self.wraps() {
            let [field] = self.required else { return None };
            return (!rest.is_empty()).then(|| vec![(field.key, rest.to_string())]);
        }
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

/// The required keys of the kinds a wrapping kind may wrap, for messages: those read
/// somewhere (they name load balancers), `StackName + OutputKey, ... or LoadBalancer`.
pub fn readable_wrappable_kinds() -> String {
    let read_somewhere = SOURCE_KINDS.iter().filter(|k| k.optional.contains(&REGION));
    list(read_somewhere.map(SourceKind::readable), ", or ")
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
another region, or in another account through that role{}.",
        REGION.key,
        ROLE_ARN.key,
        list(
            SOURCE_KINDS
                .iter()
                .filter(|k| k.wraps())
                .map(|k| format!(" (for {}:, the inner source)", k.cli_prefix)),
            ""
        )
    ));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let inside = kind.wraps(); // placed by its inner source
            assert_eq!(placed, kind.cli_prefix != "value" && !inside, "{kind:?}");
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
                FieldType::Source => FieldValue::Source(Box::new(Source::LoadBalancer {
                    name: "lb".into(),
                    at: Place::default(),
                })),
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
            "StackName + OutputKey, Cluster + Service, LoadBalancer, Value, or VpcLinkFor"
        );
        assert_eq!(
            cli_forms(),
            "stack:STACK/OUTPUTKEY, ecs:CLUSTER/SERVICE, lb:NAME_OR_ARN, value:LITERAL or \
vpclink-for:SOURCE"
        );
        assert_eq!(
            cli_help(),
            "  stack:STACK/OUTPUTKEY   an output of a CloudFormation stack (name or stack ARN)\n  \
ecs:CLUSTER/SERVICE     the load balancer in front of an ECS service\n  \
lb:NAME_OR_ARN          an ELBv2 load balancer by name or ARN, or a classic ELB by name\n  \
value:LITERAL           a literal value\n  \
vpclink-for:SOURCE      the id of the REST VPC link in front of the load balancer SOURCE names \
(stack:, ecs: or lb:)\n  \
A source other than a literal may end with ,Region=REGION and/or ,RoleArn=ROLE_ARN: read in \
another region, or in another account through that role (for vpclink-for:, the inner source)."
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
        assert_eq!(
            readable_wrappable_kinds(),
            "StackName + OutputKey, Cluster + Service, or LoadBalancer"
        );
        assert_eq!(by(&["VpcLinkFor", "Value"]), Some("value"));
        assert_eq!(by(&["VpcLinkFor", "LoadBalancer"]), Some("lb"));
        assert_eq!(by(&["VpcLinkFor"]), Some("vpclink-for"));
        let link = kind_of_cli_prefix("vpclink-for").unwrap();
        assert!(link.wraps());
        // The inner source's form is kept whole, commas and all, for the caller to parse.
        assert_eq!(
            link.cli_properties("lb:arn:aws:x/y,Region=eu-west-1"),
            Some(vec![(
                "VpcLinkFor",
                "lb:arn:aws:x/y,Region=eu-west-1".to_string()
            )])
        );
        assert_eq!(link.cli_properties(""), None);
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
