//! CloudWatch metric alarms in moto, and an alarm that fires from a local load balancer's 500s.
//!
//! Moto keeps metric alarms (`PutMetricAlarm`, `SetAlarmState`, `DescribeAlarms`) but does not
//! speak the RPCv2 CBOR protocol the Rust SDK's CloudWatch client sends; it answers CloudWatch's
//! JSON protocol (`X-Amz-Target: GraniteServiceVersion20100801.<Operation>`,
//! `application/x-amz-json-1.0`), which [`Alarms`] sends, with a SigV4-shaped `Authorization`
//! header whose scope names the service (moto checks no signature). Point it at moto or at the
//! [`crate::FaultProxy`] (which counts the calls as service `monitoring`). The SDK's own client
//! works through the proxy only, which answers its CBOR calls from moto's JSON protocol.
//!
//! [`AlarmWatch`] plays what a real alarm on an ALB's `HTTPCode_Target_5XX_Count` does: it
//! watches a local load balancer's requests and 500s ([`LocalLoadBalancers::request_counts`])
//! over a sliding window and sets the alarm `ALARM` when the share of 500s reaches a threshold,
//! `OK` when it falls below again.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{header, Method, Request};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::lbs::LocalLoadBalancers;
use crate::DevkitError;

/// An alarm's state, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    /// `OK`.
    Ok,
    /// `ALARM`.
    Alarm,
    /// `INSUFFICIENT_DATA` (a new alarm's state).
    InsufficientData,
}

impl AlarmState {
    /// CloudWatch's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    fn parse(value: &str) -> Option<AlarmState> {
        [
            AlarmState::Ok,
            AlarmState::Alarm,
            AlarmState::InsufficientData,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

/// An alarm as `DescribeAlarms` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmView {
    /// The alarm's state.
    pub state: AlarmState,
    /// Why it is in that state.
    pub reason: String,
}

/// CloudWatch metric alarms in moto (or through the proxy in front of it).
#[derive(Debug, Clone)]
pub struct Alarms {
    endpoint: String,
}

/// The credential scope moto routes CloudWatch calls by.
const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDSTAGEWIREDEVKIT/20260101/us-east-1/monitoring/aws4_request, SignedHeaders=host;x-amz-target, Signature=0";

impl Alarms {
    /// Alarms at `endpoint` (`http://127.0.0.1:PORT`: moto or the fault proxy).
    pub fn new(endpoint: &str) -> Alarms {
        Alarms {
            endpoint: endpoint.to_string(),
        }
    }

