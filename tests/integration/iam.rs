//! The IAM policies of `template.yaml` (both functions) and `spoke.yaml` (the role the hub
//! assumes) against the requests the functions really make. Every flow of each function runs
//! through the real AWS adapters against moto, behind a recording proxy of its own (one per
//! function; fixtures go through the world's proxy, unrecorded). Each recorded request becomes
//! the IAM action it is authorized as and its resource ARN; requests signed with an assumed
//! role's keys are the spoke role's. Each policy must grant exactly those: every call allowed
//! (action and resource pattern), and every granted (action, resource) used by some call.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};
use serde_yaml::Value;
use stagewire::domain::SourceAccess;
use stagewire::resync;
use stagewire::Ports;
use stagewire_devkit::event_source;
use stagewire_devkit::fault_proxy::Record;
use stagewire_devkit::stack_resources::percent_decode as decode;
use stagewire_devkit::FaultProxy;

use crate::support::spoke::{
    role, B, B_REGION as OTHER_REGION, HUB_REGION, ROLE_NAME as SPOKE_ROLE,
};
use crate::support::*;

/// The access key of [`stagewire_devkit::moto::sdk_config`]: the functions' own role.
const OWN_KEY: &str = "AKIDSTAGEWIREDEVKIT";

// ---- requests to IAM actions ----------------------------------------------------------

/// One authorized request: action and resource ARN.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Call {
    action: String,
    resource: String,
}

/// A Query-protocol form body's parameters.
fn form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// What a recorded request is authorized as, in `account`.
fn calls_of(r: &Record, account: &str) -> Vec<Call> {
    let region = r.signer.as_ref().map(|s| s.region.clone()).unwrap();
    let call = |action: String, resource: String| Call { action, resource };
    let json = || serde_json::from_slice::<Json>(&r.body).unwrap_or(Json::Null);
    let table = |name: &str, index: Option<&str>| match index {
        Some(i) => format!("arn:aws:dynamodb:{region}:{account}:table/{name}/index/{i}"),
        None => format!("arn:aws:dynamodb:{region}:{account}:table/{name}"),
    };
    match r.service.as_str() {
        "apigateway" => {
            let (method, target) = r.target.split_once(' ').unwrap();
            let path = target.split('?').next().unwrap();
            let path = path.strip_prefix("/v2").unwrap_or(path);
            vec![call(
                format!("apigateway:{method}"),
                format!("arn:aws:apigateway:{region}::{}", decode(path)),
            )]
        }
        "cloudformation" => {
            let p = form(&r.body_text());
            let resource = match p.get("StackName") {
                Some(arn) if arn.starts_with("arn:") => arn.clone(),
                Some(name) => format!(
                    "arn:aws:cloudformation:{region}:{account}:stack/{name}/00000000-0000-0000-0000-000000000000"
                ),
                None => "*".into(),
            };
            vec![call(format!("cloudformation:{}", r.operation), resource)]
        }
        // Elastic Load Balancing's Describe* actions have no resource-level permissions.
        "elasticloadbalancing" => vec![call(
            format!("elasticloadbalancing:{}", r.operation),
            "*".into(),
        )],
        "sts" => {
            let p = form(&r.body_text());
            vec![call(
                format!("sts:{}", r.operation),
                p.get("RoleArn").cloned().unwrap_or_else(|| "*".into()),
            )]
        }
        "ecs" => {
            let body = json();
            let cluster = body["cluster"].as_str().unwrap_or("default");
            let cluster = cluster.rsplit('/').next().unwrap();
            body["services"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let s = s.as_str().unwrap();
                    let resource = if s.starts_with("arn:") {
                        s.to_string()
                    } else {
                        format!("arn:aws:ecs:{region}:{account}:service/{cluster}/{s}")
                    };
                    call(format!("ecs:{}", r.operation), resource)
                })
                .collect()
        }
        "dynamodb" => {
            let body = json();
            if r.operation == "TransactWriteItems" {
                let parts = [
                    ("Update", "UpdateItem"),
                    ("Delete", "DeleteItem"),
                    ("Put", "PutItem"),
                    ("ConditionCheck", "ConditionCheckItem"),
                ];
                return body["TransactItems"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|item| {
                        parts.iter().filter_map(move |(k, action)| {
                            item.get(*k).map(|p| (action, p["TableName"].clone()))
                        })
                    })
                    .map(|(action, t)| {
                        call(
                            format!("dynamodb:{action}"),
                            table(t.as_str().unwrap(), None),
                        )
                    })
                    .collect();
            }
            if let Some(items) = body["RequestItems"].as_object() {
                let action = match r.operation.as_str() {
                    "BatchGetItem" => "BatchGetItem",
                    _ => "BatchWriteItem",
                };
                return items
                    .keys()
                    .map(|t| call(format!("dynamodb:{action}"), table(t, None)))
                    .collect();
            }
            vec![call(
                format!("dynamodb:{}", r.operation),
                table(
                    body["TableName"].as_str().unwrap(),
                    body["IndexName"].as_str(),
                ),
            )]
        }
        "sqs" => {
            let body = json();
            let name = body["QueueUrl"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap();
            // SendMessageBatch is authorized as sqs:SendMessage (and so on for the batches).
            let action = r.operation.strip_suffix("Batch").unwrap_or(&r.operation);
            vec![call(
                format!("sqs:{action}"),
                format!("arn:aws:sqs:{region}:{account}:{name}"),
            )]
        }
        other => panic!("no IAM mapping for {other} {} ({})", r.operation, r.target),
    }
}

