//! What a request must be before stagewire acts on it: a ResponseURL on CloudFormation's
//! response bucket (or an allow-listed host), and a resource CloudFormation really holds in the
//! state the request implies. Refusals are security events: logged at WARN with
//! `security_event` set, and counted in the EMF metric `SecurityEvents` (namespace `Stagewire`,
//! dimension `Function`), which the template alarms on.

use serde_json::json;

use super::{Ids, RequestType, ResponseUrl};
use crate::ports::{AwsError, StackResource};

/// The metric counting refused requests (shared with the re-sync).
pub use crate::emf::SECURITY_EVENTS as SECURITY_METRIC;
pub const FUNCTION: &str = "stage-binding";

/// The resource types a binding may be declared as.
pub const RESOURCE_TYPES: &[&str] = &[
    "Custom::StageBinding",
    "AWS::CloudFormation::CustomResource",
];

/// Where responses may go: CloudFormation's response bucket for the function's region, in each
/// documented host form, plus the hosts of an explicit allow-list (`STAGEWIRE_RESPONSE_HOSTS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHosts {
    region: String,
    allowed: Vec<String>,
}

impl ResponseHosts {
    /// CloudFormation's response bucket for `region`, nothing else.
    pub fn cloudformation(region: &str) -> Self {
        ResponseHosts {
            region: region.to_ascii_lowercase(),
            allowed: Vec::new(),
        }
    }

    /// Also allow these hosts (`host` for any port, or `host:port`), over http or https.
    pub fn allowing(mut self, hosts: impl IntoIterator<Item = String>) -> Self {
        self.allowed.extend(
            hosts
                .into_iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty()),
        );
        self
    }

    /// Whether a response may be PUT to `url`.
    pub fn allows(&self, url: &ResponseUrl) -> bool {
        let Ok(parsed) = reqwest::Url::parse(url.expose()) else {
            return false;
        };
        let Some(host) = parsed.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let port = parsed.port_or_known_default();
        let listed = self
            .allowed
            .iter()
            .any(|entry| match entry.rsplit_once(':') {
                Some((h, p)) if p.parse::<u16>().is_ok() => {
                    h == host && p.parse::<u16>().ok() == port
                }
                _ => *entry == host,
            });
        if listed && matches!(parsed.scheme(), "http" | "https") {
            return true;
        }
        if parsed.scheme() != "https" || parsed.port().is_some() {
            return false;
        }
        let first_segment = parsed
            .path_segments()
            .and_then(|mut s| s.next())
            .unwrap_or_default()
            .to_ascii_lowercase();
        self.buckets().iter().any(|bucket| {
            self.endpoints().iter().any(|endpoint| {
                // Virtual-hosted style, or path style with the bucket as the first segment.
                host == format!("{bucket}.{endpoint}")
                    || (host == *endpoint && first_segment == *bucket)
            })
        })
    }

    /// `cloudformation-custom-resource-response-<region>`: AWS documents the region without
    /// dashes (`useast1`); the dashed form is accepted too.
    fn buckets(&self) -> Vec<String> {
        let prefix = "cloudformation-custom-resource-response-";
        vec![
            format!("{prefix}{}", self.region.replace('-', "")),
            format!("{prefix}{}", self.region),
        ]
    }

    /// S3's endpoints for the region: global, `s3.<region>`, `s3-<region>` (and
    /// `s3-external-1` in us-east-1), `s3.dualstack.<region>`, under the region's partition
    /// domain (`amazonaws.com.cn` in China; GovCloud is under `amazonaws.com`).
    fn endpoints(&self) -> Vec<String> {
        let r = &self.region;
        let domain = if r.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        let mut out = vec![
            format!("s3.{r}.{domain}"),
            format!("s3-{r}.{domain}"),
            format!("s3.dualstack.{r}.{domain}"),
        ];
        if domain == "amazonaws.com" {
            out.push("s3.amazonaws.com".into());
        }
        if r == "us-east-1" {
            out.push("s3-external-1.amazonaws.com".into());
        }
        out
    }
}

/// Why a request was refused before any work: each says what was checked and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Forged {
    #[error("stack {stack} does not exist")]
    NoStack { stack: String },
    #[error("stack {stack} holds no resource {logical}")]
    NoResource { stack: String, logical: String },
    #[error("{logical} in stack {stack} is a {found}, not a Custom::StageBinding or AWS::CloudFormation::CustomResource")]
    WrongType {
        stack: String,
        logical: String,
        found: String,
    },
    #[error(
        "{logical} in stack {stack} is {status}, but a {request} comes only while it is {expected}"
    )]
    WrongStatus {
        stack: String,
        logical: String,
        status: String,
        request: &'static str,
        expected: &'static str,
    },
    #[error("{logical} in stack {stack} has the physical id {known}, not {claimed}")]
    WrongPhysicalId {
        stack: String,
        logical: String,
        known: String,
        claimed: String,
    },
}