    /// Sends one CloudWatch operation; the answer's JSON document.
    pub async fn call(&self, operation: &str, input: Value) -> Result<Value, DevkitError> {
        let authority = crate::http::authority_of(&self.endpoint)?;
        let request = Request::builder()
            .method(Method::POST)
            .uri("/")
            .header(header::HOST, &authority)
            .header(header::CONTENT_TYPE, "application/x-amz-json-1.0")
            .header(
                "x-amz-target",
                format!("GraniteServiceVersion20100801.{operation}"),
            )
            .header(header::AUTHORIZATION, AUTHORIZATION)
            .body(Full::new(Bytes::from(input.to_string())))
            .map_err(|e| DevkitError::Invalid(format!("{operation}: {e}")))?;
        let response = crate::http::send(&authority, request).await?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| DevkitError::http(format!("reading the answer of {operation}"), e))?
            .to_bytes();
        if status != 200 {
            return Err(DevkitError::Unexpected(format!(
                "CloudWatch {operation} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        if body.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&body).map_err(|e| {
            DevkitError::Unexpected(format!("CloudWatch {operation} answered no JSON: {e}"))
        })
    }

    /// Creates (or replaces) the alarm `name` on an Application Load Balancer's
    /// `HTTPCode_Target_5XX_Count` (`load_balancer`: the `LoadBalancer` dimension,
    /// `app/NAME/ID`): ALARM at one 5XX or more over a minute, missing data not breaching.
    pub async fn put_5xx_alarm(&self, name: &str, load_balancer: &str) -> Result<(), DevkitError> {
        let input = json!({
            "AlarmName": name,
            "Namespace": "AWS/ApplicationELB",
            "MetricName": "HTTPCode_Target_5XX_Count",
            "Dimensions": [{"Name": "LoadBalancer", "Value": load_balancer}],
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        });
        self.call("PutMetricAlarm", input).await.map(drop)
    }

    /// Sets the alarm `name`'s state with `reason` (as CloudWatch does when it evaluates it).
    pub async fn set_state(
        &self,
        name: &str,
        state: AlarmState,
        reason: &str,
    ) -> Result<(), DevkitError> {
        let input = json!({"AlarmName": name, "StateValue": state.as_str(), "StateReason": reason});
        self.call("SetAlarmState", input).await.map(drop)
    }

    /// The alarm `name` (`None`: no such alarm).
    pub async fn get(&self, name: &str) -> Result<Option<AlarmView>, DevkitError> {
        let answer = self
            .call("DescribeAlarms", json!({"AlarmNames": [name]}))
            .await?;
        let alarms = answer["MetricAlarms"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(alarm) = alarms.iter().find(|a| a["AlarmName"] == name) else {
            return Ok(None);
        };
        let state = alarm["StateValue"].as_str().unwrap_or_default();
        let state = AlarmState::parse(state).ok_or_else(|| {
            DevkitError::Unexpected(format!("alarm {name} has an unknown state {state}"))
        })?;
        Ok(Some(AlarmView {
            state,
            reason: alarm["StateReason"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }))
    }

    /// The state of the alarm `name`.
    pub async fn state(&self, name: &str) -> Result<AlarmState, DevkitError> {
        self.get(name)
            .await?
            .map(|a| a.state)
            .ok_or_else(|| DevkitError::Unexpected(format!("no alarm {name}")))
    }
}

/// When an [`AlarmWatch`] fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FiresWhen {
    /// The share of 500s (0 to 1) over the window at or above which the alarm is `ALARM`.
    pub threshold: f64,
    /// The sliding window.
    pub window: Duration,
    /// The fewest requests in the window for it to count (fewer: `OK`).
    pub min_requests: u64,
}

/// Sets an alarm from a local load balancer's 500s while it lives (stopped when dropped).
#[derive(Debug)]
pub struct AlarmWatch {
    task: JoinHandle<()>,
}

/// How often an [`AlarmWatch`] samples its load balancer.
pub const WATCH_EVERY: Duration = Duration::from_millis(50);

impl AlarmWatch {
    /// Watches the load balancer `dns` and sets `alarm` as `when` says, from now on.
    pub fn start(
        alarms: Alarms,
        alarm: &str,
        lbs: LocalLoadBalancers,
        dns: &str,
        when: FiresWhen,
    ) -> AlarmWatch {
        let (alarm, dns) = (alarm.to_string(), dns.to_string());
        let task = tokio::spawn(async move {
            let mut samples: VecDeque<(Instant, u64, u64)> = VecDeque::new();
            let mut set: Option<AlarmState> = None;
            loop {
                let now = Instant::now();
                let (requests, errors) = lbs.request_counts(&dns);
                samples.push_back((now, requests, errors));
                while samples
                    .front()
                    .is_some_and(|(at, _, _)| now.duration_since(*at) > when.window)
                {
                    samples.pop_front();
                }
                let (_, r0, e0) = samples.front().copied().unwrap_or((now, requests, errors));
                let (r, e) = (requests - r0, errors - e0);
                let firing = r >= when.min_requests.max(1) && e as f64 >= when.threshold * r as f64;
                let state = if firing {
                    AlarmState::Alarm
                } else {
                    AlarmState::Ok
                };
                if set != Some(state) {
                    let reason = reason(state, r, e, &when);
                    if alarms.set_state(&alarm, state, &reason).await.is_ok() {
                        set = Some(state);
                    }
                }
                tokio::time::sleep(WATCH_EVERY).await;
            }
        });
        AlarmWatch { task }
    }
}

fn reason(state: AlarmState, requests: u64, errors: u64, when: &FiresWhen) -> String {
    let verb = match state {
        AlarmState::Alarm => "Threshold Crossed",
        _ => "Threshold Not Crossed",
    };
    format!(
        "{verb}: {errors} of {requests} requests answered 5XX by the targets in the last {} ms (threshold {:.1}%)",
        when.window.as_millis(),
        when.threshold * 100.0
    )
}

impl Drop for AlarmWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
