//! The CloudFormation custom-resource protocol.

mod handler;

pub use handler::*;