/// What CloudFormation answered about the event's resource.
pub type Lookup = Result<Option<StackResource>, AwsError>;

/// The verdict on a request, given what CloudFormation says about its resource.
///
/// - Create: the resource exists, is a binding type, and is `CREATE_IN_PROGRESS`.
/// - Update: the same, `UPDATE_IN_PROGRESS`, and CloudFormation's physical id (when it knows
///   one) is the event's.
/// - Delete: refused only when the resource is alive and not being deleted *and* the event
///   names its current physical id (or CloudFormation knows none yet): a forged Delete of a
///   live binding. A stack or resource that is gone, a resource in `DELETE_*`, and the Delete of
///   an id the resource no longer has (the cleanup of a replacement, which runs while the
///   resource is `UPDATE_COMPLETE`) pass: a Delete must never fail a stack's deletion, and what
///   it removes is held under the event's own stack, logical and physical id.
pub fn verdict(
    request: RequestType,
    ids: &Ids,
    found: Option<&StackResource>,
) -> Result<(), Forged> {
    let stack = ids.stack_id.clone();
    let logical = ids.logical_id.clone();
    let Some(res) = found else {
        return match request {
            RequestType::Delete => Ok(()),
            _ => Err(Forged::NoResource { stack, logical }),
        };
    };
    let being_deleted = request == RequestType::Delete && res.status.starts_with("DELETE_");
    if !RESOURCE_TYPES.contains(&res.resource_type.as_str()) && !being_deleted {
        return Err(Forged::WrongType {
            stack,
            logical,
            found: res.resource_type.clone(),
        });
    }
    let claimed = ids.physical_id.clone().unwrap_or_default();
    let known = res.physical_id.clone().filter(|p| !p.is_empty());
    let wrong_status = |expected| Forged::WrongStatus {
        stack: stack.clone(),
        logical: logical.clone(),
        status: res.status.clone(),
        request: request.as_str(),
        expected,
    };
    match request {
        RequestType::Create if res.status != "CREATE_IN_PROGRESS" => {
            Err(wrong_status("CREATE_IN_PROGRESS"))
        }
        RequestType::Create => Ok(()),
        RequestType::Update if res.status != "UPDATE_IN_PROGRESS" => {
            Err(wrong_status("UPDATE_IN_PROGRESS"))
        }
        RequestType::Update => match known {
            Some(known) if known != claimed => Err(Forged::WrongPhysicalId {
                stack,
                logical,
                known,
                claimed,
            }),
            _ => Ok(()),
        },
        RequestType::Delete if being_deleted => Ok(()),
        // The cleanup of a replacement deletes an id the resource no longer has.
        RequestType::Delete => match known {
            Some(known) if known != claimed => Ok(()),
            _ => Err(wrong_status("DELETE_IN_PROGRESS")),
        },
    }
}

/// Ask CloudFormation whether the request's resource is in the state the request implies. The
/// error is the Reason to answer; a refusal is reported as a security event.
pub async fn authenticate(
    outputs: &dyn crate::ports::StackOutputs,
    request: RequestType,
    ids: &Ids,
) -> Result<(), String> {
    let found = outputs
        .stack_resource(&ids.stack_id, &ids.logical_id)
        .await
        .map_err(|e| {
            format!(
                "could not verify with CloudFormation that this request comes from {} in stack {}: {e}",
                ids.logical_id, ids.stack_id
            )
        })?;
    verdict(request, ids, found.as_ref()).map_err(|forged| {
        let detail = forged.to_string();
        report("ForgedRequest", Some(ids), &detail);
        format!(
            "refused: this {} is not CloudFormation's: {detail}",
            request.as_str()
        )
    })
}

/// Log a refused request as a security event and print its EMF metric line.
pub fn report(kind: &'static str, ids: Option<&Ids>, detail: &str) {
    tracing::warn!(
        security_event = kind,
        stack_id = ids.map(|i| i.stack_id.as_str()).unwrap_or("unknown"),
        logical_resource_id = ids.map(|i| i.logical_id.as_str()).unwrap_or("unknown"),
        detail,
        "request refused"
    );
    crate::emf::emit(&metric_document(kind, crate::now_ms()));
}

