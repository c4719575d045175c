//! The re-sync's side of authorization: a binding whose stack may no longer touch its API
//! (the API's tags changed since it was bound) is not updated, and is reported.

use std::collections::HashMap;

use crate::binding::{self, BindingError};
use crate::domain::rights::{Authorization, Denied};
use crate::domain::StageRef;
use crate::ports::{AwsError, Record};
use crate::Ports;

/// Rights already checked in one invocation, by API and stack.
#[derive(Default)]
pub struct Rights {
    seen: HashMap<(StageRef, String), Result<(), Denied>>,
}

impl Rights {
    /// Whether the record's binding may still touch its API: `Ok(Err(denied))` when it may not.
    /// Bindings made by the operator CLI (not owned by a CloudFormation stack) act with the
    /// operator's rights and always pass.
    pub async fn check(
        &mut self,
        ports: &Ports,
        record: &Record,
    ) -> Result<Result<(), Denied>, AwsError> {
        if ports.authorization == Authorization::Open || !record.owner.stack_id.starts_with("arn:")
        {
            return Ok(Ok(()));
        }
        // Keyed by the API (stage name blanked): tags belong to the API.
        let api = StageRef::new(
            record.stage.kind,
            record.stage.api_id.clone(),
            String::new(),
        );
        let key = (api, record.owner.stack_id.clone());
        if let Some(known) = self.seen.get(&key) {
            return Ok(known.clone());
        }
        let verdict = match binding::authorize(ports, &record.owner.stack_id, &record.stage).await {
            Ok(()) => Ok(()),
            Err(BindingError::Unauthorized(d)) => Err(d),
            Err(BindingError::Stage { source, .. }) => return Err(*source),
            Err(other) => {
                return Err(AwsError {
                    service: "stagewire",
                    operation: "Authorize",
                    kind: crate::ports::ErrorKind::Other,
                    code: None,
                    message: Some(other.to_string()),
                    source: None,
                })
            }
        };
        self.seen.insert(key, verdict.clone());
        Ok(verdict)
    }
}
