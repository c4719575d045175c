//! Tests against a moto server: the SDK configuration, the fault proxy and the registry table.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{BillingMode, KeyType, ProjectionType};
use stagewire_devkit::moto::{self, MotoServer};
use stagewire_devkit::{create_table_from_template, sdk_config, Fault, FaultProxy, Rule};

async fn dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(endpoint).await)
}

#[tokio::test]
async fn own_server_starts_resets_and_stops() {
    let server = MotoServer::start().await.unwrap();
    let endpoint = server.endpoint();
    assert!(endpoint.starts_with("http://127.0.0.1:"));
    let client = dynamodb(&endpoint).await;
    let fixture = write_fixture("reset");
    create_table_from_template(&client, "to-be-reset", &fixture)
        .await
        .unwrap();
    assert_eq!(
        client
            .list_tables()
            .send()
            .await
            .unwrap()
            .table_names()
            .len(),
        1
    );
    server.reset().await.unwrap();
    assert!(client
        .list_tables()
        .send()
        .await
        .unwrap()
        .table_names()
        .is_empty());
    let pid = server.pid().unwrap();
    drop(server);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[tokio::test]
async fn proxy_counts_and_faults_dynamodb() {
    let moto = moto::shared().await;
    let proxy = FaultProxy::start(&moto.endpoint()).await.unwrap();
    let client = dynamodb(&proxy.endpoint()).await;

    client.list_tables().send().await.unwrap();
    assert_eq!(proxy.count("dynamodb", "ListTables"), 1);
    assert_eq!(proxy.total(), 1);

    // Two throttles: the third attempt gets through.
    proxy.add_rule(
        Rule::new(Fault::Throttle { retry_after: None })
            .service("dynamodb")
            .operation("List")
            .times(2),
    );
    client.list_tables().send().await.unwrap();
    assert_eq!(proxy.count("dynamodb", "ListTables"), 4);
    assert_eq!(proxy.injected(), 2);
    assert_eq!(proxy.rules()[0].remaining, Some(0));

    // Three throttles exhaust the three attempts; the SDK sees the throttling error.
    proxy.clear_rules();
    proxy.reset_counts();
    proxy.add_rule(
        Rule::new(Fault::Throttle {
            retry_after: Some(1),
        })
        .times(3),
    );
    let err = client.list_tables().send().await.unwrap_err();
    assert_eq!(err.code(), Some("TooManyRequestsException"), "{err:?}");
    assert_eq!(proxy.total(), 3);

    // A rule for another service or operation does not apply.
    proxy.clear_rules();
    proxy.add_rule(Rule::new(Fault::Status(500)).service("apigateway"));
    proxy.add_rule(Rule::new(Fault::Status(500)).operation("Query"));
    client.list_tables().send().await.unwrap();

    // A server error, then a reset, are each retried.
    proxy.clear_rules();
    proxy.reset_counts();
    proxy.add_rule(Rule::new(Fault::Status(503)).times(1));
    proxy.add_rule(Rule::new(Fault::Reset).times(1));
    client.list_tables().send().await.unwrap();
    assert_eq!(proxy.total(), 3);
    assert_eq!(proxy.injected(), 2);
    let status_err = {
        proxy.add_rule(Rule::new(Fault::Status(500)).times(3));
        client.list_tables().send().await.unwrap_err()
    };
    assert_eq!(
        status_err.raw_response().map(|r| r.status().as_u16()),
        Some(500)
    );

    // A delay, then forwarding.
    proxy.clear_rules();
    proxy.add_rule(Rule::new(Fault::Delay(Duration::from_millis(300))).times(1));
    let started = Instant::now();
    client.list_tables().send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));

    assert!(proxy.max_rate_per_sec("dynamodb") >= 2);
    assert_eq!(proxy.max_rate_per_sec("elasticloadbalancing"), 0);
}

/// Throttle the next `times` calls to `service`, with `Retry-After` when given.
fn throttle(proxy: &FaultProxy, service: &str, retry_after: Option<u32>, times: u64) {
    proxy.add_rule(
        Rule::new(Fault::Throttle { retry_after })
            .service(service)
            .times(times),
    );
}

#[tokio::test]
async fn proxy_classifies_query_and_rest_protocols() {
    let moto = moto::shared().await;
    let proxy = FaultProxy::start(&moto.endpoint()).await.unwrap();
    let config = sdk_config(&proxy.endpoint()).await;

    let cfn = aws_sdk_cloudformation::Client::new(&config);
    throttle(&proxy, "cloudformation", None, 1);
    cfn.list_stacks().send().await.unwrap();
    assert_eq!(proxy.count("cloudformation", "ListStacks"), 2);
    throttle(&proxy, "cloudformation", None, 3);
    let err = cfn.list_stacks().send().await.unwrap_err();
    assert_eq!(
        aws_sdk_cloudformation::error::ProvideErrorMetadata::code(&err),
        Some("Throttling")
    );

    let apigw = aws_sdk_apigateway::Client::new(&config);
    apigw.get_rest_apis().send().await.unwrap();
    assert_eq!(proxy.count("apigateway", "GET /restapis"), 1);
    throttle(&proxy, "apigateway", Some(1), 3);
    let err = apigw.get_rest_apis().send().await.unwrap_err();
    assert_eq!(
        aws_sdk_apigateway::error::ProvideErrorMetadata::code(&err),
        Some("TooManyRequestsException")
    );
    assert_eq!(proxy.count("apigateway", "GET /restapis"), 4);

    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    elb.describe_load_balancers().send().await.unwrap();
    assert_eq!(
        proxy.count("elasticloadbalancing", "DescribeLoadBalancers"),
        1
    );
}

