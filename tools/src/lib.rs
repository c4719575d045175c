//! What the demo and the bench share: the names of the seed scenario they play on moto.

#![warn(missing_docs)]

/// The account moto plays.
pub const ACCOUNT: &str = "123456789012";
/// The region of every devkit SDK configuration.
pub const REGION: &str = stagewire_devkit::moto::REGION;
/// The stage variable the seed binds.
pub const VARIABLE: &str = "helloworldElb";
/// The ECS stack's output naming its load balancer's DNS name.
pub const OUTPUT_KEY: &str = "EcsElbDnsName";
/// The ARN a real deployment's `ServiceToken` would carry.
pub const SERVICE_TOKEN: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:stagewire-StageBindingFunction";
