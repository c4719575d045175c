//! CloudFormation's sequences of custom-resource requests, by name, so that each test of a
//! lifecycle case replays the requests in CloudFormation's order and overlap and reads as the
//! sequence it replays.
//!
//! A [`Sequence`] is a list of [`Step`]s. A [`Player`] builds each step's request with
//! [`CfnEvents`], hands it to whatever the test delivers requests to (the handler, or function
//! processes under the Runtime API stand-in) and takes each step's answer from the
//! [`ResponseReceiver`] by its `RequestId`. Steps that overlap are held at a fault proxy's
//! [`Gate`], which the player opens once the overlap is in place.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::fault_proxy::Gate;
use crate::receiver::{Received, ResponseReceiver};
use crate::{CfnEvents, DevkitError};

/// How long the player waits for a step to arrive at the gate.
pub const HOLD_WAIT: Duration = Duration::from_secs(60);

/// The physical id a step's request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Physical {
    /// The one the answer to step `n` gave.
    AnsweredBy(usize),
    /// One CloudFormation made up for a Create that never answered
    /// (`<stack name>-<logical id>-<12 random characters>`).
    MadeUp,
}

/// What a step asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `Create`.
    Create,
    /// `Update` of a physical id, from `old` properties.
    Update {
        /// The physical id updated.
        physical: Physical,
        /// `OldResourceProperties`.
        old: Value,
    },
    /// `Delete` of a physical id.
    Delete {
        /// The physical id deleted.
        physical: Physical,
    },
}

/// When a step is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Once every earlier step has answered.
    After,
    /// Together with the previous step, both in flight at once (CloudFormation works on
    /// resources that do not depend on each other in parallel). With a gate, the player opens
    /// it once every step sent together has arrived there.
    Alongside,
    /// While the previous step is held at the gate; the gate opens once this step answered.
    WhileHeld,
}

/// One request of a sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What CloudFormation is doing, in its words.
    pub what: &'static str,
    /// The resource's logical id.
    pub logical_id: String,
    /// The request.
    pub request: Request,
    /// `ResourceProperties`.
    pub properties: Value,
    /// When it is sent.
    pub timing: Timing,
}

/// A sequence of CloudFormation's requests, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    /// The sequence's name.
    pub name: &'static str,
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

fn step(what: &'static str, logical_id: &str, request: Request, properties: &Value) -> Step {
    Step {
        what,
        logical_id: logical_id.to_string(),
        request,
        properties: properties.clone(),
        timing: Timing::After,
    }
}

fn update(physical: Physical, old: &Value) -> Request {
    Request::Update {
        physical,
        old: old.clone(),
    }
}

fn delete(physical: Physical) -> Request {
    Request::Delete { physical }
}

impl Step {
    fn timed(mut self, timing: Timing) -> Step {
        self.timing = timing;
        self
    }
}

/// A stack's creation (`aws cloudformation deploy` of a new stack): the resource is created
/// once the resources it depends on exist.
pub fn stack_create(logical_id: &str, properties: Value) -> Sequence {
    Sequence {
        name: "stack create",
        steps: vec![step("creates", logical_id, Request::Create, &properties)],
    }
}

/// Two resources of one stack that do not depend on each other, created in parallel.
pub fn sibling_creates(a: (&str, Value), b: (&str, Value)) -> Sequence {
    Sequence {
        name: "sibling creates",
        steps: vec![
            step("creates one sibling", a.0, Request::Create, &a.1),
            step("creates the other at once", b.0, Request::Create, &b.1).timed(Timing::Alongside),
        ],
    }
}

/// A Create still running when a sibling fails: CloudFormation cancels it and, having no
/// physical id from it, deletes it with one it makes up, while the Create is still held.
pub fn cancelled_create(logical_id: &str, properties: Value) -> Sequence {
    Sequence {
        name: "cancelled create",
        steps: given_up(
            logical_id,
            &properties,
            "cancels it: deletes a made-up id",
            Timing::WhileHeld,
        ),
    }
}

