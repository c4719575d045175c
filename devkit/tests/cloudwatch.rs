//! The Rust SDK's CloudWatch client (RPCv2 CBOR, which moto does not speak) through the fault
//! proxy, which answers it from moto's JSON protocol: the alarm reads and writes a cutover makes.

use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
use stagewire_devkit::alarms::{AlarmState, Alarms};
use stagewire_devkit::{moto, sdk_config, FaultProxy};

#[tokio::test]
async fn the_sdk_creates_sets_and_reads_alarms_in_moto_through_the_proxy() {
    let moto = moto::shared().await;
    let proxy = FaultProxy::start(&moto.endpoint()).await.unwrap();
    let cw = aws_sdk_cloudwatch::Client::new(&sdk_config(&proxy.endpoint()).await);
    cw.put_metric_alarm()
        .alarm_name("orders-5xx-sdk")
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .dimensions(
            Dimension::builder()
                .name("LoadBalancer")
                .value("app/orders/1")
                .build(),
        )
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .send()
        .await
        .unwrap();
    cw.set_alarm_state()
        .alarm_name("orders-5xx-sdk")
        .state_value(StateValue::Alarm)
        .state_reason("Threshold Crossed: 3 of 9")
        .send()
        .await
        .unwrap();
    let described = cw
        .describe_alarms()
        .alarm_names("orders-5xx-sdk")
        .send()
        .await
        .unwrap();
    let alarm = &described.metric_alarms()[0];
    assert_eq!(alarm.state_value(), Some(&StateValue::Alarm));
    assert_eq!(alarm.state_reason(), Some("Threshold Crossed: 3 of 9"));
    assert_eq!(alarm.threshold(), Some(1.0));
    assert!(alarm.state_updated_timestamp().is_some());
    // The devkit's helper sees what the SDK wrote, and the other way round.
    let alarms = Alarms::new(&proxy.endpoint());
    assert_eq!(
        alarms.state("orders-5xx-sdk").await.unwrap(),
        AlarmState::Alarm
    );
    // An error keeps its code.
    let missing = cw
        .set_alarm_state()
        .alarm_name("no-such-alarm")
        .state_value(StateValue::Ok)
        .state_reason("x")
        .send()
        .await
        .unwrap_err();
    assert!(
        missing
            .code()
            .is_some_and(|c| c.contains("ResourceNotFound")),
        "{missing:?}"
    );
    assert_eq!(proxy.count("monitoring", "DescribeAlarms"), 2);
}
