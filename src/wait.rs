//! Waiting for a load balancer to serve before a variable is switched to it.
//!
//! The custom resource asks the switch rule ([`crate::plan::switch`]) as the re-sync does. Where
//! the re-sync defers and tries again on the next event, a Create or Update cannot: CloudFormation
//! waits for its answer (and deletes a replaced load balancer only after it). So the binding
//! polls every [`HealthWait::interval`] (is the current load balancer still there, does the new
//! one serve, does the current one still serve) until the rule lets every variable move, or the
//! work deadline is near; then it fails with a Reason, having written nothing. A current load
//! balancer deleted or serving nobody protects nobody: the switch then happens at once.
//!
//! The rule applies to every value that is a load balancer's DNS name, whatever its source: a
//! literal or a stack output is looked up among the account's load balancers by DNS name. It
//! applies as well to a value that is a VPC link's id (from `VpcLinkFor` or a stack output):
//! the wait re-reads the link until it is `AVAILABLE` (and a REST link's load balancer has a
//! healthy target), and a link `FAILED`, `INACTIVE` or gone fails the binding with the link's
//! own status message. Every variable of the binding is written in the one write after the
//! wait, so variables that move together (a host name and a link id) move in one write.

/// CloudWatch Embedded Metric Format for health waits of the `stage-binding` function.
pub mod metrics;
mod probe;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::Place;
use crate::plan::switch::{self, Decision, Target};
use crate::ports::LoadBalancer;
use crate::resolve::{ResolveError, Resolved, Resolver};
use crate::Ports;
use probe::{current_now, exists, look, probe, refuse_broken, target, Probe};

/// The default pause between two health checks of a load balancer being waited for: the new
/// load balancer's targets are looked at every second, so a switch follows its first healthy
/// target within about a second.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Every how many rounds the current load balancer is looked at too (still there? still
/// serving?). With the default interval a held switch spends about 2.6 ELB `Describe*` calls a
/// second (2 for the new load balancer's health each round, 3 more every fifth round), a
/// quarter of the 10 a second ELB refills an account's `Describe*` bucket with.
const CURRENT_EVERY: usize = 5;

/// Time kept back after the wait for the writes that follow it: a quarter of the time left,
/// at most this much.
const MAX_WRITE_RESERVE: Duration = Duration::from_secs(3);

/// How a create or update waits for new load balancers to serve.
#[derive(Debug, Clone, Copy)]
pub struct HealthWait {
    /// Whether to wait at all (`WaitForHealthyTargets`, default true). Without waiting, a
    /// variable switches at once, healthy targets or not.
    pub enabled: bool,
    /// The work deadline: the wait ends early enough to write and answer before it.
    pub deadline: Instant,
    /// Pause between two health checks.
    pub interval: Duration,
}

impl HealthWait {
    /// Wait until `deadline`, checking every [`DEFAULT_INTERVAL`].
    pub fn until(deadline: Instant) -> Self {
        HealthWait {
            enabled: true,
            deadline,
            interval: DEFAULT_INTERVAL,
        }
    }

    /// Never wait.
    pub fn off() -> Self {
        HealthWait {
            enabled: false,
            deadline: Instant::now(),
            interval: DEFAULT_INTERVAL,
        }
    }

    /// When the wait gives up: the deadline less the time the writes after it need.
    fn give_up_at(&self, now: Instant) -> Instant {
        let left = self.deadline.saturating_duration_since(now);
        self.deadline - (left / 4).min(MAX_WRITE_RESERVE)
    }
}

/// Where health waits report, for the whole process: the `stage-binding` function's EMF metric
/// on stdout (the default), and progress to an observer (the CLI writes it to stderr).
#[derive(Debug, Clone, Copy)]
pub struct Reporting {
    /// Print each wait's EMF metric line on stdout.
    pub metrics: bool,
    /// Told when a wait starts and after each round of health checks: the variables still held
    /// and the time waited so far.
    pub progress: Option<fn(&[Held], Duration)>,
}