/// The calls a proxy recorded: `(own, assumed)`, by the keys that signed them.
fn recorded(proxy: &FaultProxy) -> (BTreeSet<Call>, BTreeSet<Call>) {
    let (mut own, mut assumed) = (BTreeSet::new(), BTreeSet::new());
    for r in proxy.records() {
        let signer = r.signer.as_ref().expect("every AWS request is signed");
        if signer.access_key == OWN_KEY {
            own.extend(calls_of(&r, ACCOUNT));
        } else {
            // The only role the hub assumes here is account B's spoke role.
            assumed.extend(calls_of(&r, B));
        }
    }
    (own, assumed)
}

// ---- the templates' policies ----------------------------------------------------------

/// What a template's placeholders stand for in this run.
struct Env {
    vars: BTreeMap<String, String>,
    conditions: BTreeMap<String, bool>,
}

impl Env {
    fn sub(&self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let end = rest[i..].find('}').unwrap() + i;
            let name = &rest[i + 2..end];
            out.push_str(
                self.vars
                    .get(name)
                    .unwrap_or_else(|| panic!("no value for ${{{name}}} in {s}")),
            );
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// A policy value (a string, a list, `!Sub`, `!GetAtt`, `!Ref`, `!If`) as its strings.
    fn eval(&self, v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Sequence(items) => items.iter().flat_map(|i| self.eval(i)).collect(),
            Value::Tagged(t) => {
                let tag = t.tag.to_string();
                match (tag.as_str(), &t.value) {
                    ("!Sub", Value::String(s)) => vec![self.sub(s)],
                    ("!GetAtt", Value::String(s)) | ("!Ref", Value::String(s)) => {
                        if s == "AWS::NoValue" {
                            return vec![];
                        }
                        vec![self
                            .vars
                            .get(s.as_str())
                            .cloned()
                            .unwrap_or_else(|| panic!("no value for {tag} {s}"))]
                    }
                    ("!If", Value::Sequence(p)) => {
                        let c = p[0].as_str().unwrap();
                        let branch = if *self
                            .conditions
                            .get(c)
                            .unwrap_or_else(|| panic!("no value for condition {c}"))
                        {
                            &p[1]
                        } else {
                            &p[2]
                        };
                        self.eval(branch)
                    }
                    other => panic!("cannot evaluate {other:?}"),
                }
            }
            other => panic!("cannot evaluate {other:?}"),
        }
    }
}

/// A statement: its Sid, actions and resource patterns.
#[derive(Debug, Clone, PartialEq)]
struct Grant {
    sid: String,
    actions: Vec<String>,
    resources: Vec<String>,
}

fn grants(statements: &Value, env: &Env) -> Vec<Grant> {
    statements
        .as_sequence()
        .unwrap()
        .iter()
        .map(|st| {
            assert_eq!(st["Effect"].as_str(), Some("Allow"));
            Grant {
                sid: st["Sid"].as_str().unwrap_or("(no Sid)").to_string(),
                actions: env.eval(&st["Action"]),
                resources: env.eval(&st["Resource"]),
            }
        })
        .collect()
}

