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
/// columns are cut (with `…`) until a line fits [`MAX_WIDTH`]: each column down to at most its
/// `floors` entry (`None`: never cut), the one with the most room above its floor first.
pub fn table(
    header: &[&str],
    rows: &[Vec<String>],
    floors: &[Option<usize>],
    wide: bool,
) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    if !wide {
        fit(&mut widths, floors, MAX_WIDTH);
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

/// Narrow columns, one character at a time, until they and their two-space gaps fit `max`.
fn fit(widths: &mut [usize], floors: &[Option<usize>], max: usize) {
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    while total(widths) > max {
        let room = |i: usize| match floors.get(i).copied().flatten() {
            Some(floor) => widths[i].saturating_sub(floor),
            None => 0,
        };
        let Some(i) = (0..widths.len()).max_by_key(|&i| (room(i), widths[i])) else {
            return;
        };
        if room(i) == 0 {
            return;
        }
        widths[i] -= 1;
    }
}

/// `text` wrapped at [`MAX_WIDTH`], the first line after `first`, the others indented.
pub fn wrap(first: &str, text: &str) -> String {
    const INDENT: &str = "    ";
    let mut out = String::from(first);
    let mut width = first.chars().count();
    for word in text.split(' ') {
        let n = word.chars().count();
        if width > INDENT.len() && width + 1 + n > MAX_WIDTH {
            out.push('\n');
            out.push_str(INDENT);
            width = INDENT.len();
        } else if width > 0 && !out.ends_with(' ') {
            out.push(' ');
            width += 1;
        }
        out.push_str(word);
        width += n;
    }
    out.push('\n');
    out
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
        Source::VpcLinkFor { target } => format!("vpclink-for:{}", short_source(target)),
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
        let link = Source::VpcLinkFor {
            target: Box::new(stack.clone()),
        };
        assert_eq!(
            short_source(&link),
            "vpclink-for:stack:EcsOrders/EcsElbDnsName"
        );
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
        let floors = [None, Some(8), Some(8)];
        let t = table(&["API", "LIVE", "RESOLVED"], &rows, &floors, false);
        for line in t.lines() {
            assert!(line.chars().count() <= MAX_WIDTH, "{line}");
        }
        assert!(t.contains('…'), "{t}");
        assert!(t.contains("rest:abc"), "{t}");
        let t = table(&["API", "LIVE", "RESOLVED"], &rows, &floors, true);
        assert!(t.lines().nth(1).unwrap().ends_with(&long), "{t}");
    }

    #[test]
    fn columns_with_more_room_above_their_floor_give_way_first() {
        let mut widths = vec![10, 60, 60];
        fit(&mut widths, &[None, Some(40), Some(10)], 100);
        assert_eq!(widths, [10, 58, 28]);
        let mut widths = vec![50, 60];
        fit(&mut widths, &[None, Some(40)], 80);
        assert_eq!(widths, [50, 40], "no column below its floor");
    }

    #[test]
    fn notes_wrap_at_the_width() {
        let text = "word ".repeat(60);
        let out = wrap("  b:", text.trim());
        assert!(out.lines().count() > 2, "{out}");
        assert!(out.lines().all(|l| l.chars().count() <= MAX_WIDTH), "{out}");
        assert!(out.starts_with("  b: word"), "{out}");
        assert!(out.lines().nth(1).unwrap().starts_with("    word"), "{out}");
    }

    #[test]
    fn cut_keeps_short_cells() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