/// A Create whose answer came too late (or never reached CloudFormation): it gives up and
/// deletes the resource with an id it makes up, after the Create has finished.
pub fn timed_out_create(logical_id: &str, properties: Value) -> Sequence {
    Sequence {
        name: "timed-out create",
        steps: given_up(
            logical_id,
            &properties,
            "gives up: deletes a made-up id",
            Timing::After,
        ),
    }
}

/// A Create CloudFormation gives up on, then the Delete of an id it made up (`what`), sent at
/// `timing`.
fn given_up(logical_id: &str, properties: &Value, what: &'static str, timing: Timing) -> Vec<Step> {
    vec![
        step("creates", logical_id, Request::Create, properties),
        step(what, logical_id, delete(Physical::MadeUp), properties).timed(timing),
    ]
}

/// An Update that fails (the resource's own answer, or a later resource's failure before its
/// answer): the rollback sends the old properties to the physical id the failed Update answered.
pub fn failed_update_rollback(logical_id: &str, old: Value, new: Value) -> Sequence {
    Sequence {
        name: "failed update, rollback",
        steps: updated_and_back(
            logical_id,
            (&old, &new),
            "updates (fails)",
            "UPDATE_ROLLBACK_IN_PROGRESS: updates back",
        ),
    }
}

/// A Create with `old`, an Update to `new` (`forth`), then an Update back to `old` (`back`)
/// sent to the id the first Update answered.
fn updated_and_back(
    logical_id: &str,
    (old, new): (&Value, &Value),
    forth: &'static str,
    back: &'static str,
) -> Vec<Step> {
    vec![
        step("creates", logical_id, Request::Create, old),
        step(forth, logical_id, update(Physical::AnsweredBy(0), old), new),
        step(back, logical_id, update(Physical::AnsweredBy(1), new), old),
    ]
}

/// An Update that replaces the resource (a new physical id), then a later resource fails: the
/// rollback sends the old properties to the new id, the cleanup deletes the new id, and the
/// stack's deletion later deletes the old one.
pub fn replacement_rollback(logical_id: &str, old: Value, new: Value) -> Sequence {
    let mut steps = updated_and_back(
        logical_id,
        (&old, &new),
        "updates: a replacement (new id)",
        "a later resource fails: updates the new id back",
    );
    steps.extend([
        step(
            "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS: deletes the new id",
            logical_id,
            delete(Physical::AnsweredBy(1)),
            &new,
        ),
        step(
            "the stack's deletion: deletes the old id",
            logical_id,
            delete(Physical::AnsweredBy(0)),
            &old,
        ),
    ]);
    Sequence {
        name: "replacement rollback",
        steps,
    }
}

/// An update that renames the resource's logical id: the new logical id is created during the
/// update, the old one deleted in `UPDATE_COMPLETE_CLEANUP_IN_PROGRESS`.
pub fn rename(old_logical_id: &str, new_logical_id: &str, properties: Value) -> Sequence {
    Sequence {
        name: "rename",
        steps: vec![
            step("creates", old_logical_id, Request::Create, &properties),
            step(
                "the update creates the new logical id",
                new_logical_id,
                Request::Create,
                &properties,
            ),
            step(
                "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: deletes the old one",
                old_logical_id,
                delete(Physical::AnsweredBy(0)),
                &properties,
            ),
        ],
    }
}

/// A binding's Delete while the stack of the API it writes to is deleted in parallel (the test
/// deletes the API while the Delete is held): its writes answer NotFound.
pub fn delete_while_stack_vanishes(logical_id: &str, properties: Value) -> Sequence {
    Sequence {
        name: "delete while the API's stack vanishes",
        steps: vec![
            step("creates", logical_id, Request::Create, &properties),
            step(
                "deletes while the API goes",
                logical_id,
                delete(Physical::AnsweredBy(0)),
                &properties,
            ),
        ],
    }
}

/// Plays a [`Sequence`], one group of overlapping steps at a time.
#[derive(Debug)]
pub struct Player<'a> {
    sequence: &'a Sequence,
    events: &'a CfnEvents,
    receiver: &'a ResponseReceiver,
    gate: Option<Gate>,
    answers: Vec<Received>,
}