/// IAM's pattern match: `*` any run of characters, `?` any one.
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// What is wrong with `grants` for `calls`: calls no grant allows, and granted (action,
/// resource) pairs no call used.
fn mismatches(who: &str, grants: &[Grant], calls: &BTreeSet<Call>) -> Vec<String> {
    let mut out = Vec::new();
    for c in calls {
        let allowed = grants.iter().any(|g| {
            g.actions.contains(&c.action) && g.resources.iter().any(|p| glob(p, &c.resource))
        });
        if !allowed {
            out.push(format!(
                "{who}: missing grant: {} on {}",
                c.action, c.resource
            ));
        }
    }
    for g in grants {
        for a in &g.actions {
            for p in &g.resources {
                if !calls.iter().any(|c| &c.action == a && glob(p, &c.resource)) {
                    out.push(format!(
                        "{who}: unused grant ({}): {a} on {p} (never called)",
                        g.sid
                    ));
                }
            }
        }
    }
    out
}

fn load(file: &str) -> Value {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A function's statements, evaluated once with the created table and once with
/// ExistingRegistryTable naming the same table: both give the same grants.
fn function_grants(function: &str, table: &str, reconcile_queue: &str) -> Vec<Grant> {
    let t = load("template.yaml");
    let policies = &t["Resources"][function]["Properties"]["Policies"];
    let statements = Value::Sequence(
        policies
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|p| p["Statement"].as_sequence().unwrap().clone())
            .collect(),
    );
    let table_arn = format!("arn:aws:dynamodb:{HUB_REGION}:{ACCOUNT}:table/{table}");
    let mut evaluated = Vec::new();
    for created in [true, false] {
        let mut vars: BTreeMap<String, String> = [
            ("AWS::Partition", "aws".to_string()),
            ("AWS::Region", HUB_REGION.into()),
            ("AWS::AccountId", ACCOUNT.into()),
            ("SpokeRoleName", SPOKE_ROLE.into()),
            ("ExistingRegistryTable", table.into()),
            (
                "ReconcileQueue.Arn",
                format!("arn:aws:sqs:{HUB_REGION}:{ACCOUNT}:{reconcile_queue}"),
            ),
            ("MemberOrganizationId", "o-exampleorgid".into()),
            (
                "ResyncFailureQueue.Arn",
                format!("arn:aws:sqs:{HUB_REGION}:{ACCOUNT}:stagewire-ResyncFailureQueue"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if created {
            vars.insert("RegistryTable.Arn".into(), table_arn.clone());
        }
        let env = Env {
            vars,
            conditions: [
                ("CreateRegistryTable".to_string(), created),
                ("HasMemberOrganization".to_string(), true),
            ]
            .into(),
        };
        evaluated.push(grants(&statements, &env));
    }
    assert_eq!(
        evaluated[0], evaluated[1],
        "{function}: ExistingRegistryTable grants other than the created table"
    );
    evaluated.remove(0)
}

fn spoke_grants() -> Vec<Grant> {
    let t = load("spoke.yaml");
    let role = &t["Resources"]["SourceReadRole"]["Properties"];
    let env = Env {
        vars: [
            ("AWS::Partition".to_string(), "aws".to_string()),
            ("AWS::AccountId".to_string(), B.to_string()),
        ]
        .into(),
        conditions: BTreeMap::new(),
    };
    role["Policies"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|p| grants(&p["PolicyDocument"]["Statement"], &env))
        .collect()
}

// ---- the functions' flows -------------------------------------------------------------

/// The sources the hub's functions read: its own account, and others through the spoke role.
fn spoke_sources() -> SourceAccess {
    SourceAccess {
        account: Some(ACCOUNT.into()),
        roles: vec![format!("arn:aws:iam::*:role/{SPOKE_ROLE}")],
    }
}

/// A function's world: a recording proxy of its own in front of moto, the hub's registry
/// table, ports under `Open` (the single-team account; the tag-based rule is exercised on its
/// own) reading sources through the spoke role.
async fn function_world(w: &World) -> World {
    World::builder()
        .table_of(w)
        .http_api_stages()
        .authorization(stagewire::domain::Authorization::Open)
        .sources(spoke_sources())
        .build()
        .await
}

/// Sources of every kind: here, in another region of this account, and in account B.
struct Sources {
    here: ElbStack,
    cluster: String,
    classic: String,
    far_stack: String,
    far_cluster: String,
    b_stack: ElbStack,
    b_cluster: String,
    /// A network load balancer with its REST VPC link.
    nlb_arn: String,
    /// A stack whose output `VpcLinkId` is the id of a v2 VPC link (read by id).
    link_stack: String,
}

async fn sources(w: &World) -> Sources {
    let here = w.elb_stack(&unique("IamHere")).await;
    let cluster = unique("iam");
    let classic = unique("classic");
    w.classic_elb(&classic).await;
    w.ecs_service(&cluster, "web", &[("helloworld", 80, &here.tg_arn)])
        .await;
    w.ecs_service(&cluster, "legacy", &[("helloworld", 80, &classic)])
        .await;
    let far = w.member(ACCOUNT, OTHER_REGION).await;
    let far_stack = far.elb_stack(&unique("IamFar")).await;
    let far_cluster = unique("far");
    far.ecs_service(
        &far_cluster,
        "web",
        &[("helloworld", 80, &far_stack.tg_arn)],
    )
    .await;
    let b = w.member(B, OTHER_REGION).await;
    let b_stack = b.elb_stack(&unique("IamB")).await;
    let b_cluster = unique("b");
    b.ecs_service(&b_cluster, "web", &[("helloworld", 80, &b_stack.tg_arn)])
        .await;
    let nlb = stagewire_devkit::private::private_nlb(
        &w.elbv2,
        &w.apigw,
        &stagewire_devkit::lbs::LocalLoadBalancers::new(),
        &unique("iam-nlb"),
        &here.vpc,
        &here.subnets,
    )
    .await
    .unwrap();
    let link_stack = unique("IamLink");
    w.cfn
        .create_stack()
        .stack_name(&link_stack)
        .template_body(link_template(&v2_link(w, &here).await))
        .send()
        .await
        .unwrap();
    Sources {
        nlb_arn: nlb.nlb.arn,
        link_stack,
        here,
        cluster,
        classic,
        far_stack: far_stack.name,
        far_cluster,
        b_stack,
        b_cluster,
    }
}

/// A new v2 VPC link in `net`'s subnets; its id.
async fn v2_link(w: &World, net: &ElbStack) -> String {
    let link = w
        .apigw2
        .create_vpc_link()
        .name(unique("iam-link"))
        .set_subnet_ids(Some(net.subnets.clone()))
        .send()
        .await
        .unwrap();
    link.vpc_link_id().unwrap().to_string()
}

/// A stack whose output `VpcLinkId` is `link`.
fn link_template(link: &str) -> String {
    json!({
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {"VpcLinkId": {"Value": link}},
    })
    .to_string()
}

fn every_source(s: &Sources) -> Json {
    let remote = |v: Json| {
        let mut v = v;
        v["Region"] = json!(OTHER_REGION);
        v["RoleArn"] = json!(role(B));
        v
    };
    json!({
        "fromStack": {"StackName": s.here.name, "OutputKey": "EcsElbDnsName"},
        "fromStackArn": {"StackName": s.here.stack_id, "OutputKey": "EcsElbDnsName"},
        "fromService": {"Cluster": s.cluster, "Service": "web"},
        "fromClassicService": {"Cluster": s.cluster, "Service": "legacy"},
        "fromLbName": {"LoadBalancer": s.here.lb_name},
        "fromLbArn": {"LoadBalancer": s.here.lb_arn},
        "fromClassic": {"LoadBalancer": s.classic},
        "banner": {"Value": "v1"},
        "linkHere": {"VpcLinkFor": {"LoadBalancer": s.nlb_arn}},
        "linkFromStack": {"StackName": s.link_stack, "OutputKey": "VpcLinkId"},
        "farStack": {"StackName": s.far_stack, "OutputKey": "EcsElbDnsName", "Region": OTHER_REGION},
        "farService": {"Cluster": s.far_cluster, "Service": "web", "Region": OTHER_REGION},
        "bStack": remote(json!({"StackName": s.b_stack.name, "OutputKey": "EcsElbDnsName"})),
        "bService": remote(json!({"Cluster": s.b_cluster, "Service": "web"})),
        "bLb": remote(json!({"LoadBalancer": s.b_stack.lb_name})),
    })
}

fn physical(r: &stagewire_devkit::Received) -> String {
    r.field("PhysicalResourceId").unwrap().to_string()
}

/// Every flow of the custom resource: create (every source kind, a stage it creates),
/// update (a new load balancer whose health is awaited), replacement, delete, the Delete of a
/// Create that never answered and that Create arriving late, a rename, HTTP API stages, and
/// the tag-based authorization.
async fn binding_flows(w: &World, s: &Sources, ports: &Ports) {
    let h = w.handler_over(ports.clone());
    let cfn = w.owning_stack().await;
    let api = w.rest_api().await;
    let all = json!({"RestApiId": api, "StageName": "prod", "Variables": every_source(s)});
    let created = cfn.send_create(&h, "All", all.clone()).await;
    assert_success(&created);
    let id = physical(&created);
    // A new load balancer with a registered target: the update waits for its health.
    let (_, _, tg) = w.new_alb(&s.here).await;
    w.register_target(&tg, "10.0.9.9").await;
    w.move_service(&s.cluster, "web", "helloworld", &tg).await;
    let mut moved = all.clone();
    moved["Variables"]["banner"] = json!({"Value": "v2"});
    let updated = cfn
        .send(&h, cfn.update("All", &id, moved.clone(), all.clone()))
        .await;
    assert_success(&updated);
    // A replacement (another stage), then CloudFormation deletes the old resource.
    let mut live = moved.clone();
    live["StageName"] = json!("live");
    let replaced = cfn
        .send(&h, cfn.update("All", &id, live.clone(), moved.clone()))
        .await;
    assert_success(&replaced);
    assert_success(&cfn.send(&h, cfn.delete("All", &id, moved)).await);
    assert_success(
        &cfn.send(&h, cfn.delete("All", &physical(&replaced), live))
            .await,
    );

    // HTTP API: created, updated, deleted.
    let http = w.http_api().await;
    let props = json!({"HttpApiId": http, "StageName": "prod", "Variables": {
        "fromStack": {"StackName": s.here.name, "OutputKey": "EcsElbDnsName"}}});
    let r = cfn.send_create(&h, "Http", props.clone()).await;
    assert_success(&r);
    let mut next = props.clone();
    next["Variables"]["banner"] = json!({"Value": "v1"});
    let u = cfn
        .send(&h, cfn.update("Http", &physical(&r), next.clone(), props))
        .await;
    assert_success(&u);
    assert_success(&cfn.send(&h, cfn.delete("Http", &physical(&u), next)).await);

    // The Delete of a Create that never answered (CloudFormation gave up on it and made up
    // a physical id), then that Create, late.
    let one = json!({"RestApiId": api, "StageName": "prod", "Variables": {"late": {"Value": "x"}}});
    let late = cfn.create("Gone", one.clone());
    cfn.give_up("Gone");
    let gone = format!("{}-Gone-ABC123DEF", cfn.stack_name());
    cfn.send(&h, cfn.delete("Gone", &gone, one)).await;
    cfn.send(&h, late).await;

    // A rename: the variable's holder is no longer in the stack's template.
    let named =
        json!({"RestApiId": api, "StageName": "prod", "Variables": {"color": {"Value": "blue"}}});
    assert_success(&cfn.send_create(&h, "Old", named.clone()).await);
    assert_success(&cfn.send_create(&h, "New", named).await);

    // The tag-based rule reads each API's tags.
    let mut tagged = ports.clone();
    tagged.authorization = stagewire::domain::Authorization::ApiTags;
    for stage in [
        stagewire::domain::StageRef::new(stagewire::domain::ApiKind::Rest, &api, "prod"),
        stagewire::domain::StageRef::new(stagewire::domain::ApiKind::Http, &http, "prod"),
    ] {
        let _ = stagewire::binding::authorize(&tagged, &cfn.stack_id, &stage).await;
    }
}

fn eventbridge(
    source: &str,
    detail_type: &str,
    account: &str,
    resources: Json,
    detail: Json,
) -> Json {
    json!({
        "version": "0", "id": unique("event"), "detail-type": detail_type, "source": source,
        "account": account, "time": "2026-11-25T12:00:00Z", "region": HUB_REGION,
        "resources": resources, "detail": detail
    })
}

fn elb_event(event_name: &str, params: Json) -> Json {
    eventbridge(
        "aws.elasticloadbalancing",
        "AWS API Call via CloudTrail",
        ACCOUNT,
        json!([]),
        json!({
            "eventVersion": "1.08", "eventTime": "2026-11-25T12:00:00Z",
            "eventSource": "elasticloadbalancing.amazonaws.com", "eventName": event_name,
            "awsRegion": HUB_REGION, "sourceIPAddress": "cloudformation.amazonaws.com",
            "userAgent": "cloudformation.amazonaws.com", "requestParameters": params,
            "responseElements": null, "requestID": unique("req"), "eventID": unique("ev"),
            "eventType": "AwsApiCall",
            "userIdentity": {"type": "AssumedRole", "accountId": ACCOUNT}
        }),
    )
}

fn ecs_event(cluster: &str, service: &str) -> Json {
    eventbridge(
        "aws.ecs",
        "ECS Deployment State Change",
        ACCOUNT,
        json!([format!(
            "arn:aws:ecs:{HUB_REGION}:{ACCOUNT}:service/{cluster}/{service}"
        )]),
        json!({"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED"}),
    )
}

/// An SQS event of the messages waiting in `url` (the event source mapping's part).
async fn sqs_batch(w: &World, url: &str, arn: &str) -> Option<Json> {
    let sqs = aws_sdk_sqs::Client::new(&w.sdk);
    let got = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(5)
        .send()
        .await
        .unwrap();
    let records: Vec<Json> = got
        .messages()
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id().unwrap(), "receiptHandle": m.receipt_handle().unwrap(),
                "body": m.body().unwrap(), "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {}, "md5OfBody": m.md5_of_body().unwrap_or_default(),
                "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": HUB_REGION
            })
        })
        .collect();
    for m in got.messages() {
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    (!records.is_empty()).then(|| json!({ "Records": records }))
}

