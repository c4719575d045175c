//! A binding of a private integration: the host name and the VPC link id of one binding,
//! switched together once the new link serves.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{create, trusted, update, BindingError, Request};
use crate::domain::{ApiKind, BindingSpec, LinkStatus, Source, StageRef};
use crate::memory::World;
use crate::ports::op;
use crate::wait::{HealthWait, WaitError};

fn stage() -> StageRef {
    StageRef::new(ApiKind::Rest, "api", "prod")
}

/// `host` the DNS name of load balancer `lb`, `vpcLinkId` the REST link in front of it.
fn private(lb: &str) -> BindingSpec {
    let at = Default::default;
    let nlb = || Source::LoadBalancer {
        name: lb.into(),
        at: at(),
    };
    BindingSpec {
        stage: stage(),
        create_stage: true,
        variables: BTreeMap::from([
            ("host".to_string(), nlb()),
            (
                "vpcLinkId".to_string(),
                Source::VpcLinkFor {
                    target: Box::new(nlb()),
                },
            ),
        ]),
    }
}

fn waiting(ms: u64) -> HealthWait {
    HealthWait {
        enabled: true,
        deadline: Instant::now() + Duration::from_millis(ms),
        interval: Duration::from_millis(10),
    }
}

/// A world where the binding holds `old` and its link `lold`, and `new` with its link `lnew`
/// (in `status`) exist beside them.
async fn bound_to_old(status: LinkStatus) -> (World, crate::Ports, String) {
    let (world, ports) = World::with_ports();
    let old = world.state().add_load_balancer("old", 1);
    let new = world.state().add_load_balancer("new", 1);
    world
        .state()
        .add_rest_link("lold", old.arn.as_ref().unwrap(), LinkStatus::Available);
    world
        .state()
        .add_rest_link("lnew", new.arn.as_ref().unwrap(), status);
    let spec = private("old");
    let request = Request::test("stack/A", "B", &spec, 1);
    let applied = create(&ports, &request, trusted()).await.unwrap();
    assert_eq!(applied.data["vpcLinkId"], "lold");
    (world, ports, applied.physical_id)
}

fn live(world: &World) -> BTreeMap<String, String> {
    world.state().stages[&stage()].clone()
}

#[tokio::test]
async fn host_and_link_move_in_one_write_once_the_new_link_is_available() {
    let (world, ports, id) = bound_to_old(LinkStatus::Pending).await;
    let writes = world.state().count(op::UPDATE_STAGE);
    // The link becomes AVAILABLE at the wait's third read of it.
    world.before(op::REST_VPC_LINK, |_| {});
    world.before(op::REST_VPC_LINK, |_| {});
    world.before(op::REST_VPC_LINK, |s| {
        s.set_link_status("lnew", LinkStatus::Available)
    });
    let spec = private("new");
    let mut request = Request::test("stack/A", "B", &spec, 2);
    request.wait = waiting(5000);
    let applied = update(&ports, &request, &id, trusted()).await.unwrap();
    assert_eq!(applied.data["vpcLinkId"], "lnew");
    let stage = live(&world);
    assert_eq!(stage["vpcLinkId"], "lnew");
    assert_eq!(stage["host"], "new-1.us-east-1.elb.amazonaws.com");
    assert_eq!(
        world.state().count(op::UPDATE_STAGE),
        writes + 1,
        "one write"
    );
    assert_eq!(world.state().count(op::REST_VPC_LINK), 3);
}

#[tokio::test]
async fn a_link_that_stays_pending_keeps_both_variables() {
    let (world, ports, id) = bound_to_old(LinkStatus::Pending).await;
    let before = live(&world);
    let spec = private("new");
    let mut request = Request::test("stack/A", "B", &spec, 2);
    request.wait = waiting(300);
    let e = update(&ports, &request, &id, trusted()).await.unwrap_err();
    let BindingError::NotServing(WaitError::NotServing { held, .. }) = &e else {
        panic!("{e}");
    };
    assert_eq!(held.len(), 1);
    assert!(held[0].on_link && held[0].new_lb == "lnew" && held[0].current_lb == "lold");
    assert!(e.to_string().contains("VPC link lnew is PENDING"), "{e}");
    assert_eq!(live(&world), before, "neither variable moved");
}