#[tokio::test]
async fn proxy_draws_are_reproducible() {
    let moto = moto::shared().await;
    let pattern = |seed| async move {
        let proxy = FaultProxy::start_with_seed(&moto.endpoint(), seed)
            .await
            .unwrap();
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk_config(&proxy.endpoint()).await)
                .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
                .build(),
        );
        proxy.add_rule(Rule::new(Fault::Status(500)).probability(0.5));
        let mut outcomes = Vec::new();
        for _ in 0..16 {
            outcomes.push(client.list_tables().send().await.is_ok());
        }
        outcomes
    };
    let a = pattern(7).await;
    assert_eq!(a, pattern(7).await);
    assert!(a.contains(&true) && a.contains(&false), "{a:?}");
}

const FIXTURE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
Resources:
  StageBindingFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Environment:
        Variables:
          STAGEWIRE_TABLE: !Ref RegistryTable
      Policies:
        - DynamoDBCrudPolicy:
            TableName: !Ref RegistryTable
  RegistryTable:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-registry"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - { AttributeName: pk, AttributeType: S }
        - { AttributeName: sk, AttributeType: S }
        - { AttributeName: source_key, AttributeType: S }
        - { AttributeName: owner_key, AttributeType: S }
        - { AttributeName: via_key, AttributeType: S }
        - { AttributeName: stack_id, AttributeType: S }
      KeySchema:
        - { AttributeName: pk, KeyType: HASH }
        - { AttributeName: sk, KeyType: RANGE }
      GlobalSecondaryIndexes:
        - { IndexName: by-source, Projection: { ProjectionType: ALL }, KeySchema: [{ AttributeName: source_key, KeyType: HASH }, { AttributeName: pk, KeyType: RANGE }] }
        - { IndexName: by-owner, Projection: { ProjectionType: ALL }, KeySchema: [{ AttributeName: owner_key, KeyType: HASH }, { AttributeName: pk, KeyType: RANGE }] }
        - { IndexName: by-via, Projection: { ProjectionType: ALL }, KeySchema: [{ AttributeName: via_key, KeyType: HASH }, { AttributeName: pk, KeyType: RANGE }] }
        - { IndexName: by-stack, Projection: { ProjectionType: ALL }, KeySchema: [{ AttributeName: stack_id, KeyType: HASH }, { AttributeName: pk, KeyType: RANGE }] }
Outputs:
  Table:
    Value: !GetAtt RegistryTable.Arn
    Export:
      Name: !Sub "${AWS::StackName}-RegistryTable"
"#;

fn write_fixture(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stagewire-devkit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-template.yaml"));
    std::fs::write(&path, FIXTURE).unwrap();
    path
}

/// The registry table's shape, from the fixture or the workspace template: its keys, its four
/// indexes (all projecting every attribute), billed per request.
async fn assert_registry_shape(client: &aws_sdk_dynamodb::Client, table: &str) {
    let described = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap();
    let t = described.table().unwrap();
    let keys: Vec<(&str, KeyType)> = t
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().clone()))
        .collect();
    assert_eq!(keys, vec![("pk", KeyType::Hash), ("sk", KeyType::Range)]);
    let mut indexes: Vec<(String, String, String, Option<ProjectionType>)> = t
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            (
                g.index_name().unwrap().to_string(),
                g.key_schema()[0].attribute_name().to_string(),
                g.key_schema()[1].attribute_name().to_string(),
                g.projection().and_then(|p| p.projection_type().cloned()),
            )
        })
        .collect();
    indexes.sort();
    let index = |name: &str, key: &str| {
        let all = Some(ProjectionType::All);
        (name.to_string(), key.to_string(), "pk".to_string(), all)
    };
    assert_eq!(
        indexes,
        vec![
            index("by-owner", "owner_key"),
            index("by-source", "source_key"),
            index("by-stack", "stack_id"),
            index("by-via", "via_key"),
        ]
    );
    assert_eq!(
        t.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
}

#[tokio::test]
async fn registry_table_from_a_fixture_template() {
    let moto = moto::shared().await;
    let client = dynamodb(&moto.endpoint()).await;
    let fixture = write_fixture("fixture");
    create_table_from_template(&client, "devkit-fixture-registry", &fixture)
        .await
        .unwrap();
    assert_registry_shape(&client, "devkit-fixture-registry").await;
    // A second create of the same table is an error, with the SDK error kept as the cause.
    let again = create_table_from_template(&client, "devkit-fixture-registry", &fixture).await;
    let err = again.unwrap_err();
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn registry_table_from_the_workspace_template() {
    let template = stagewire_devkit::registry::template_path();
    assert!(
        template.is_file(),
        "{} is missing: the registry is defined there",
        template.display()
    );
    let moto = moto::shared().await;
    let client = dynamodb(&moto.endpoint()).await;
    stagewire_devkit::create_registry_table(&client, "devkit-workspace-registry")
        .await
        .unwrap();
    assert_registry_shape(&client, "devkit-workspace-registry").await;
}

#[tokio::test]
async fn reset_closes_without_an_answer_and_a_dead_upstream_is_502() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let proxy = FaultProxy::start("http://127.0.0.1:1").await.unwrap();
    let authority = proxy.endpoint().trim_start_matches("http://").to_string();
    let exchange = |authority: String| async move {
        let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
        let request = format!("GET /x HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    proxy.add_rule(Rule::new(Fault::Reset).times(1));
    assert_eq!(exchange(authority.clone()).await, "");
    assert!(exchange(authority).await.starts_with("HTTP/1.1 502"));
    assert_eq!(proxy.count("unsigned", "GET /x"), 2);
}