/// Every trigger of the re-sync over bindings made by the (unrecorded) fixtures' handler:
/// stack status changes (here and forwarded from account B), a stack that ended (its
/// bindings released, the stages they created deleted), load balancers created and deleted,
/// an ECS deployment, the schedule planning units onto the work queue, and the workers.
async fn resync_flows(
    w: &World,
    s: &Sources,
    (ports, sdk): (&Ports, &aws_config::SdkConfig),
    queue: &event_source::Queues,
) {
    let h = w.handler();
    let cfn = w.owning_stack().await;
    let api = w.rest_api().await;
    let all = json!({"RestApiId": api, "StageName": "prod", "Variables": every_source(s)});
    assert_success(&cfn.send_create(&h, "All", all).await);
    let http = w.http_api().await;
    let props = json!({"HttpApiId": http, "StageName": "prod", "Variables": {
        "banner": {"Value": "v1"}}});
    w.proxy().play_http_api_stages();
    assert_success(&cfn.send_create(&h, "Http", props).await);

    // A new load balancer serving, the service moved to it, a hand-made change: every
    // trigger finds work.
    let (lb_arn, _, tg) = w.new_alb(&s.here).await;
    w.register_target(&tg, "10.0.8.8").await;
    w.move_service(&s.cluster, "web", "helloworld", &tg).await;
    w.set_var(&api, "prod", "banner", "by-hand").await;
    let b = w.member(B, OTHER_REGION).await;
    b.replace_elb_stack(&s.b_stack.name).await;
    // The stack output naming a v2 VPC link names a new one: the re-sync reads it by id.
    let relinked = w
        .cfn
        .update_stack()
        .stack_name(&s.link_stack)
        .template_body(link_template(&v2_link(w, &s.here).await))
        .send()
        .await
        .unwrap();
    let link_stack_id = relinked.stack_id().unwrap().to_string();
    let run = |event: Json| async move {
        let _ = resync::invoke(ports, event).await;
    };
    run(stack_event_of(&s.here.stack_id, ACCOUNT, "UPDATE_COMPLETE")).await;
    run(stack_event_of(
        &format!(
            "arn:aws:cloudformation:{OTHER_REGION}:{B}:stack/{}/x",
            s.b_stack.name
        ),
        B,
        "UPDATE_COMPLETE",
    ))
    .await;
    run(stack_event_of(&link_stack_id, ACCOUNT, "UPDATE_COMPLETE")).await;
    run(ecs_event(&s.cluster, "web")).await;
    let lb_name = lb_arn.split('/').nth(2).unwrap().to_string();
    run(elb_event("CreateLoadBalancer", json!({"name": lb_name}))).await;
    run(elb_event(
        "DeleteLoadBalancer",
        json!({"loadBalancerArn": lb_arn}),
    ))
    .await;
    run(elb_event(
        "DeleteLoadBalancer",
        json!({"loadBalancerName": s.classic}),
    ))
    .await;
    // The schedule plans units onto the work queue; the workers take them.
    let mut queued = ports.clone();
    queued.queue = Some(Arc::new(stagewire::aws::SqsWorkQueue::new(
        aws_sdk_sqs::Client::new(sdk),
        queue.url.clone(),
    )));
    let schedule = eventbridge(
        "aws.events",
        "Scheduled Event",
        ACCOUNT,
        json!([]),
        json!({}),
    );
    let _ = resync::invoke(&queued, schedule).await;
    while let Some(batch) = sqs_batch(w, &queue.url, &queue.arn).await {
        let _ = resync::invoke(&queued, batch).await;
    }
    // The tag-based rule: the re-sync checks each binding's right to its API.
    let mut tagged = ports.clone();
    tagged.authorization = stagewire::domain::Authorization::ApiTags;
    let _ = resync::invoke(
        &tagged,
        stack_event_of(&s.here.stack_id, ACCOUNT, "UPDATE_COMPLETE"),
    )
    .await;
    // The owner's stack ends: its bindings are released, the stages they created deleted.
    w.delete_stack(&cfn.stack_name()).await;
    run(stack_event_of(&cfn.stack_id, ACCOUNT, "DELETE_COMPLETE")).await;
}

