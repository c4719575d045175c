//! The registry item: its attributes, declared once in [`Attr`], and everything derived from
//! them: [`encode`], [`decode`], the conditional claim's update ([`claim`]) and the re-sync's
//! record ([`sync`]).
//!
//! One item per bound stage variable: `pk = STAGE#<kind>#<api>#<stage>`, `sk = VAR#<name>`.
//! Expressions name every attribute through a `#name` placeholder (`source` and `value` are
//! DynamoDB reserved words) and every value through `:name`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::{ApiKind, Owner, SourceKey, StageRef};
use crate::ports::{Record, RegistryError, SyncUpdate};

/// An item as the SDK holds it.
pub type Item = HashMap<String, AttributeValue>;

/// Every attribute of a registry item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attr {
    /// Partition key: `STAGE#<kind>#<api>#<stage>`.
    Pk,
    /// Sort key: `VAR#<name>`.
    Sk,
    /// [`Owner::key`]; the `by-owner` index.
    OwnerKey,
    StackId,
    LogicalId,
    PhysicalId,
    /// [`crate::domain::Source::key`]; the `by-source` index.
    SourceKey,
    /// The source as JSON.
    Source,
    ApiKind,
    ApiId,
    StageName,
    VarName,
    CreatedStage,
    /// Optimistic-concurrency counter.
    Version,
    Value,
    WrittenAt,
    /// The load balancer (`lb#NAME`) or VPC link (`vpclink#ID`) the value points at; the
    /// `by-via` index.
    ViaKey,
    LastError,
    CheckedAt,
}

/// What a claim does with an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnClaim {
    /// Part of the key: never updated.
    Key,
    /// Always written.
    Set,
    /// Written when the record has it, removed otherwise.
    SetOrRemove,
    /// Written when the record has it, left as it is otherwise (the re-sync writes it).
    SetOrKeep,
    /// Counted up by one.
    Count,
}

impl Attr {
    /// Every attribute, in the order items are written.
    pub const ALL: [Attr; 19] = [
        Attr::Pk,
        Attr::Sk,
        Attr::OwnerKey,
        Attr::StackId,
        Attr::LogicalId,
        Attr::PhysicalId,
        Attr::SourceKey,
        Attr::Source,
        Attr::ApiKind,
        Attr::ApiId,
        Attr::StageName,
        Attr::VarName,
        Attr::CreatedStage,
        Attr::Version,
        Attr::Value,
        Attr::WrittenAt,
        Attr::ViaKey,
        Attr::LastError,
        Attr::CheckedAt,
    ];

    /// The attribute's name in the table.
    pub const fn name(self) -> &'static str {
        match self {
            Attr::Pk => "pk",
            Attr::Sk => "sk",
            Attr::OwnerKey => "owner_key",
            Attr::StackId => "stack_id",
            Attr::LogicalId => "logical_id",
            Attr::PhysicalId => "physical_id",
            Attr::SourceKey => "source_key",
            Attr::Source => "source",
            Attr::ApiKind => "api_kind",
            Attr::ApiId => "api_id",
            Attr::StageName => "stage_name",
            Attr::VarName => "var_name",
            Attr::CreatedStage => "created_stage",
            Attr::Version => "version",
            Attr::Value => "value",
            Attr::WrittenAt => "written_at",
            Attr::ViaKey => "via_key",
            Attr::LastError => "last_error",
            Attr::CheckedAt => "checked_at",
        }
    }

    const fn on_claim(self) -> OnClaim {
        match self {
            Attr::Pk | Attr::Sk => OnClaim::Key,
            Attr::OwnerKey
            | Attr::StackId
            | Attr::LogicalId
            | Attr::PhysicalId
            | Attr::SourceKey
            | Attr::Source
            | Attr::ApiKind
            | Attr::ApiId
            | Attr::StageName
            | Attr::VarName
            | Attr::CreatedStage => OnClaim::Set,
            Attr::Version => OnClaim::Count,
            Attr::Value | Attr::WrittenAt | Attr::ViaKey | Attr::LastError => OnClaim::SetOrRemove,
            Attr::CheckedAt => OnClaim::SetOrKeep,
        }
    }

    /// The attribute's `#name` placeholder in expressions.
    pub fn placeholder(self) -> String {
        format!("#{}", self.name())
    }
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn stage_pk(stage: &StageRef) -> String {
    format!(
        "STAGE#{}#{}#{}",
        stage.kind.as_str(),
        stage.api_id,
        stage.stage
    )
}

fn var_sk(variable: &str) -> String {
    format!("VAR#{variable}")
}