static REPORTING: OnceLock<Reporting> = OnceLock::new();

/// Set how waits report, once per process; answers false (and changes nothing) when already set.
pub fn report_to(reporting: Reporting) -> bool {
    REPORTING.set(reporting).is_ok()
}

fn reporting() -> Reporting {
    REPORTING.get().copied().unwrap_or(Reporting {
        metrics: true,
        progress: None,
    })
}

fn progress(held: &[Pending], start: Instant) {
    if let Some(tell) = reporting().progress {
        let held: Vec<Held> = held.iter().map(|(h, _, _, _)| h.clone()).collect();
        tell(&held, start.elapsed());
    }
}

/// A variable held back until its new target (load balancer or VPC link) serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub variable: String,
    /// The load balancer (or VPC link) behind the new value.
    pub new_lb: String,
    /// The load balancer (or VPC link) behind the current value, which serves.
    pub current_lb: String,
    /// Why the new one does not serve, as the switch rule says it.
    pub why: String,
    /// Whether the new target is a VPC link (else a load balancer).
    pub on_link: bool,
}

/// Why the wait did not end with every new load balancer serving.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("{}", not_serving(.held, *.waited))]
    NotServing { held: Vec<Held>, waited: Duration },
    /// The new value is a VPC link that cannot serve.
    #[error("variable {variable}: {broken}")]
    Refused {
        variable: String,
        broken: switch::Broken,
    },
    #[error("could not check the target health of load balancer {load_balancer}: {source}")]
    Check {
        load_balancer: String,
        #[source]
        source: ResolveError,
    },
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "variable {}: {}; the stage keeps {}, which still serves",
            self.variable, self.why, self.current_lb
        )
    }
}

/// Every held switch, as one sentence per variable.
pub fn describe(held: &[Held]) -> String {
    let parts: Vec<String> = held.iter().map(Held::to_string).collect();
    parts.join("; ")
}

fn not_serving(held: &[Held], waited: Duration) -> String {
    format!(
        "{} (waited {:.1}s). Register healthy targets with the new load balancer (a new VPC link becomes AVAILABLE within minutes), give the wait more time with ServiceTimeout, or set WaitForHealthyTargets: false to switch without waiting",
        describe(held),
        waited.as_secs_f64()
    )
}

/// A wait that ended with every held variable free to switch: its new target serves, or the
/// one it was held on has been deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waited {
    pub held: Vec<Held>,
    pub duration: Duration,
    /// Health checks of the new load balancers.
    pub checks: usize,
    /// The current load balancers found deleted while waiting: their variables switch at once.
    pub gone: Vec<String>,
}

impl fmt::Display for Waited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .held
            .iter()
            .filter(|h| !self.gone.contains(&h.current_lb))
            .map(|h| h.new_lb.as_str())
            .collect();
        let secs = self.duration.as_secs_f64();
        if !names.is_empty() {
            write!(f, "{} served after {secs:.1}s", names.join(", "))?;
        }
        if !self.gone.is_empty() {
            let sep = if names.is_empty() { "" } else { "; " };
            write!(
                f,
                "{sep}{} deleted after {secs:.1}s: switched without waiting",
                self.gone.join(", ")
            )?;
        }
        Ok(())
    }
}

/// A held switch: what is held, the new and the current target, and where they live.
type Pending = (Held, Probe, Probe, Place);