fn stack_event_of(stack_id: &str, account: &str, status: &str) -> Json {
    stagewire_devkit::seed::stack_status_event(account, HUB_REGION, stack_id, status)
}

#[tokio::test]
async fn each_policy_grants_exactly_the_calls_its_function_makes() {
    // The fixtures' own handler (which makes the re-sync's bindings) trusts the spoke role too.
    let w = World::builder().sources(spoke_sources()).build().await;
    let s = sources(&w).await;

    let binding_world = function_world(&w).await;
    binding_flows(&w, &s, &binding_world.ports).await;

    let resync_world = function_world(&w).await;
    let (resync_ports, resync_sdk) = (&resync_world.ports, &resync_world.sdk);
    let sqs = aws_sdk_sqs::Client::new(&w.sdk);
    let queue = event_source::create_queues(&sqs, &unique("units"), Duration::from_secs(30), 3)
        .await
        .unwrap();
    resync_flows(&w, &s, (resync_ports, resync_sdk), &queue).await;

    let queue_name = queue.url.rsplit('/').next().unwrap().to_string();
    let (binding, binding_remote) = recorded(binding_world.proxy());
    let (resync, resync_remote) = recorded(resync_world.proxy());
    let mut problems = Vec::new();
    problems.extend(mismatches(
        "StageBindingFunction",
        &function_grants("StageBindingFunction", &w.table, &queue_name),
        &binding,
    ));
    problems.extend(mismatches(
        "StageResyncFunction",
        &function_grants("StageResyncFunction", &w.table, &queue_name),
        &resync,
    ));
    let remote: BTreeSet<Call> = binding_remote.union(&resync_remote).cloned().collect();
    assert!(!binding_remote.is_empty() && !resync_remote.is_empty());
    problems.extend(mismatches("spoke SourceReadRole", &spoke_grants(), &remote));
    assert!(
        problems.is_empty(),
        "the policies differ from the recorded calls:\n{}\n\nstage-binding called:\n{}\n\nstage-resync called:\n{}\n\nthrough the spoke role:\n{}",
        problems.join("\n"),
        show(&binding),
        show(&resync),
        show(&remote)
    );
}

fn show(calls: &BTreeSet<Call>) -> String {
    calls
        .iter()
        .map(|c| format!("  {} {}", c.action, c.resource))
        .collect::<Vec<_>>()
        .join("\n")
}