/// The stage a record's partition key names (`STAGE#<kind>#<api>#<stage>`; an API id and a
/// stage name hold no `#`).
pub fn parse_stage_pk(pk: &str) -> Option<StageRef> {
    let mut parts = pk.strip_prefix("STAGE#")?.splitn(3, '#');
    let kind = ApiKind::parse(parts.next()?)?;
    Some(StageRef::new(kind, parts.next()?, parts.next()?))
}

/// The key of a stage variable's item.
pub fn key(stage: &StageRef, variable: &str) -> Item {
    HashMap::from([
        (Attr::Pk.name().to_string(), s(stage_pk(stage))),
        (Attr::Sk.name().to_string(), s(var_sk(variable))),
    ])
}

/// The full item of a record, as [`crate::ports::Registry::claim`] leaves it (for bulk loads).
pub fn encode(r: &Record) -> Item {
    let mut item = key(&r.stage, &r.variable);
    let mut put = |a: Attr, v: AttributeValue| {
        item.insert(a.name().to_string(), v);
    };
    put(Attr::OwnerKey, s(r.owner.key()));
    put(Attr::StackId, s(&r.owner.stack_id));
    put(Attr::LogicalId, s(&r.owner.logical_id));
    put(Attr::PhysicalId, s(&r.owner.physical_id));
    put(Attr::SourceKey, s(r.source.key().to_string()));
    put(
        Attr::Source,
        // A source is strings and maps of strings: serialising it cannot fail.
        s(serde_json::to_string(&r.source).expect("a source serialises to JSON")),
    );
    put(Attr::ApiKind, s(r.stage.kind.as_str()));
    put(Attr::ApiId, s(&r.stage.api_id));
    put(Attr::StageName, s(&r.stage.stage));
    put(Attr::VarName, s(&r.variable));
    put(Attr::CreatedStage, AttributeValue::Bool(r.created_stage));
    put(Attr::Version, n(r.version.max(1)));
    if let Some(v) = &r.value {
        put(Attr::Value, s(v));
    }
    if let Some(at) = r.written_at {
        put(Attr::WrittenAt, n(at));
    }
    if let Some(via) = &r.via {
        put(Attr::ViaKey, s(via.to_string()));
    }
    if let Some(e) = &r.last_error {
        put(Attr::LastError, s(e));
    }
    if let Some(at) = r.checked_at {
        put(Attr::CheckedAt, n(at));
    }
    item
}

