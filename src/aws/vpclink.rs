//! API Gateway's VPC links: REST (v1) links through `apigateway` (`GetVpcLinks`, page by page,
//! and `GetVpcLink`), v2 links through `apigatewayv2` (`GetVpcLink`). IAM: `apigateway:GET` on
//! `/vpclinks` and `/vpclinks/*` (both APIs share the action). Calls are made at the pace of
//! every API Gateway adapter of the process.

use std::sync::Arc;

use async_trait::async_trait;
use tracing::instrument;

use super::pace::Pacer;
use super::{found, sdk_error};
use crate::domain::{LinkFamily, LinkStatus, VpcLink};
use crate::ports::{AwsError, VpcLinks};

/// Links read per `GetVpcLinks` page (the most the API returns).
const PAGE: i32 = 500;

/// The VPC links of the account and region.
pub struct VpcLinkAdapter {
    rest: aws_sdk_apigateway::Client,
    v2: aws_sdk_apigatewayv2::Client,
    pacer: Arc<Pacer>,
}

impl VpcLinkAdapter {
    pub fn new(
        rest: aws_sdk_apigateway::Client,
        v2: aws_sdk_apigatewayv2::Client,
        pacer: Arc<Pacer>,
    ) -> Self {
        VpcLinkAdapter { rest, v2, pacer }
    }
}

fn rest_link(l: &aws_sdk_apigateway::types::VpcLink) -> VpcLink {
    VpcLink {
        family: LinkFamily::Rest,
        id: l.id().unwrap_or_default().to_string(),
        name: l.name().unwrap_or_default().to_string(),
        target_arns: l.target_arns().to_vec(),
        status: LinkStatus::parse(l.status().map(|s| s.as_str()).unwrap_or_default()),
        status_message: l.status_message().map(str::to_owned),
    }
}

#[async_trait]
impl VpcLinks for VpcLinkAdapter {
    #[instrument(skip(self))]
    async fn rest_links(&self) -> Result<Vec<VpcLink>, AwsError> {
        let mut links = Vec::new();
        let mut position: Option<String> = None;
        loop {
            let page = self
                .pacer
                .call(|| async {
                    let sent = self
                        .rest
                        .get_vpc_links()
                        .limit(PAGE)
                        .set_position(position.clone())
                        .send()
                        .await;
                    sent.map_err(|e| sdk_error("apigateway", "GetVpcLinks", e))
                })
                .await?;
            links.extend(page.items().iter().map(rest_link));
            match page.position() {
                Some(next) if !next.is_empty() && Some(next) != position.as_deref() => {
                    position = Some(next.to_string())
                }
                _ => return Ok(links),
            }
        }
    }

    #[instrument(skip(self))]
    async fn rest_link(&self, id: &str) -> Result<Option<VpcLink>, AwsError> {
        let out = found(
            self.pacer
                .call(|| async {
                    let sent = self.rest.get_vpc_link().vpc_link_id(id).send().await;
                    sent.map_err(|e| sdk_error("apigateway", "GetVpcLink", e))
                })
                .await,
        )?;
        Ok(out.map(|o| VpcLink {
            family: LinkFamily::Rest,
            id: o.id().unwrap_or(id).to_string(),
            name: o.name().unwrap_or_default().to_string(),
            target_arns: o.target_arns().to_vec(),
            status: LinkStatus::parse(o.status().map(|s| s.as_str()).unwrap_or_default()),
            status_message: o.status_message().map(str::to_owned),
        }))
    }

    #[instrument(skip(self))]
    async fn v2_link(&self, id: &str) -> Result<Option<VpcLink>, AwsError> {
        let out = found(
            self.pacer
                .call(|| async {
                    let sent = self.v2.get_vpc_link().vpc_link_id(id).send().await;
                    sent.map_err(|e| sdk_error("apigatewayv2", "GetVpcLink", e))
                })
                .await,
        )?;
        Ok(out.map(|o| VpcLink {
            family: LinkFamily::V2,
            id: o.vpc_link_id().unwrap_or(id).to_string(),
            name: o.name().unwrap_or_default().to_string(),
            target_arns: Vec::new(),
            status: LinkStatus::parse(o.vpc_link_status().map(|s| s.as_str()).unwrap_or_default()),
            status_message: o.vpc_link_status_message().map(str::to_owned),
        }))
    }
}
