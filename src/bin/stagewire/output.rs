//! What the commands share on output: plans, the end of a dry run, and text tables that fit a
//! terminal.

use std::collections::BTreeMap;

use stagewire::domain::{Source, StageRef};
use stagewire::plan::bind::{pending, VarStep};

use crate::fail::{Failure, EXIT_FAILURE, EXIT_OK, EXIT_PENDING};
use crate::Ctx;

/// The widest a table gets without `--wide`.
pub const MAX_WIDTH: usize = 120;

/// The stage's variables now; `None` when the stage (or its API) does not exist.
pub async fn read_stage(
    ctx: &Ctx,
    stage: &StageRef,
) -> Result<Option<BTreeMap<String, String>>, Failure> {
    ctx.ports
        .stages(stage.kind)
        .get(stage)
        .await
        .map(|live| live.map(|l| l.variables))
        .map_err(|e| Failure::caused(format!("could not read {stage}"), e))
}

/// One line per variable of a plan.
pub fn print_steps(steps: &[VarStep]) {
    for s in steps {
        println!("  {s}");
    }
}

/// The last line of a dry run and its exit status: 1 when the change would be refused, 2 when
/// something would be written, 0 when nothing.
pub fn dry_run_end(steps: &[VarStep], stage_change: bool, refused: bool) -> u8 {
    let n = steps.iter().filter(|s| s.step.is_change()).count();
    if refused {
        println!("dry run: refused, nothing written");
        return EXIT_FAILURE;
    }
    println!("dry run: {n} change(s) planned, nothing written");
    if pending(steps) || stage_change {
        EXIT_PENDING
    } else {
        EXIT_OK
    }
}

/// A text table: columns padded to their widest cell, the last one not padded. Unless `wide`,
/// the widest columns are cut (with `…`) until a line fits [`MAX_WIDTH`].
pub fn table(header: &[&str], rows: &[Vec<String>], wide: bool) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    if !wide {
        fit(&mut widths, MAX_WIDTH);
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            let c = cut(c, widths[i]);
            if i == last {
                s.push_str(c.trim_end());
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Narrow the widest column, one character at a time, until the columns and their two-space
/// gaps fit `max` (no column below 8 characters).
fn fit(widths: &mut [usize], max: usize) {
    const MIN: usize = 8;
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    while total(widths) > max {
        let Some((i, w)) = widths.iter().enumerate().max_by_key(|(_, w)| **w) else {
            return;
        };
        if *w <= MIN {
            return;
        }
        widths[i] -= 1;
    }
}

/// `s` cut to `width` characters, ending in `…` when cut.
fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let kept: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// A source as `bind --var` takes it, with names rather than ARNs (`stack:EcsOrders/EcsElbDnsName`).
pub fn short_source(source: &Source) -> String {
    // The name in an ARN: a stack's `stack/NAME/uuid`, a load balancer's `app/NAME/id`, a
    // cluster's `cluster/NAME`.
    let name = |s: &str| -> String {
        match s.strip_prefix("arn:") {
            None => s.to_string(),
            Some(rest) => {
                let resource = rest.splitn(5, ':').nth(4).unwrap_or(rest);
                let parts: Vec<&str> = resource.split('/').collect();
                match parts.as_slice() {
                    ["stack", n, ..] | ["cluster", n] | ["loadbalancer", _, n, ..] => n.to_string(),
                    _ => resource.to_string(),
                }
            }
        }
    };
    let region = |at: &stagewire::domain::Place| {
        at.region
            .as_deref()
            .map(|r| format!("@{r}"))
            .unwrap_or_default()
    };
    match source {
        Source::StackOutput {
            stack,
            output_key,
            at,
        } => {
            format!("stack:{}/{output_key}{}", name(stack), region(at))
        }
        Source::EcsService {
            cluster,
            service,
            at,
            ..
        } => {
            format!("ecs:{}/{service}{}", name(cluster), region(at))
        }
        Source::LoadBalancer { name: lb, at } => format!("lb:{}{}", name(lb), region(at)),
        Source::Literal { value } => format!("value:{value}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_sources_use_names_not_arns() {
        let stack = Source::StackOutput {
            stack: "arn:aws:cloudformation:us-east-1:123456789012:stack/EcsOrders/1a2b".into(),
            output_key: "EcsElbDnsName".into(),
            at: Default::default(),
        };
        assert_eq!(short_source(&stack), "stack:EcsOrders/EcsElbDnsName");
        let lb = Source::LoadBalancer {
            name: "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/my-alb/50dc".into(),
            at: stagewire::domain::Place {
                region: Some("eu-west-1".into()),
                role_arn: None,
            },
        };
        assert_eq!(short_source(&lb), "lb:my-alb@eu-west-1");
        let lit = Source::Literal { value: "v2".into() };
        assert_eq!(short_source(&lit), "value:v2");
    }

    #[test]
    fn a_table_fits_unless_wide() {
        let long = "x".repeat(100);
        let rows = vec![vec!["rest:abc".to_string(), long.clone(), long.clone()]];
        let t = table(&["API", "LIVE", "RESOLVED"], &rows, false);
        for line in t.lines() {
            assert!(line.chars().count() <= MAX_WIDTH, "{line}");
        }
        assert!(t.contains('…'), "{t}");
        assert!(t.contains("rest:abc"), "{t}");
        let t = table(&["API", "LIVE", "RESOLVED"], &rows, true);
        assert!(t.lines().nth(1).unwrap().ends_with(&long), "{t}");
    }

    #[test]
    fn cut_keeps_short_cells() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