impl<'a> Player<'a> {
    /// A player of `sequence`, its requests built by `events` and answered to `receiver`.
    pub fn new(
        sequence: &'a Sequence,
        events: &'a CfnEvents,
        receiver: &'a ResponseReceiver,
    ) -> Player<'a> {
        Player {
            sequence,
            events,
            receiver,
            gate: None,
            answers: Vec::new(),
        }
    }

    /// The gate the test's proxy rules hold overlapping steps at.
    pub fn holding(mut self, gate: Gate) -> Player<'a> {
        self.gate = Some(gate);
        self
    }

    /// The answers so far, one per step played.
    pub fn answers(&self) -> &[Received] {
        &self.answers
    }

    /// The physical id the answer to step `n` gave.
    pub fn physical_id(&self, n: usize) -> Option<&str> {
        self.answers.get(n)?.field("PhysicalResourceId")
    }

    /// Plays every step left; `send(n, request)` delivers step `n`'s request and returns once it
    /// was handled.
    pub async fn play<F, Fut>(&mut self, send: F) -> Result<&[Received], DevkitError>
    where
        F: Fn(usize, Value) -> Fut,
        Fut: Future<Output = ()>,
    {
        self.play_until(self.sequence.steps.len(), send).await
    }

    /// Plays the steps before step `end` (and the rest of a group of overlapping steps `end`
    /// would cut).
    pub async fn play_until<F, Fut>(
        &mut self,
        end: usize,
        send: F,
    ) -> Result<&[Received], DevkitError>
    where
        F: Fn(usize, Value) -> Fut,
        Fut: Future<Output = ()>,
    {
        let steps = &self.sequence.steps;
        while self.answers.len() < end.min(steps.len()) {
            let first = self.answers.len();
            let last = (first + 1..steps.len())
                .find(|&i| steps[i].timing == Timing::After)
                .unwrap_or(steps.len());
            let ids = self.run(first, last, &send).await?;
            let received = self.receiver.received().await;
            for (n, id) in ids {
                let answer = received
                    .iter()
                    .rev()
                    .find(|r| r.field("RequestId") == Some(id.as_str()))
                    .ok_or_else(|| self.invalid(n, "got no answer"))?;
                self.answers.push(answer.clone());
            }
        }
        Ok(&self.answers)
    }

    /// Sends steps `first..last`, each request built just before it is sent (building one
    /// moves the resource in CloudFormation's view, [`crate::stack_resources`]); answers their
    /// `RequestId`s.
    async fn run<F, Fut>(
        &self,
        first: usize,
        last: usize,
        send: &F,
    ) -> Result<Vec<(usize, String)>, DevkitError>
    where
        F: Fn(usize, Value) -> Fut,
        Fut: Future<Output = ()>,
    {
        let held = self.sequence.steps[first + 1..last]
            .iter()
            .any(|s| s.timing == Timing::WhileHeld);
        if last - first == 1 || held {
            let (id, request) = self.request(first)?;
            let mut ids = vec![(first, id)];
            if last - first == 1 {
                send(first, request).await;
                return Ok(ids);
            }
            let gate = self
                .gate
                .clone()
                .ok_or_else(|| self.invalid(first, "is held, and there is no gate"))?;
            let meanwhile = async {
                let mut ids = Vec::new();
                let arrived = gate.held(1, HOLD_WAIT).await;
                if arrived {
                    for n in first + 1..last {
                        let (id, request) = self.request(n)?;
                        ids.push((n, id));
                        send(n, request).await;
                    }
                }
                gate.open();
                match arrived {
                    true => Ok(ids),
                    false => Err(self.invalid(first, "never arrived at the gate")),
                }
            };
            let ((), rest) = futures::future::join(send(first, request), meanwhile).await;
            ids.extend(rest?);
            return Ok(ids);
        }
        let mut ids = Vec::new();
        let mut requests = Vec::new();
        for n in first..last {
            let (id, request) = self.request(n)?;
            ids.push((n, id));
            requests.push(send(n, request));
        }
        let all = futures::future::join_all(requests);
        let Some(gate) = self.gate.clone() else {
            all.await;
            return Ok(ids);
        };
        let count = last - first;
        let opened = async {
            let arrived = gate.held(count, HOLD_WAIT).await;
            gate.open();
            arrived
        };
        let (_, arrived) = futures::future::join(all, opened).await;
        if !arrived {
            return Err(self.invalid(first, "and its siblings never all arrived at the gate"));
        }
        Ok(ids)
    }

    /// Step `n`'s request and its `RequestId`.
    fn request(&self, n: usize) -> Result<(String, Value), DevkitError> {
        let step = &self.sequence.steps[n];
        let physical = |p: &Physical| match p {
            Physical::AnsweredBy(k) => self
                .physical_id(*k)
                .map(str::to_owned)
                .ok_or_else(|| self.invalid(n, "needs a physical id no earlier answer gave")),
            Physical::MadeUp => {
                // CloudFormation has given up on the Create whose answer it never had.
                self.events.give_up(&step.logical_id);
                Ok(made_up_id(self.events.stack_id(), &step.logical_id))
            }
        };
        let (events, receiver, logical) = (self.events, self.receiver, &step.logical_id);
        let properties = step.properties.clone();
        let request = match &step.request {
            Request::Create => events.create(receiver, logical, properties),
            Request::Update { physical: p, old } => {
                events.update(receiver, logical, &physical(p)?, properties, old.clone())
            }
            Request::Delete { physical: p } => {
                events.delete(receiver, logical, &physical(p)?, properties)
            }
        };
        let id = request["RequestId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok((id, request))
    }

    fn invalid(&self, n: usize, what: &str) -> DevkitError {
        let step = &self.sequence.steps[n];
        DevkitError::Invalid(format!(
            "{}: step {n} ({} {}) {what}",
            self.sequence.name, step.logical_id, step.what
        ))
    }
}