fn get_s(item: &Item, a: Attr) -> Option<&str> {
    item.get(a.name())
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Item, a: Attr) -> Option<i64> {
    item.get(a.name())
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// The item's version: every item stagewire writes has one, counted from 1.
fn version(item: &Item) -> Option<u64> {
    get_n(item, Attr::Version).and_then(|v| u64::try_from(v).ok())
}

/// The record an item holds.
pub fn decode(item: &Item) -> Result<Record, RegistryError> {
    let pk = get_s(item, Attr::Pk).unwrap_or("?");
    let corrupt = |reason: &str| RegistryError::Corrupt {
        key: format!("{pk}/{}", get_s(item, Attr::Sk).unwrap_or("?")),
        reason: reason.to_string(),
    };
    let field = |a: Attr| get_s(item, a).ok_or_else(|| corrupt(a.name()));
    let kind = ApiKind::parse(field(Attr::ApiKind)?).ok_or_else(|| corrupt("api_kind"))?;
    let source =
        serde_json::from_str(field(Attr::Source)?).map_err(|e| corrupt(&format!("source: {e}")))?;
    let via = get_s(item, Attr::ViaKey)
        .map(str::parse::<SourceKey>)
        .transpose()
        .map_err(|e| corrupt(&format!("via_key: {e}")))?;
    Ok(Record {
        stage: StageRef::new(kind, field(Attr::ApiId)?, field(Attr::StageName)?),
        variable: field(Attr::VarName)?.to_string(),
        owner: Owner {
            stack_id: field(Attr::StackId)?.to_string(),
            logical_id: field(Attr::LogicalId)?.to_string(),
            physical_id: field(Attr::PhysicalId)?.to_string(),
        },
        source,
        value: get_s(item, Attr::Value).map(str::to_owned),
        written_at: get_n(item, Attr::WrittenAt),
        via,
        created_stage: item
            .get(Attr::CreatedStage.name())
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        last_error: get_s(item, Attr::LastError).map(str::to_owned),
        checked_at: get_n(item, Attr::CheckedAt),
        version: version(item).ok_or_else(|| corrupt("version: missing or not a whole number"))?,
    })
}

/// An update expression with the names and values it uses (DynamoDB refuses unused ones).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateParts {
    set: Vec<String>,
    remove: Vec<String>,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl UpdateParts {
    /// `#name`, registered.
    pub fn name(&mut self, a: Attr) -> String {
        let p = a.placeholder();
        self.names.insert(p.clone(), a.name().to_string());
        p
    }

    /// `:label`, bound to `v`.
    pub fn value(&mut self, label: &str, v: AttributeValue) -> String {
        let p = format!(":{label}");
        self.values.insert(p.clone(), v);
        p
    }

    /// `SET #a = :a`.
    fn set(&mut self, a: Attr, v: AttributeValue) {
        let name = self.name(a);
        let value = self.value(a.name(), v);
        self.set.push(format!("{name} = {value}"));
    }

    /// `REMOVE #a`.
    fn remove(&mut self, a: Attr) {
        let name = self.name(a);
        self.remove.push(name);
    }

    /// `SET #a = #a + :one` (from `base` when the item has none yet, if given).
    fn count(&mut self, a: Attr, base: Option<u64>) {
        let name = self.name(a);
        let one = self.value("one", n(1));
        let from = match base {
            Some(base) => {
                let base = self.value("base", n(base));
                format!("if_not_exists({name}, {base})")
            }
            None => name.clone(),
        };
        self.set.push(format!("{name} = {from} + {one}"));
    }

    /// `SET ... REMOVE ...`.
    pub fn expression(&self) -> String {
        let mut expr = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        expr
    }
}

/// The update that claims a record's variable: every attribute [`encode`] writes (the version
/// counted up instead), optional ones it leaves out removed, except those the re-sync keeps.
pub fn claim(r: &Record) -> UpdateParts {
    let mut item = encode(r);
    let mut parts = UpdateParts::default();
    for a in Attr::ALL {
        match (a.on_claim(), item.remove(a.name())) {
            (OnClaim::Key, _) => {}
            (OnClaim::Count, _) => parts.count(a, Some(r.version)),
            (OnClaim::Set | OnClaim::SetOrRemove | OnClaim::SetOrKeep, Some(v)) => parts.set(a, v),
            (OnClaim::SetOrRemove, None) => parts.remove(a),
            (OnClaim::Set | OnClaim::SetOrKeep, None) => {}
        }
    }
    parts
}

/// The condition of a claim: the item is new, or already the same owner's, or held by the
/// owner it may take over.
pub fn claim_condition(r: &Record, takeover: Option<&str>, parts: &mut UpdateParts) -> String {
    let pk = parts.name(Attr::Pk);
    let owner = parts.name(Attr::OwnerKey);
    let owner_value = parts.value(Attr::OwnerKey.name(), s(r.owner.key()));
    let mut condition = format!("attribute_not_exists({pk}) OR {owner} = {owner_value}");
    if let Some(from) = takeover {
        let from = parts.value("takeover", s(from));
        condition.push_str(&format!(" OR {owner} = {from}"));
    }
    condition
}

/// The cancellation marker of an owner's Creates: one item per owner, beside the records.
pub mod marker {
    use super::{n, s, Attr, Item};

    /// When CloudFormation gave up on the owner's Create (epoch milliseconds).
    pub const CANCELLED_AT: &str = "cancelled_at";
    /// When DynamoDB may drop the marker (epoch seconds; the table's TTL attribute).
    pub const EXPIRES_AT: &str = "expires_at";
    /// How long a marker is kept: far longer than any Create runs.
    pub const KEEP_SECONDS: i64 = 86_400;

    /// The marker's key.
    pub fn key(owner_key: &str) -> Item {
        Item::from([
            (Attr::Pk.name().to_string(), s(format!("OWNER#{owner_key}"))),
            (Attr::Sk.name().to_string(), s("CANCELLED")),
        ])
    }

    /// `SET cancelled_at = :at, expires_at = :expires`, for `at_ms`.
    pub fn values(at_ms: i64) -> [(&'static str, aws_sdk_dynamodb::types::AttributeValue); 2] {
        [
            (":at", n(at_ms)),
            (":expires", n(at_ms / 1000 + KEEP_SECONDS)),
        ]
    }
}

/// Whether an item is a registry record (not a marker).
pub fn is_record(item: &Item) -> bool {
    item.get(Attr::Sk.name())
        .and_then(|v| v.as_s().ok())
        .is_some_and(|sk| sk.starts_with("VAR#"))
}

/// The update that records a re-sync's outcome, and its condition (the version unchanged).
pub fn sync(record: &Record, update: &SyncUpdate) -> (UpdateParts, String) {
    let mut parts = UpdateParts::default();
    parts.set(Attr::CheckedAt, n(update.at));
    parts.count(Attr::Version, None);
    if let Some(v) = &update.value {
        parts.set(Attr::Value, s(v));
        parts.set(Attr::WrittenAt, n(update.at));
    }
    if let Some(via) = &update.via {
        parts.set(Attr::ViaKey, s(via.to_string()));
    }
    match &update.error {
        Some(e) => parts.set(Attr::LastError, s(e)),
        None => parts.remove(Attr::LastError),
    }
    let version = parts.name(Attr::Version);
    let expected = parts.value("expected_version", n(record.version));
    (parts, format!("{version} = {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Source;

    fn record() -> Record {
        let source = Source::EcsService {
            cluster: "prod".into(),
            service: "helloworld".into(),
            container_name: Some("web".into()),
            container_port: Some(80),
            at: Default::default(),
        };
        let stage = StageRef::new(ApiKind::Rest, "abc123", "prod");
        Record {
            owner: Owner {
                stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/S/1".into(),
                logical_id: "Binding".into(),
                physical_id: "stagewire:rest:abc123:prod:Binding".into(),
            },
            ..crate::memory::record(stage, "helloworldElb", source)
        }
    }

    fn full() -> Record {
        Record {
            value: Some("my-alb-1.us-east-1.elb.amazonaws.com".into()),
            written_at: Some(1_700_000_000_000),
            via: Some(SourceKey::LoadBalancer("my-alb".into())),
            created_stage: true,
            last_error: Some("cannot resolve".into()),
            checked_at: Some(1_700_000_000_500),
            version: 7,
            ..record()
        }
    }

    #[test]
    fn records_round_trip() {
        let mut cases = vec![record(), full()];
        // Each optional field alone.
        let f = full();
        let bare = record();
        cases.push(Record {
            value: f.value.clone(),
            ..bare.clone()
        });
        cases.push(Record {
            written_at: f.written_at,
            ..bare.clone()
        });
        cases.push(Record {
            via: f.via.clone(),
            ..bare.clone()
        });
        cases.push(Record {
            last_error: f.last_error.clone(),
            ..bare.clone()
        });
        cases.push(Record {
            checked_at: f.checked_at,
            ..bare.clone()
        });
        cases.push(Record {
            source: Source::Literal { value: "v2".into() },
            stage: StageRef::new(ApiKind::Http, "h77", "dev"),
            ..bare.clone()
        });
        for r in cases {
            assert_eq!(decode(&encode(&r)).unwrap(), r);
        }
        // Version 0 (a record not yet written) is stored as 1, as a claim would count it.
        let new = Record {
            version: 0,
            ..record()
        };
        assert_eq!(decode(&encode(&new)).unwrap().version, 1);
    }

    #[test]
    fn an_item_without_a_whole_version_is_corrupt_and_named() {
        for version in [None, Some("-1"), Some("1.5")] {
            let mut item = encode(&record());
            match version {
                None => item.remove("version"),
                Some(v) => item.insert("version".into(), AttributeValue::N(v.into())),
            };
            let err = decode(&item).unwrap_err();
            assert!(
                matches!(&err, RegistryError::Corrupt { key, reason }
                    if key.starts_with("STAGE#rest#") && reason.starts_with("version")),
                "{version:?}: {err}"
            );
        }
    }

    #[test]
    fn the_stored_layout_is_stable() {
        let item = encode(&full());
        let text = |name: &str| item[name].as_s().unwrap().clone();
        assert_eq!(text("pk"), "STAGE#rest#abc123#prod");
        assert_eq!(text("sk"), "VAR#helloworldElb");
        assert_eq!(text("source_key"), "ecs#prod/helloworld");
        assert_eq!(text("via_key"), "lb#my-alb");
        assert_eq!(
            text("owner_key"),
            "arn:aws:cloudformation:us-east-1:123456789012:stack/S/1#Binding"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text("source")).unwrap(),
            serde_json::json!({"kind": "ecs_service", "cluster": "prod", "service": "helloworld",
                "container_name": "web", "container_port": 80})
        );
        let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
        names.sort();
        let mut all: Vec<&str> = Attr::ALL.iter().map(|a| a.name()).collect();
        all.sort();
        assert_eq!(names, all, "the full record writes every attribute");
    }

    #[test]
    fn unreadable_items_name_the_attribute() {
        let mut item = encode(&full());
        item.insert("via_key".into(), s("nonsense"));
        let err = decode(&item).unwrap_err().to_string();
        assert!(
            err.contains("via_key") && err.contains("VAR#helloworldElb"),
            "{err}"
        );
        item.insert("via_key".into(), s("lb#my-alb"));
        assert!(decode(&item).is_ok());
        item.insert("via_key".into(), s("vpclink#a1b2c3"));
        assert_eq!(
            decode(&item).unwrap().via,
            Some(SourceKey::VpcLink("a1b2c3".into()))
        );
        item.remove("api_id");
        assert!(decode(&item).unwrap_err().to_string().contains("api_id"));
    }

    /// The attribute names an expression refers to through its placeholders.
    fn named(parts: &UpdateParts, expr: &str) -> Vec<String> {
        let mut out: Vec<String> = parts
            .names
            .iter()
            .filter(|(p, _)| {
                expr.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '#'))
                    .any(|w| w == p.as_str())
            })
            .map(|(_, n)| n.clone())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn the_claim_writes_every_attribute_encode_writes() {
        let r = full();
        let parts = claim(&r);
        let expr = parts.expression();
        let mut written: Vec<String> = encode(&r)
            .into_keys()
            .filter(|k| k != "pk" && k != "sk")
            .collect();
        written.sort();
        assert_eq!(named(&parts, &expr), written, "{expr}");
        assert!(!expr.contains("REMOVE"), "{expr}");
        // Every name and value is used, and values are the encoded ones.
        for p in parts.names.keys().chain(parts.values.keys()) {
            assert!(expr.contains(p.as_str()), "{p} unused in {expr}");
        }
        assert_eq!(parts.values[":value"], encode(&r)["value"]);
        // A new item counts from the claim's base, never from an old item's number.
        assert!(expr.contains("#version = if_not_exists(#version, :base) + :one"));
        assert_eq!(parts.values[":base"], n(r.version));
    }

    #[test]
    fn the_claim_removes_what_the_record_lacks_but_keeps_the_check_time() {
        let r = record();
        let mut parts = claim(&r);
        let expr = parts.expression();
        let (set, remove) = expr.split_once(" REMOVE ").unwrap();
        let mut removed: Vec<&str> = remove.split(", ").collect();
        removed.sort();
        assert_eq!(
            removed,
            ["#last_error", "#value", "#via_key", "#written_at"],
            "{expr}"
        );
        assert!(!expr.contains("checked_at"), "{expr}");
        for a in [
            Attr::OwnerKey,
            Attr::Source,
            Attr::CreatedStage,
            Attr::Version,
        ] {
            assert!(set.contains(&a.placeholder()), "{a:?} in {set}");
        }
        let condition = claim_condition(&r, None, &mut parts);
        assert_eq!(
            condition,
            "attribute_not_exists(#pk) OR #owner_key = :owner_key"
        );
        assert_eq!(parts.values[":owner_key"], s(r.owner.key()));
    }

    #[test]
    fn the_sync_update_is_conditional_on_the_version() {
        let r = full();
        let update = SyncUpdate {
            value: Some("new.elb.amazonaws.com".into()),
            via: Some(SourceKey::LoadBalancer("new".into())),
            error: None,
            at: 5,
        };
        let (parts, condition) = sync(&r, &update);
        let expr = parts.expression();
        assert_eq!(condition, "#version = :expected_version");
        assert_eq!(parts.values[":expected_version"], n(7));
        assert_eq!(parts.values[":via_key"], s("lb#new"));
        assert!(expr.ends_with(" REMOVE #last_error"), "{expr}");
        assert!(expr.contains("#version = #version + :one"), "{expr}");
        for p in parts.names.keys().chain(parts.values.keys()) {
            assert!(
                expr.contains(p.as_str()) || condition.contains(p.as_str()),
                "{p} unused"
            );
        }
        let (parts, _) = sync(
            &r,
            &SyncUpdate {
                value: None,
                via: None,
                error: Some("gone".into()),
                at: 6,
            },
        );
        let expr = parts.expression();
        assert!(
            !expr.contains("REMOVE") && !expr.contains("#value"),
            "{expr}"
        );
        assert!(expr.contains("#last_error = :last_error"), "{expr}");
    }

    #[test]
    fn the_template_indexes_use_declared_attributes() {
        let template: serde_yaml::Value =
            serde_yaml::from_str(include_str!("../../../template.yaml")).unwrap_or_else(|e| {
                panic!("template.yaml: {e}");
            });
        let resources = template["Resources"].as_mapping().unwrap();
        let table = resources
            .values()
            .find(|r| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
            .unwrap();
        let defined = table["Properties"]["AttributeDefinitions"]
            .as_sequence()
            .unwrap();
        assert!(!defined.is_empty());
        for d in defined {
            let name = d["AttributeName"].as_str().unwrap();
            assert!(
                Attr::ALL.iter().any(|a| a.name() == name),
                "{name} is not a declared attribute"
            );
        }
    }
}