/// Hold the switch of each variable in `changes` (variable to new value) that the switch rule
/// holds (its current value in `live` is the DNS name of a load balancer with a healthy target,
/// or the id of a VPC link that serves, while the new value's target does not serve), until
/// the rule lets every one move: the variables of a binding move together, in the one write
/// that follows. `resolved` gives the load balancer a source resolved through, when it did,
/// and whether its value may be a VPC link's id. `Ok(None)`: nothing to wait for. A new
/// value that is a VPC link that cannot serve fails at once ([`WaitError::Refused`]).
pub async fn until_serving(
    ports: &Ports,
    resolver: &mut Resolver<'_>,
    live: &BTreeMap<String, String>,
    changes: &BTreeMap<String, String>,
    resolved: &BTreeMap<String, Resolved>,
    wait: &HealthWait,
) -> Result<Option<Waited>, WaitError> {
    if !wait.enabled {
        return Ok(None);
    }
    let start = Instant::now();
    let mut held = holds(resolver, live, changes, resolved).await?;
    if held.is_empty() {
        return Ok(None);
    }
    let give_up = wait.give_up_at(start);
    let all: Vec<Held> = held.iter().map(|(h, _, _, _)| h.clone()).collect();
    tracing::info!(held = ?all, interval_ms = wait.interval.as_millis() as u64, "waiting for healthy targets before switching");
    let mut polls = Polls::default();
    loop {
        progress(&held, start);
        if Instant::now() + wait.interval > give_up {
            let waited = start.elapsed();
            metrics::emit(all.len(), waited, false);
            return Err(WaitError::NotServing {
                held: held.into_iter().map(|(h, _, _, _)| h).collect(),
                waited,
            });
        }
        tokio::time::sleep(wait.interval).await;
        held = polls.round(ports, held, give_up).await?;
        if held.is_empty() {
            let duration = start.elapsed();
            metrics::emit(all.len(), duration, true);
            return Ok(Some(Waited {
                held: all,
                duration,
                checks: polls.checks,
                gone: polls.gone,
            }));
        }
    }
}

/// The switches the rule holds now, among `changes`.
async fn holds(
    resolver: &mut Resolver<'_>,
    live: &BTreeMap<String, String>,
    changes: &BTreeMap<String, String>,
    resolved: &BTreeMap<String, Resolved>,
) -> Result<Vec<Pending>, WaitError> {
    let mut held = Vec::new();
    for (variable, new_value) in changes {
        let r = resolved.get(variable);
        let known = r.and_then(|r| r.load_balancer.clone());
        let link = r.is_some_and(|r| r.may_be_link);
        // The load balancers of the source's account and region.
        let at = r.map(|r| r.at.clone()).unwrap_or_default();
        let Some(current) = live.get(variable) else {
            // A new variable: nothing serves through it yet, but a link that cannot serve is
            // refused all the same.
            refuse_broken(resolver, variable, new_value, link).await?;
            continue;
        };
        let sides = Sides {
            current,
            new_value,
            known,
            link,
        };
        if let Some((h, new, current)) = hold(resolver, &at, variable, sides).await? {
            held.push((h, new, current, at));
        }
    }
    Ok(held)
}

/// What the polls of one wait found: health checks made, current targets deleted.
#[derive(Default)]
struct Polls {
    rounds: usize,
    checks: usize,
    gone: Vec<String>,
}

impl Polls {
    /// One round: each held switch asks the rule again with what ELB and API Gateway say now;
    /// answers those still held.
    async fn round(
        &mut self,
        ports: &Ports,
        held: Vec<Pending>,
        give_up: Instant,
    ) -> Result<Vec<Pending>, WaitError> {
        self.rounds += 1;
        let whole = self.rounds.is_multiple_of(CURRENT_EVERY);
        let mut still = Vec::with_capacity(held.len());
        for (h, new, current, at) in held {
            let name = current.name().to_string();
            let gone = whole && (self.gone.contains(&name) || !exists(ports, &at, &current).await);
            if gone {
                tracing::warn!(variable = %h.variable, current = %name, new = %new.name(), "the current target was deleted: switching without waiting");
                if !self.gone.contains(&name) {
                    self.gone.push(name);
                }
                continue;
            }
            self.checks += 1;
            let now = match tokio::time::timeout_at(give_up, look(ports, &at, &new)).await {
                Ok(Ok(target)) => target,
                Err(_) => Target::new(new.name(), false),
                Ok(Err(source)) => {
                    let load_balancer = new.name().to_string();
                    return Err(WaitError::Check {
                        load_balancer,
                        source,
                    });
                }
            };
            // Between the rounds that look at it, the current target serves as it did.
            let current_now = match whole {
                true => current_now(ports, &at, &current, &now).await,
                false => Some(Target::new(name.clone(), true)),
            };
            match switch::decide(current_now.as_ref(), Some(&now)) {
                Decision::Now => {
                    tracing::info!(new = %new.name(), current = %name, "the switch rule lets the variable move")
                }
                Decision::Hold(_) => still.push((h, new, current, at)),
                Decision::Refuse(broken) => {
                    let variable = h.variable;
                    return Err(WaitError::Refused { variable, broken });
                }
            }
        }
        Ok(still)
    }
}