/// The EMF document of one refused request.
pub fn metric_document(kind: &str, timestamp_ms: i64) -> serde_json::Value {
    crate::emf::document(
        FUNCTION,
        &[(SECURITY_METRIC, crate::emf::Unit::Count, 1)],
        &[("SecurityEvent", json!(kind))],
        timestamp_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> ResponseUrl {
        ResponseUrl::new(u)
    }

    #[test]
    fn only_cloudformations_bucket_receives_responses() {
        let east = ResponseHosts::cloudformation("us-east-1");
        for ok in [
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/arn%3Ax?X-Amz-Signature=s",
            "https://cloudformation-custom-resource-response-useast1.s3.us-east-1.amazonaws.com/x",
            "https://cloudformation-custom-resource-response-useast1.s3-external-1.amazonaws.com/x",
            "https://cloudformation-custom-resource-response-us-east-1.s3.amazonaws.com/x",
            "https://s3.us-east-1.amazonaws.com/cloudformation-custom-resource-response-useast1/x",
        ] {
            assert!(east.allows(&url(ok)), "{ok}");
        }
        for bad in [
            "https://attacker.example/x",
            "http://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x",
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com:8443/x",
            "https://cloudformation-custom-resource-response-uswest2.s3.amazonaws.com/x",
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com.attacker.example/x",
            "https://evil-bucket.s3.amazonaws.com/x",
            "https://s3.us-east-1.amazonaws.com/evil-bucket/x",
            "http://127.0.0.1:8080/x",
            "not a url",
        ] {
            assert!(!east.allows(&url(bad)), "{bad}");
        }
        let west = ResponseHosts::cloudformation("eu-west-1");
        assert!(west.allows(&url(
            "https://cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com/x"
        )));
        let china = ResponseHosts::cloudformation("cn-north-1");
        assert!(china.allows(&url(
            "https://cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn/x"
        )));
        assert!(!china.allows(&url(
            "https://cloudformation-custom-resource-response-cnnorth1.s3.amazonaws.com/x"
        )));
        let gov = ResponseHosts::cloudformation("us-gov-west-1");
        assert!(gov.allows(&url(
            "https://cloudformation-custom-resource-response-usgovwest1.s3-us-gov-west-1.amazonaws.com/x"
        )));
    }

    #[test]
    fn an_allow_list_adds_hosts_with_or_without_port() {
        let hosts = ResponseHosts::cloudformation("us-east-1")
            .allowing(["127.0.0.1".to_string(), "localhost:9000".to_string()]);
        assert!(hosts.allows(&url("http://127.0.0.1:4321/x?sig=s")));
        assert!(hosts.allows(&url("http://localhost:9000/x")));
        assert!(!hosts.allows(&url("http://localhost:9001/x")));
        assert!(!hosts.allows(&url("http://127.0.0.2:4321/x")));
    }

    fn ids(physical: Option<&str>) -> Ids {
        Ids {
            stack_id: "arn:aws:cloudformation:us-east-1:1:stack/S/1".into(),
            logical_id: "B".into(),
            request_id: "r".into(),
            physical_id: physical.map(str::to_owned),
        }
    }

    fn res(status: &str, physical: Option<&str>) -> StackResource {
        StackResource {
            resource_type: "Custom::StageBinding".into(),
            status: status.into(),
            physical_id: physical.map(str::to_owned),
        }
    }

    #[test]
    fn each_request_needs_its_state() {
        use RequestType::*;
        let wrong_type = StackResource {
            resource_type: "AWS::S3::Bucket".into(),
            ..res("CREATE_IN_PROGRESS", None)
        };
        assert!(matches!(
            verdict(Create, &ids(None), Some(&wrong_type)),
            Err(Forged::WrongType { .. })
        ));
        assert!(matches!(
            verdict(
                Update,
                &ids(Some("q")),
                Some(&res("UPDATE_IN_PROGRESS", Some("p")))
            ),
            Err(Forged::WrongPhysicalId { .. })
        ));
        // (request, the event's physical id, CloudFormation's status and physical id, passes)
        let (p, none) = (Some("p"), None);
        let cases = [
            (Create, none, Some(("CREATE_IN_PROGRESS", none)), true),
            (Create, none, Some(("CREATE_COMPLETE", p)), false),
            (Create, none, None, false),
            (Update, p, Some(("UPDATE_IN_PROGRESS", p)), true),
            (Update, p, Some(("UPDATE_COMPLETE", p)), false),
            // Deletes: gone, being deleted, or the cleanup of a replaced id pass.
            (Delete, p, None, true),
            (Delete, p, Some(("DELETE_IN_PROGRESS", p)), true),
            (Delete, p, Some(("DELETE_COMPLETE", p)), true),
            (
                Delete,
                Some("old"),
                Some(("UPDATE_COMPLETE", Some("new"))),
                true,
            ),
            // A forged Delete of a live binding does not.
            (Delete, p, Some(("CREATE_COMPLETE", p)), false),
            (
                Delete,
                Some("made-up"),
                Some(("CREATE_IN_PROGRESS", none)),
                false,
            ),
        ];
        for (request, claimed, found, passes) in cases {
            let found = found.map(|(status, known)| res(status, known));
            let verdict = verdict(request, &ids(claimed), found.as_ref());
            assert_eq!(verdict.is_ok(), passes, "{request:?} {claimed:?} {found:?}");
        }
    }

    #[test]
    fn the_metric_has_its_value() {
        let doc = metric_document("ForgedRequest", 1);
        assert_eq!(doc[SECURITY_METRIC], 1);
        assert_eq!(doc["Function"], FUNCTION);
    }
}
