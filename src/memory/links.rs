//! API Gateway's VPC links (REST and v2 in one list).

use async_trait::async_trait;

use super::{State, World};
use crate::domain::{LinkFamily, LinkStatus, VpcLink};
use crate::ports::{op, AwsError, VpcLinks};

impl State {
    /// Add a REST (v1) VPC link `id` targeting the load balancer `lb_arn`, in `status`.
    pub fn add_rest_link(&mut self, id: &str, lb_arn: &str, status: LinkStatus) -> VpcLink {
        let link = VpcLink {
            family: LinkFamily::Rest,
            id: id.to_string(),
            name: format!("{id}-name"),
            target_arns: vec![lb_arn.to_string()],
            status_message: Some(format!("link {id} is {status}")),
            status,
        };
        self.links.push(link.clone());
        link
    }

    /// Add a v2 VPC link `id` in `status`.
    pub fn add_v2_link(&mut self, id: &str, status: LinkStatus) -> VpcLink {
        let link = VpcLink {
            family: LinkFamily::V2,
            id: id.to_string(),
            name: format!("{id}-name"),
            target_arns: Vec::new(),
            status_message: Some(format!("link {id} is {status}")),
            status,
        };
        self.links.push(link.clone());
        link
    }

    /// Set the status of link `id`.
    pub fn set_link_status(&mut self, id: &str, status: LinkStatus) {
        for link in self.links.iter_mut().filter(|l| l.id == id) {
            link.status_message = Some(format!("link {id} is {status}"));
            link.status = status.clone();
        }
    }
}

fn of(s: &State, family: LinkFamily, id: &str) -> Option<VpcLink> {
    s.links
        .iter()
        .find(|l| l.family == family && l.id == id)
        .cloned()
}

#[async_trait]
impl VpcLinks for World {
    async fn rest_links(&self) -> Result<Vec<VpcLink>, AwsError> {
        let s = self.call(op::REST_VPC_LINKS)?;
        let rest = s.links.iter().filter(|l| l.family == LinkFamily::Rest);
        Ok(rest.cloned().collect())
    }

    async fn rest_link(&self, id: &str) -> Result<Option<VpcLink>, AwsError> {
        Ok(of(&*self.call(op::REST_VPC_LINK)?, LinkFamily::Rest, id))
    }

    async fn v2_link(&self, id: &str) -> Result<Option<VpcLink>, AwsError> {
        Ok(of(&*self.call(op::V2_VPC_LINK)?, LinkFamily::V2, id))
    }
}