/// The two values of a variable about to change, and what is known of the new one.
struct Sides<'a> {
    current: &'a str,
    new_value: &'a str,
    /// The load balancer the new value's source resolved through.
    known: Option<LoadBalancer>,
    /// Whether the values may be VPC link ids.
    link: bool,
}

/// Whether switching `variable` from its current value to the new one must wait, and for
/// which targets.
async fn hold(
    resolver: &mut Resolver<'_>,
    at: &Place,
    variable: &str,
    sides: Sides<'_>,
) -> Result<Option<(Held, Probe, Probe)>, WaitError> {
    let (value, known) = (sides.new_value, sides.known.clone());
    let Some(new) = target(resolver, at, value, known, sides.link).await? else {
        return Ok(None); // neither a load balancer's DNS name nor a link's id
    };
    if !switch::may_hold(Some(&new)) {
        return Ok(None);
    }
    let current = target(resolver, at, sides.current, None, sides.link).await?;
    let known = sides.known.as_ref();
    match switch::decide(current.as_ref(), Some(&new)) {
        Decision::Now => Ok(None),
        Decision::Refuse(broken) => Err(WaitError::Refused {
            variable: variable.to_string(),
            broken,
        }),
        Decision::Hold(held) => {
            let is_link = new.link.is_some();
            let new_probe = probe(resolver, at, value, known.cloned(), is_link).await;
            let is_link = current.as_ref().is_some_and(|c| c.link.is_some());
            let current_probe = probe(resolver, at, sides.current, None, is_link).await;
            let check = |source| WaitError::Check {
                load_balancer: held.new.clone(),
                source,
            };
            let (new_probe, current_probe) =
                (new_probe.map_err(check)?, current_probe.map_err(check)?);
            // Both were found just now through the same remembered reads; a target that is
            // not there protects nobody and holds nothing.
            let (Some(new_probe), Some(current_probe)) = (new_probe, current_probe) else {
                return Ok(None);
            };
            let held = Held {
                variable: variable.to_string(),
                new_lb: held.new,
                current_lb: held.current,
                why: held.why,
                on_link: new.link.is_some(),
            };
            Ok(Some((held, new_probe, current_probe)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::World;
    use crate::ports::{op, ErrorKind};

    const MS: Duration = Duration::from_millis(1);

    fn wait(ms: u64) -> HealthWait {
        HealthWait {
            enabled: true,
            deadline: Instant::now() + MS * ms as u32,
            interval: MS * 20,
        }
    }

    /// A world with `old` serving (one healthy target) and `new` serving nobody yet.
    fn serving_old_and_idle_new() -> (World, LoadBalancer, LoadBalancer) {
        let world = World::new();
        let old = world.state().add_load_balancer("old", 1);
        let new = world.state().add_load_balancer("new", 0);
        (world, old, new)
    }

    fn dns(lb: &LoadBalancer) -> String {
        lb.dns_name.clone().unwrap()
    }

    async fn run(
        world: &World,
        current: &str,
        new: &str,
        w: HealthWait,
    ) -> Result<Option<Waited>, WaitError> {
        let ports = world.ports();
        let mut resolver = Resolver::new(&ports);
        let live = BTreeMap::from([("v".to_string(), current.to_string())]);
        let changes = BTreeMap::from([("v".to_string(), new.to_string())]);
        until_serving(&ports, &mut resolver, &live, &changes, &BTreeMap::new(), &w).await
    }

    #[tokio::test]
    async fn a_healthy_new_load_balancer_is_switched_to_without_waiting() {
        let world = World::new();
        let old = world.state().add_load_balancer("old", 2);
        let new = world.state().add_load_balancer("new", 1);
        let r = run(&world, &dns(&old), &dns(&new), wait(1000)).await;
        assert_eq!(r.unwrap(), None);
        assert_eq!(world.state().count(op::TARGET_HEALTH), 1);
    }

    #[tokio::test]
    async fn waits_until_the_new_load_balancer_has_a_healthy_target() {
        let world = World::new();
        let old = world.state().add_load_balancer("old", 2);
        let new = world.state().add_load_balancer("new", 0);
        let arn = new.arn.clone().unwrap();
        // Healthy from the third check on (the first is the resolver's).
        world.before(op::TARGET_HEALTH, |_| {});
        world.before(op::TARGET_HEALTH, |_| {});
        world.before(op::TARGET_HEALTH, |_| {});
        world.before(op::TARGET_HEALTH, move |s| {
            s.healthy.insert(arn, 1);
        });
        let started = Instant::now();
        let waited = run(&world, &dns(&old), &dns(&new), wait(5000))
            .await
            .unwrap()
            .expect("it waited");
        assert_eq!(
            waited.held,
            vec![Held {
                variable: "v".into(),
                new_lb: "new".into(),
                current_lb: "old".into(),
                why: "load balancer new has no healthy target yet".into(),
                on_link: false,
            }]
        );
        // Checks of the new one: the first (no), then paced ones until the one that serves.
        assert_eq!(waited.checks, 2);
        assert!(waited.gone.is_empty());
        assert!(started.elapsed() >= MS * 40, "{:?}", started.elapsed());
        // The old one is looked at only every fifth round: not in a wait of one round.
        assert_eq!(world.state().count(op::LOAD_BALANCER_V2), 0);
    }

    #[tokio::test]
    async fn stops_waiting_and_switches_when_the_old_load_balancer_is_deleted() {
        let (world, old, new) = serving_old_and_idle_new();
        // The resolver checks the new one, then the old one; the old one is deleted during the
        // first paced check of the new one, which never gets a healthy target.
        world.before(op::TARGET_HEALTH, |_| {});
        world.before(op::TARGET_HEALTH, |_| {});
        world.before(op::TARGET_HEALTH, |s| s.remove_load_balancer("old"));
        let w = wait(5000);
        let started = Instant::now();
        let waited = run(&world, &dns(&old), &dns(&new), w)
            .await
            .expect("no error")
            .expect("it waited");
        assert_eq!(waited.gone, vec!["old".to_string()]);
        // The new one is checked each round until the round that looks at the old one finds it
        // gone; no health check after that.
        assert_eq!(waited.checks, CURRENT_EVERY - 1);
        // Switched on the round that looked, not at the give-up time; that one round asked.
        assert!(started.elapsed() < MS * 1000, "{:?}", started.elapsed());
        assert_eq!(world.state().count(op::LOAD_BALANCER_V2), 1);
        assert_eq!(
            waited.to_string().split(" after ").next(),
            Some("old deleted")
        );
    }

    #[tokio::test]
    async fn an_unanswered_existence_check_keeps_waiting() {
        let (world, old, new) = serving_old_and_idle_new();
        world.fail(op::LOAD_BALANCER_V2, ErrorKind::Throttled, 100);
        let err = run(&world, &dns(&old), &dns(&new), wait(300))
            .await
            .unwrap_err();
        assert!(matches!(err, WaitError::NotServing { .. }), "{err}");
    }

    #[tokio::test]
    async fn gives_up_before_the_deadline_naming_both_load_balancers() {
        let (world, old, new) = serving_old_and_idle_new();
        let w = wait(400);
        let err = run(&world, &dns(&old), &dns(&new), w).await.unwrap_err();
        assert!(Instant::now() < w.deadline, "gave up before the deadline");
        let text = err.to_string();
        for needle in [
            "variable v",
            "load balancer new has no healthy target",
            "keeps old",
            "WaitForHealthyTargets: false",
        ] {
            assert!(text.contains(needle), "{text} lacks {needle}");
        }
        // Paced: each interval checks the new load balancer, then the current one (the rule
        // holds only while it serves), not a busy loop.
        let checks = world.state().count(op::TARGET_HEALTH);
        assert!((10..=40).contains(&checks), "{checks} checks");
    }

    #[tokio::test]
    async fn a_current_load_balancer_that_stops_serving_during_the_wait_lets_the_switch_happen() {
        let (world, old, new) = serving_old_and_idle_new();
        let arn = old.arn.clone().unwrap();
        // The resolver's two checks (new, current), then the first paced check of the new one;
        // before the paced check of the current one, its last target goes.
        for _ in 0..3 {
            world.before(op::TARGET_HEALTH, |_| {});
        }
        world.before(op::TARGET_HEALTH, move |s| {
            s.healthy.insert(arn, 0);
        });
        let waited = run(&world, &dns(&old), &dns(&new), wait(5000))
            .await
            .unwrap()
            .expect("it waited");
        assert!(waited.duration < Duration::from_secs(1), "{waited:?}");
        // The resolver's two, the new one's each round, the current one's on the fifth.
        assert_eq!(
            world.state().count(op::TARGET_HEALTH),
            2 + CURRENT_EVERY + 1
        );
    }

    #[tokio::test]
    async fn nothing_to_protect_means_no_wait() {
        let world = World::new();
        let sick = world.state().add_load_balancer("sick", 0);
        let new = world.state().add_load_balancer("new", 0);
        // The current load balancer has no healthy target either.
        assert_eq!(
            run(&world, &dns(&sick), &dns(&new), wait(1000))
                .await
                .unwrap(),
            None
        );
        // The current value is no load balancer (gone, or a literal).
        assert_eq!(
            run(&world, "gone.example.com", &dns(&new), wait(1000))
                .await
                .unwrap(),
            None
        );
        // The new value is no load balancer.
        let old = world.state().add_load_balancer("old", 1);
        assert_eq!(
            run(&world, &dns(&old), "v2", wait(1000)).await.unwrap(),
            None
        );
        // Turned off.
        assert_eq!(
            run(&world, &dns(&old), &dns(&new), HealthWait::off())
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_failing_health_check_is_reported_with_its_cause() {
        let (world, old, new) = serving_old_and_idle_new();
        world.fail(op::TARGET_HEALTH, ErrorKind::AccessDenied, 1);
        let err = run(&world, &dns(&old), &dns(&new), wait(1000))
            .await
            .unwrap_err();
        assert!(
            matches!(err, WaitError::Check { ref load_balancer, .. } if load_balancer == "new"),
            "{err}"
        );
    }

    mod through_a_binding {
        use super::*;
        use crate::binding;
        use crate::domain::{ApiKind, BindingSpec, Source, StageRef};

        fn stage() -> StageRef {
            StageRef::new(ApiKind::Rest, "api", "prod")
        }

        fn spec() -> BindingSpec {
            BindingSpec {
                stage: stage(),
                create_stage: true,
                variables: BTreeMap::from([(
                    "elb".to_string(),
                    Source::StackOutput {
                        stack: "Ecs".into(),
                        output_key: "Dns".into(),
                        at: Default::default(),
                    },
                )]),
            }
        }

        /// A binding to the stack output `Ecs.Dns`, bound to a serving `old`; then the output
        /// moves to `new` with no healthy target.
        async fn replaced(world: &World) -> (Ports, String, LoadBalancer) {
            let old = world.state().add_load_balancer("old", 1);
            world.state().stacks.insert(
                "Ecs".into(),
                BTreeMap::from([("Dns".to_string(), dns(&old))]),
            );
            let ports = world.ports();
            let a = binding::create(
                &ports,
                &binding::Request {
                    wait: wait(1000),
                    ..binding::Request::test("s", "B", &spec(), 1)
                },
                binding::trusted(),
            )
            .await
            .unwrap();
            let new = world.state().add_load_balancer("new", 0);
            world.state().stacks.insert(
                "Ecs".into(),
                BTreeMap::from([("Dns".to_string(), dns(&new))]),
            );
            (ports, a.physical_id, new)
        }

        fn live(world: &World) -> String {
            world.state().stages[&stage()]["elb"].clone()
        }

        /// The binding's Update from `id` to the same spec (its output now points elsewhere).
        async fn update(
            ports: &Ports,
            id: &str,
            wait: HealthWait,
        ) -> Result<binding::Applied, binding::BindingError> {
            let spec = spec();
            let request = binding::Request {
                wait,
                ..binding::Request::test("s", "B", &spec, 2)
            };
            binding::update(ports, &request, id, binding::trusted()).await
        }

        #[tokio::test]
        async fn an_update_switches_once_the_new_load_balancer_serves() {
            let world = World::new();
            let (ports, id, new) = replaced(&world).await;
            let arn = new.arn.clone().unwrap();
            for _ in 0..3 {
                world.before(op::TARGET_HEALTH, |_| {});
            }
            world.before(op::TARGET_HEALTH, move |s| {
                s.healthy.insert(arn, 2);
            });
            world.before(op::CLAIM, |s| {
                assert_eq!(
                    s.stages[&stage()]["elb"],
                    "old-1.us-east-1.elb.amazonaws.com"
                );
            });
            update(&ports, &id, wait(5000)).await.unwrap();
            assert_eq!(live(&world), dns(&new));
        }

        #[tokio::test]
        async fn an_update_that_never_serves_fails_and_writes_nothing() {
            let world = World::new();
            let (ports, id, _) = replaced(&world).await;
            let before = ports.registry.all().await.unwrap();
            let err = update(&ports, &id, wait(300)).await.unwrap_err();
            assert!(matches!(err, binding::BindingError::NotServing(_)), "{err}");
            assert_eq!(live(&world), "old-1.us-east-1.elb.amazonaws.com");
            assert_eq!(ports.registry.all().await.unwrap(), before);
            assert_eq!(world.state().count(op::UPDATE_STAGE), 0);
        }

        #[tokio::test]
        async fn an_update_switches_at_once_when_the_old_load_balancer_is_deleted() {
            let world = World::new();
            let (ports, id, new) = replaced(&world).await;
            // Deleted before the first existence check; the new one never gets a target.
            world.before(op::LOAD_BALANCER_V2, |s| s.remove_load_balancer("old"));
            let started = Instant::now();
            update(&ports, &id, wait(5000)).await.unwrap();
            assert_eq!(live(&world), dns(&new));
            assert!(started.elapsed() < MS * 1000, "{:?}", started.elapsed());
        }

        #[tokio::test]
        async fn turned_off_the_switch_is_immediate() {
            let world = World::new();
            let (ports, id, new) = replaced(&world).await;
            update(&ports, &id, HealthWait::off()).await.unwrap();
            assert_eq!(live(&world), dns(&new));
        }
    }

    #[test]
    fn every_declared_metric_has_a_value() {
        let doc = metrics::document(2, Duration::from_millis(1500), false, 1);
        for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            let name = m["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{name} has no value");
        }
        assert_eq!(doc["HealthWaitTimeouts"], 1);
        assert_eq!(doc["HealthWaitDuration"], 1500);
    }
}
