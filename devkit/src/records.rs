//! Registry records as stagewire stores them, for loading a registry straight: the crowd of
//! other bindings that the tests and the bench put around the ones they watch.

use stagewire::domain::{ApiKind, Owner, Source, StageRef};
use stagewire::ports::Record;

/// The record of `(stage, variable)` as the registry holds it once stagewire wrote `value` (at
/// time 0, its first version), owned by `owner` and fed by `source`.
pub fn written(
    (stage, variable): (StageRef, String),
    owner: Owner,
    source: Source,
    value: &str,
) -> Record {
    Record {
        stage,
        variable,
        owner,
        source,
        value: Some(value.to_string()),
        written_at: Some(0),
        via: None,
        created_stage: false,
        last_error: None,
        checked_at: None,
        version: 1,
    }
}

/// Filler binding `i` of many over `stages` stages of fictitious REST APIs (ten stages an
/// API), owned by a resource of `owner_stack` and bound to the `EcsElbDnsName` output of one
/// of 100 other stacks.
pub fn filler(i: usize, stages: usize, owner_stack: &str) -> Record {
    let stage_no = i % stages;
    let stage = StageRef::new(
        ApiKind::Rest,
        format!("filler{}", stage_no / 10),
        format!("s{stage_no}"),
    );
    let owner = Owner {
        stack_id: owner_stack.to_string(),
        logical_id: format!("Filler{stage_no}"),
        physical_id: format!("filler-{stage_no}"),
    };
    let source = Source::StackOutput {
        stack: format!("FillerStack{}", i % 100),
        output_key: "EcsElbDnsName".into(),
        at: Default::default(),
    };
    let value = format!("filler-{i}.{}.elb.amazonaws.com", crate::moto::REGION);
    written((stage, format!("v{}", i / stages)), owner, source, &value)
}