#[tokio::test]
async fn a_failed_link_fails_the_binding_with_its_message_at_once() {
    for status in [LinkStatus::Failed, LinkStatus::Inactive] {
        let (world, ports, id) = bound_to_old(status.clone()).await;
        let before = live(&world);
        let spec = private("new");
        let mut request = Request::test("stack/A", "B", &spec, 2);
        request.wait = waiting(5000);
        let started = Instant::now();
        let e = update(&ports, &request, &id, trusted()).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("variable vpcLinkId: VPC link lnew is {status}: link lnew is {status}")
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(live(&world), before);
    }
}

#[tokio::test]
async fn a_create_with_a_failed_link_is_refused() {
    let (world, ports) = World::with_ports();
    let nlb = world.state().add_load_balancer("nlb", 1);
    world
        .state()
        .add_rest_link("l1", nlb.arn.as_ref().unwrap(), LinkStatus::Failed);
    let spec = private("nlb");
    let mut request = Request::test("stack/A", "B", &spec, 1);
    request.wait = waiting(5000);
    let e = create(&ports, &request, trusted()).await.unwrap_err();
    assert!(e.to_string().contains("VPC link l1 is FAILED"), "{e}");
}

/// A binding of `vpcLinkId` to the output `Link` of stack `S`, which holds `old` (a v2 link).
async fn bound_to_v2_output(world: &World, ports: &crate::Ports) -> (BindingSpec, String) {
    {
        let mut s = world.state();
        s.add_v2_link("v2old", LinkStatus::Available);
        s.stacks.insert(
            "S".into(),
            BTreeMap::from([("Link".to_string(), "v2old".to_string())]),
        );
    }
    let spec = BindingSpec {
        stage: stage(),
        create_stage: true,
        variables: BTreeMap::from([(
            "vpcLinkId".to_string(),
            Source::StackOutput {
                stack: "S".into(),
                output_key: "Link".into(),
                at: Default::default(),
            },
        )]),
    };
    let request = Request::test("stack/A", "B", &spec, 1);
    let applied = create(ports, &request, trusted()).await.unwrap();
    (spec, applied.physical_id)
}

#[tokio::test]
async fn a_v2_link_id_from_a_stack_output_waits_for_available_and_refuses_inactive() {
    let (world, ports) = World::with_ports();
    let (spec, id) = bound_to_v2_output(&world, &ports).await;
    {
        let mut s = world.state();
        s.add_v2_link("v2new", LinkStatus::Pending);
        s.add_v2_link("v2dead", LinkStatus::Inactive);
        s.stacks
            .get_mut("S")
            .unwrap()
            .insert("Link".into(), "v2new".into());
    }
    // PENDING while the current link serves: held until the deadline, nothing written.
    let mut request = Request::test("stack/A", "B", &spec, 2);
    request.wait = waiting(200);
    let e = update(&ports, &request, &id, trusted()).await.unwrap_err();
    assert!(e.to_string().contains("VPC link v2new is PENDING"), "{e}");
    assert_eq!(live(&world)["vpcLinkId"], "v2old");
    // AVAILABLE at the wait's second read: switched.
    world.before(op::V2_VPC_LINK, |_| {});
    world.before(op::V2_VPC_LINK, |s| {
        s.set_link_status("v2new", LinkStatus::Available)
    });
    request.wait = waiting(5000);
    update(&ports, &request, &id, trusted()).await.unwrap();
    assert_eq!(live(&world)["vpcLinkId"], "v2new");
    // INACTIVE: refused at once with the link's message.
    world
        .state()
        .stacks
        .get_mut("S")
        .unwrap()
        .insert("Link".into(), "v2dead".into());
    request.wait = waiting(5000);
    let e = update(&ports, &request, &id, trusted()).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "variable vpcLinkId: VPC link v2dead is INACTIVE: link v2dead is INACTIVE"
    );
    assert_eq!(live(&world)["vpcLinkId"], "v2new");
}
