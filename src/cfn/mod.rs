//! The CloudFormation custom-resource protocol.
//!
//! Every invocation that carries a ResponseURL gets exactly one response, whatever happens:
//! a malformed event, invalid properties, a failed AWS call, a panic, a configuration error at
//! start-up, or a deadline about to pass. The event is decoded in two phases (the envelope,
//! then the properties) so that a properties error is a FAILED response, not a stuck stack.
//! The ResponseURL is a credential: it lives in [`ResponseUrl`], whose `Debug` redacts it, and
//! every text that leaves the function is scrubbed of it.
//!
//! # Layout
//! - `url`: [`ResponseUrl`], redacted in `Debug`, and the scrubbing of texts.
//! - `decode`: phase one of decoding, the envelope ([`decode()`], [`Envelope`], [`Malformed`]).
//! - `response`: the response body within [`MAX_RESPONSE_BYTES`] ([`response_body`],
//!   [`data_limit`]).
//! - `send`: the [`Sender`]: PUT, empty Content-Type, bounded jittered retries, no redirects.
//! - `deadline`: [`Timing`], when the work must stop so the answer still goes out.
//! - `security`: what a request must be before anything is written: a ResponseURL on
//!   CloudFormation's response bucket ([`security::ResponseHosts`]) and a resource that
//!   CloudFormation holds in the state the request implies ([`security::verdict`]).
//! - `handler`: the [`Handler`]: the lifecycle step under the deadline, then the one response.

mod deadline;
mod decode;
mod handler;
mod response;
pub mod security;
mod send;
mod url;

pub use deadline::{deadline_instant, Timing};
pub use decode::{decode, request, Action, Envelope, Ids, Malformed, Request, RequestType};
pub use handler::{Handler, Report, Undelivered};
pub use response::{data_limit, response_body, truncate_utf8, Outcome, Status, MAX_RESPONSE_BYTES};
pub use send::{SendError, Sender};
pub use url::ResponseUrl;
