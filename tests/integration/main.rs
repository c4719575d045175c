//! Integration tests: the real AWS SDK against a moto server, with CloudFormation's side of
//! the custom-resource protocol played by the tests. One test binary, one module per concern.

mod accounts;
mod canary_devkit;
mod choreography;
mod claims;
mod cli;
mod custom_resource;
mod deploy;
mod docs;
mod events;
mod fanout;
mod faults;
mod http_api;
mod iam;
mod package;
mod private;
mod private_devkit;
mod properties;
mod replays;
mod resync;
mod security;
mod support;
mod template;
mod zero_downtime;