/// An id as CloudFormation makes one up for a resource whose Create never answered:
/// `<stack name>-<logical id>-<12 random upper-case letters and digits>`.
pub fn made_up_id(stack_id: &str, logical_id: &str) -> String {
    let stack = stack_id.split('/').nth(1).unwrap_or(stack_id);
    let mut rng = fastrand::Rng::new();
    let suffix: String = (0..12)
        .map(|_| {
            let c = rng.u8(0..36);
            char::from_digit(u32::from(c), 36)
                .unwrap_or('0')
                .to_ascii_uppercase()
        })
        .collect();
    format!("{stack}-{logical_id}-{suffix}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn every() -> Vec<Sequence> {
        let p = json!({"StageName": "prod"});
        vec![
            stack_create("B", p.clone()),
            sibling_creates(("A", p.clone()), ("B", p.clone())),
            cancelled_create("B", p.clone()),
            timed_out_create("B", p.clone()),
            failed_update_rollback("B", p.clone(), p.clone()),
            replacement_rollback("B", p.clone(), p.clone()),
            rename("Old", "New", p.clone()),
            delete_while_stack_vanishes("B", p),
        ]
    }

    #[test]
    fn every_step_carries_an_id_an_earlier_step_answered_and_overlaps_a_step_before_it() {
        for seq in every() {
            assert_eq!(seq.steps[0].timing, Timing::After, "{}", seq.name);
            for (n, step) in seq.steps.iter().enumerate() {
                let physical = match &step.request {
                    Request::Create => None,
                    Request::Update { physical, .. } | Request::Delete { physical } => {
                        Some(physical)
                    }
                };
                if let Some(Physical::AnsweredBy(k)) = physical {
                    assert!(*k < n, "{}: step {n} needs step {k}'s answer", seq.name);
                }
            }
        }
    }

    #[test]
    fn a_made_up_id_names_the_stack_and_the_logical_id() {
        let id = made_up_id(
            "arn:aws:cloudformation:us-east-1:123456789012:stack/EcsDemoApiStack/0a1b",
            "B",
        );
        let suffix = id.strip_prefix("EcsDemoApiStack-B-").unwrap();
        assert_eq!(suffix.len(), 12, "{id}");
        assert!(suffix
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    }
}
