//! The seed scenario's building blocks, shared by the integration tests, the demo and the
//! benchmark: the `EcsDemoAPI`-like REST API and the events EventBridge delivers.

use aws_sdk_apigateway::types::{IntegrationType, Resource};
use serde_json::{json, Value};

use crate::DevkitError;

/// The integration URI of `GET /helloworld`.
pub const INTEGRATION_URI: &str = "http://${stageVariables.helloworldElb}";

/// The resources (paths) of REST API `api_id`: one page of `GetResources`, which holds them all
/// for APIs of the size tests and the demo build.
pub async fn resources(
    client: &aws_sdk_apigateway::Client,
    api_id: &str,
) -> Result<Vec<Resource>, DevkitError> {
    let out = client
        .get_resources()
        .rest_api_id(api_id)
        .send()
        .await
        .map_err(|e| DevkitError::aws("GetResources", e))?;
    Ok(out.items.unwrap_or_default())
}

/// A REST API named `name` with the method `GET /<path_part>` (no authorization, no
/// integration yet); answers the API's and the resource's ids.
pub async fn rest_api_with_get(
    client: &aws_sdk_apigateway::Client,
    name: &str,
    path_part: &str,
) -> Result<(String, String), DevkitError> {
    let api = client
        .create_rest_api()
        .name(name)
        .send()
        .await
        .map_err(|e| DevkitError::aws("CreateRestApi", e))?;
    let api_id = api.id().unwrap_or_default().to_string();
    let root = resources(client, &api_id)
        .await?
        .iter()
        .find(|r| r.path() == Some("/"))
        .and_then(|r| r.id())
        .ok_or_else(|| DevkitError::Invalid(format!("REST API {api_id} has no root resource")))?
        .to_string();
    let resource = client
        .create_resource()
        .rest_api_id(&api_id)
        .parent_id(root)
        .path_part(path_part)
        .send()
        .await
        .map_err(|e| DevkitError::aws("CreateResource", e))?;
    let resource_id = resource.id().unwrap_or_default().to_string();
    client
        .put_method()
        .rest_api_id(&api_id)
        .resource_id(&resource_id)
        .http_method("GET")
        .authorization_type("NONE")
        .send()
        .await
        .map_err(|e| DevkitError::aws("PutMethod", e))?;
    Ok((api_id, resource_id))
}

/// A REST API named `name` with `GET /helloworld` proxied (HTTP_PROXY) to
/// `http://${stageVariables.helloworldElb}`; answers its id.
pub async fn helloworld_rest_api(
    client: &aws_sdk_apigateway::Client,
    name: &str,
) -> Result<String, DevkitError> {
    let (api_id, resource_id) = rest_api_with_get(client, name, "helloworld").await?;
    client
        .put_integration()
        .rest_api_id(&api_id)
        .resource_id(&resource_id)
        .http_method("GET")
        .r#type(IntegrationType::HttpProxy)
        .integration_http_method("GET")
        .uri(INTEGRATION_URI)
        .send()
        .await
        .map_err(|e| DevkitError::aws("PutIntegration", e))?;
    Ok(api_id)
}

/// The EventBridge "CloudFormation Stack Status Change" event for a stack.
pub fn stack_status_event(account: &str, region: &str, stack_id: &str, status: &str) -> Value {
    json!({
        "version": "0",
        "id": uuid(),
        "detail-type": "CloudFormation Stack Status Change",
        "source": "aws.cloudformation",
        "account": account,
        "time": rfc3339_now(),
        "region": region,
        "resources": [stack_id],
        "detail": {
            "stack-id": stack_id,
            "status-details": { "status": status, "status-reason": "" }
        }
    })
}

/// The current time as RFC 3339 (`2026-11-25T12:00:00Z`).
pub fn rfc3339_now() -> String {
    stagewire::status::utc(stagewire::now_ms())
}

/// A random identifier shaped like a UUID.
pub fn uuid() -> String {
    let mut rng = fastrand::Rng::new();
    let mut hex = |n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap_or('0'))
            .collect()
    };
    format!("{}-{}-4{}-a{}-{}", hex(8), hex(4), hex(3), hex(3), hex(12))
}
