//! The `stagewire` operator CLI against moto: the status computation through the library, and
//! the binary itself (bind, unbind, sync, status --json, and its answers to bad arguments).

use std::process::Output;

use serde_json::Value;
use stagewire::status::{self, Filter, Row, State};

use crate::support::*;

/// Run the binary with `args`, configured only through the environment: moto's endpoint, a
/// region, dummy credentials and this world's registry table.
pub(crate) async fn cli(w: &World, args: &[&str]) -> Output {
    cli_with(w, args, &[]).await
}

/// As [`cli`], with more environment variables.
async fn cli_with(w: &World, args: &[&str], more: &[(&str, &str)]) -> Output {
    let endpoint = w.sdk.endpoint_url().expect("a world has an endpoint");
    let mut env = vec![
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDSTAGEWIRECLI"),
        ("AWS_SECRET_ACCESS_KEY", "stagewire-cli-dummy-secret"),
        ("STAGEWIRE_TABLE", &w.table),
    ];
    env.extend_from_slice(more);
    run(args, &env).await
}

/// Run the binary with exactly these environment variables (and a home without AWS files).
async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = std::env::temp_dir().join("stagewire-cli-test-home");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_stagewire"));
    cmd.args(args)
        .env_clear()
        .env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("the stagewire binary runs")
}

pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert the exit code, showing both streams when it differs.
fn assert_code(o: &Output, expected: i32) {
    assert_eq!(
        code(o),
        expected,
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Assert that stdout says `needle`, showing it when it does not.
fn assert_stdout_has(o: &Output, needle: &str) {
    let out = stdout(o);
    assert!(out.contains(needle), "stdout lacks {needle:?}:\n{out}");
}

/// Assert that stderr says `needle`, showing it when it does not.
fn assert_stderr_has(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
}

/// A REST API, an ELB stack with a healthy target, and `helloworldElb` on stage `prod` bound
/// to the stack's output by `stagewire bind`.
async fn bound() -> (World, ElbStack, String) {
    let w = World::new().await;
    let stack = w.elb_stack(&unique("EcsHelloworldProd")).await;
    w.register_target(&stack.tg_arn, "10.0.1.10").await;
    let api = w.rest_api().await;
    let var = format!("helloworldElb=stack:{}/EcsElbDnsName", stack.name);
    let o = bind(&w, &api, "prod", &["--var", &var]).await;
    assert_code(&o, 0);
    (w, stack, api)
}

async fn rows(w: &World) -> Vec<Row> {
    status::status(&w.ports, &Filter::default()).await.unwrap()
}

#[tokio::test]
async fn status_is_in_sync_after_a_bind() {
    let (w, stack, api) = bound().await;

    let rows = rows(&w).await;

    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(r.state, State::InSync, "{r:?}");
    assert_eq!(r.api, format!("rest:{api}"));
    assert_eq!(r.stage, "prod");
    assert_eq!(r.variable, "helloworldElb");
    assert_eq!(r.live.as_deref(), Some(stack.dns.as_str()));
    assert_eq!(r.resolved.as_deref(), Some(stack.dns.as_str()));
    assert_eq!(r.load_balancer.as_deref(), Some(stack.lb_name.as_str()));
    assert_eq!(r.healthy, Some(true));
    assert!(r.source.contains(&stack.name), "{}", r.source);
    assert_eq!(status::exit_code(&rows), 0);
    let items = w.registry_items().await;
    assert_eq!(items[0].owner.stack_id, "cli");
    assert_eq!(
        items[0].owner.physical_id,
        format!("stagewire:rest:{api}:prod:stagewire-cli")
    );

    // Filters select by API (id or kind:id) and stage.
    let only = |api: Option<&str>, stage: Option<&str>| Filter {
        api: api.map(str::to_owned),
        stage: stage.map(str::to_owned),
    };
    let n = |f: Filter| {
        let ports = w.ports.clone();
        async move { status::status(&ports, &f).await.unwrap().len() }
    };
    assert_eq!(n(only(Some(&api), None)).await, 1);
    assert_eq!(n(only(Some(&format!("rest:{api}")), Some("prod"))).await, 1);
    assert_eq!(n(only(Some(&format!("http:{api}")), None)).await, 0);
    assert_eq!(n(only(None, Some("dev"))).await, 0);
}

#[tokio::test]
async fn status_reports_a_load_balancer_without_healthy_targets() {
    let Scene { w, stack, api, .. } = Scene::new("EcsHelloworldProd").await;
    let var = format!("helloworldElb=lb:{}", stack.lb_name);
    let o = bind(&w, &api, "prod", &["--var", &var]).await;
    assert_code(&o, 0);

    let rows = rows(&w).await;

    assert_eq!(rows[0].state, State::Unhealthy, "{:?}", rows[0]);
    assert_eq!(rows[0].healthy, Some(false));
    assert!(rows[0].note.as_deref().unwrap().contains(&stack.lb_name));
    assert_eq!(status::exit_code(&rows), 2);
}

#[tokio::test]
async fn status_reports_drift_after_a_hand_change() {
    let (w, stack, api) = bound().await;
    w.set_var(&api, "prod", "helloworldElb", "elsewhere.example.com")
        .await;

    let rows = rows(&w).await;

    assert_eq!(rows[0].state, State::Drifted, "{:?}", rows[0]);
    assert_eq!(rows[0].live.as_deref(), Some("elsewhere.example.com"));
    assert_eq!(rows[0].resolved.as_deref(), Some(stack.dns.as_str()));
    assert_eq!(status::exit_code(&rows), 2);
}

#[tokio::test]
async fn status_reports_a_missing_source_after_the_stack_is_deleted() {
    let (w, stack, api) = bound().await;
    w.delete_stack(&stack.name).await;

    let rows = rows(&w).await;

    assert_eq!(rows[0].state, State::SourceMissing, "{:?}", rows[0]);
    assert_eq!(rows[0].resolved, None);
    assert_eq!(rows[0].live.as_deref(), Some(stack.dns.as_str()));
    let note = rows[0].note.as_deref().unwrap();
    assert!(
        note.contains(&stack.name) && note.contains("does not exist"),
        "{note}"
    );
    assert_eq!(status::exit_code(&rows), 2);

    // The table shows the state with a short note; the exit code is 2.
    let o = cli(&w, &["status"]).await;
    assert_code(&o, 2);
    let out = stdout(&o);
    assert!(out.starts_with("API"), "{out}");
    assert!(out.contains(&format!("rest:{api}")), "{out}");
    assert!(out.contains("source missing: stack"), "{out}");
}

#[tokio::test]
async fn status_reports_a_missing_stage() {
    let (w, _stack, api) = bound().await;
    w.apigw
        .delete_stage()
        .rest_api_id(&api)
        .stage_name("prod")
        .send()
        .await
        .unwrap();

    let rows = rows(&w).await;

    assert_eq!(rows[0].state, State::StageMissing, "{:?}", rows[0]);
    assert_eq!(rows[0].live, None);
    assert_eq!(status::exit_code(&rows), 2);
}

#[tokio::test]
async fn sync_dry_run_plans_without_writing() {
    let (w, stack, api) = bound().await;
    w.set_var(&api, "prod", "helloworldElb", "elsewhere.example.com")
        .await;

    let plan = status::plan(&rows(&w).await);
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].from.as_deref(), Some("elsewhere.example.com"));
    assert_eq!(plan[0].to, stack.dns);

    let o = cli(&w, &["sync", "--dry-run"]).await;

    assert_code(&o, 2);
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "would change rest:{api} stage prod variable helloworldElb: elsewhere.example.com -> {}",
            stack.dns
        )),
        "{out}"
    );
    assert!(
        out.contains("1 change(s) and 0 release(s) planned, nothing written"),
        "{out}"
    );
    w.assert_var(&api, "prod", "helloworldElb", "elsewhere.example.com")
        .await;
    assert_eq!(
        w.registry_items().await[0].value.as_deref(),
        Some(stack.dns.as_str())
    );
}

#[tokio::test]
async fn sync_repairs_drift() {
    let (w, stack, api) = bound().await;
    w.set_var(&api, "prod", "helloworldElb", "elsewhere.example.com")
        .await;

    // Another stack's bindings only: nothing to do here.
    let o = cli(&w, &["sync", "--stack", "SomeOtherStack"]).await;
    assert_code(&o, 0);
    assert_stdout_has(&o, "0 checked");
    w.assert_var(&api, "prod", "helloworldElb", "elsewhere.example.com")
        .await;

    let o = cli(&w, &["sync", "--stack", &stack.name]).await;

    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        !out.contains("_aws"),
        "no metric line on the CLI's stdout: {out}"
    );
    assert!(out.contains("1 changed"), "{out}");
    assert!(out.contains("0 failure(s)"), "{out}");
    w.assert_var(&api, "prod", "helloworldElb", &stack.dns)
        .await;
    let rows = rows(&w).await;
    assert_eq!(rows[0].state, State::InSync);

    // Everything, again: nothing left to change.
    let o = cli(&w, &["sync"]).await;
    assert_code(&o, 0);
    assert_stdout_has(&o, "0 changed");
}

#[tokio::test]
async fn sync_releases_the_bindings_of_stacks_deleted_or_gone_and_its_dry_run_says_so_first() {
    let Scene { w, stack, api, .. } = Scene::new("EcsHelloworldProd").await;
    w.deploy_stage(&api, "prod", &[("other", "kept")]).await;
    // A stack that lives, one deleted without its binding's Delete (DELETE_COMPLETE), and one
    // CloudFormation does not know any more.
    let (alive, deleted) = (w.owning_stack().await, w.owning_stack().await);
    let unknown = Cloudformation::new().await;
    let mut gone_props = seed_props(&api, "prod", &stack.name);
    gone_props["Variables"] =
        serde_json::json!({"goneElb": {"StackName": stack.name, "OutputKey": "EcsElbDnsName"}});
    for (cfn, props) in [
        (&alive, seed_props(&api, "prod", &stack.name)),
        (&deleted, seed_props(&api, "dev", &stack.name)),
        (&unknown, gone_props),
    ] {
        assert_success(&cfn.send_create(&w.handler(), "B", props).await);
    }
    w.delete_stack(&deleted.stack_id).await;
    let open = [("STAGEWIRE_BINDING_AUTHORIZATION", "Open")];

    let o = cli_with(&w, &["sync", "--dry-run"], &open).await;

    assert_code(&o, 2);
    let out = stdout(&o);
    for (stage, variable, owner) in [
        ("dev", "helloworldElb", &deleted.stack_id),
        ("prod", "goneElb", &unknown.stack_id),
    ] {
        let line = format!(
            "would release stage {stage} of REST API {api} variable {variable} of {owner} B: its stack ended"
        );
        assert!(out.contains(&line), "{line}\n{out}");
    }
    assert!(
        out.contains("0 change(s) and 2 release(s) planned, nothing written"),
        "{out}"
    );
    assert_eq!(w.registry_items().await.len(), 3, "nothing written");
    assert!(w.stage_vars(&api, "dev").await.is_some());

    let o = cli_with(&w, &["sync"], &open).await;

    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("2 released (stack ended)"), "{out}");
    let left = w.registry_items().await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].owner.stack_id, alive.stack_id);
    assert_eq!(
        w.stage_vars(&api, "dev").await,
        None,
        "the stage the deleted stack's binding created is gone"
    );
    let prod = w.stage_vars(&api, "prod").await.unwrap();
    assert_eq!(prod.get("goneElb"), None, "{prod:?}");
    assert_eq!(prod.get("helloworldElb"), Some(&stack.dns), "{prod:?}");
    assert_eq!(prod["other"], "kept");
}

#[tokio::test]
async fn bind_updates_in_place_and_unbind_removes_only_its_own() {
    let Scene { w, stack, api, cfn } = Scene::new("EcsHelloworldProd").await;
    let from_stack = format!("helloworldElb=stack:{}/EcsElbDnsName", stack.name);

    // A stage that does not exist, with --no-create-stage: refused, nothing written.
    let o = bind(
        &w,
        &api,
        "dev",
        &["--var", &from_stack, "--no-create-stage"],
    )
    .await;
    assert_code(&o, 1);
    assert_stderr_has(&o, "does not exist");
    assert!(w.stage_vars(&api, "dev").await.is_none());
    assert!(w.registry_items().await.is_empty());

    // Two variables; the stage is created.
    let o = bind(
        &w,
        &api,
        "dev",
        &["--var", &from_stack, "--var", "banner=value:v2"],
    )
    .await;
    assert_code(&o, 0);
    assert_stdout_has(&o, "created the stage");
    let vars = w.stage_vars(&api, "dev").await.unwrap();
    assert_eq!(vars["helloworldElb"], stack.dns);
    assert_eq!(vars["banner"], "v2");
    assert_eq!(w.registry_items().await.len(), 2);

    // Again with one variable and --replace: the same binding, updated; the other is
    // released, by name.
    let o = bind(&w, &api, "dev", &["--var", &from_stack, "--replace"]).await;
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("banner: removed (was v2)"), "{out}");
    assert!(out.contains("helloworldElb: unchanged"), "{out}");
    let vars = w.stage_vars(&api, "dev").await.unwrap();
    assert_eq!(vars.get("banner"), None);
    assert_eq!(vars["helloworldElb"], stack.dns);
    let items = w.registry_items().await;
    assert_eq!(items.len(), 1);
    assert!(items[0].created_stage);

    // A variable of another owner is refused by name.
    let props = seed_props(&api, "prod", &stack.name);
    let r = cfn
        .send_create(&w.handler(), "HelloworldProdBinding", props)
        .await;
    assert_success(&r);
    let o = bind(&w, &api, "prod", &["--var", "helloworldElb=value:x"]).await;
    assert_code(&o, 1);
    assert_stderr_has(&o, "HelloworldProdBinding");

    // Unbind: the stage bind created goes, the CloudFormation binding stays.
    let o = unbind(&w, &api, "dev", &[]).await;
    assert_code(&o, 0);
    let out = stdout(&o);
    let removed = format!("helloworldElb: removed (was {})", stack.dns);
    assert!(out.contains(&removed), "{out}");
    assert!(out.contains("the stage is deleted"), "{out}");
    assert!(w.stage_vars(&api, "dev").await.is_none());
    let items = w.registry_items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].owner.logical_id, "HelloworldProdBinding");
    w.assert_var(&api, "prod", "helloworldElb", &stack.dns)
        .await;

    // Unbinding again is not an error.
    let o = unbind(&w, &api, "dev", &[]).await;
    assert_code(&o, 0);
    assert_stdout_has(&o, "nothing to do");
}

#[tokio::test]
async fn status_json_end_to_end() {
    let (w, stack, api) = bound().await;

    let o = cli(&w, &["status", "--json"]).await;

    assert_code(&o, 0);
    let rows: Value = serde_json::from_slice(&o.stdout).expect("a JSON array");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["api"], format!("rest:{api}").as_str());
    assert_eq!(rows[0]["stage"], "prod");
    assert_eq!(rows[0]["variable"], "helloworldElb");
    assert_eq!(rows[0]["state"], "in_sync");
    assert_eq!(rows[0]["live"], stack.dns.as_str());
    assert_eq!(rows[0]["resolved"], stack.dns.as_str());
    assert_eq!(rows[0]["source_spec"]["kind"], "stack_output");

    // A hand change: drifted, exit code 2; --api/--stage filters apply.
    w.set_var(&api, "prod", "helloworldElb", "elsewhere.example.com")
        .await;
    let o = cli(&w, &["status", "--json", "--api", &api, "--stage", "prod"]).await;
    assert_code(&o, 2);
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows[0]["state"], "drifted");
    let o = cli(&w, &["status", "--json", "--stage", "dev"]).await;
    assert_code(&o, 0);
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[tokio::test]
async fn bad_arguments_exit_64_with_a_message() {
    let table: &[(&str, &str)] = &[("STAGEWIRE_TABLE", "t")];
    let bind_var = |var| {
        vec![
            "bind",
            "--rest-api-id",
            "abc",
            "--stage",
            "prod",
            "--var",
            var,
        ]
    };
    // Arguments, environment, and what stderr must say.
    type Case<'a> = (Vec<&'a str>, &'a [(&'a str, &'a str)], &'a str);
    let cases: Vec<Case> = vec![
        (vec![], table, "Usage: stagewire"),
        (
            vec!["frobnicate"],
            table,
            "unrecognized subcommand 'frobnicate'",
        ),
        (
            bind_var("helloworldElb=s3:bucket/key"),
            table,
            "stack:STACK/OUTPUTKEY, ecs:CLUSTER/SERVICE, lb:NAME_OR_ARN, value:LITERAL or vpclink-for:SOURCE",
        ),
        (bind_var("helloworldElb"), table, "expected NAME=SOURCE"),
        (
            bind_var("hello-world=value:x"),
            table,
            "stage variable name \"hello-world\" is invalid",
        ),
        (
            vec!["bind", "--stage", "prod", "--var", "v=value:x"],
            table,
            "--rest-api-id",
        ),
        (
            vec!["status"],
            &[],
            "no registry table: give --table NAME or set STAGEWIRE_TABLE",
        ),
        (vec!["status", "--table", "t"], &[], "no AWS region"),
    ];
    for (args, env, needle) in cases {
        let o = run(&args, env).await;
        assert_code(&o, 64);
        assert!(
            stderr(&o).contains(needle),
            "{args:?}: stderr {:?} lacks {needle:?}",
            stderr(&o)
        );
    }

    // Help is not an error.
    let o = run(&["sync", "--help"], &[]).await;
    assert_code(&o, 0);
    assert_stdout_has(&o, "--dry-run");
    assert_stdout_has(&o, "Exit status");
}

#[tokio::test]
async fn missing_credentials_are_reported_up_front() {
    let o = run(
        &["status", "--table", "t", "--region", "us-east-1"],
        &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")],
    )
    .await;
    assert_code(&o, 1);
    assert_stderr_has(&o, "no AWS credentials found: set AWS_PROFILE");
}

/// `stagewire bind --rest-api-id API --stage STAGE` with these arguments after it.
pub(crate) async fn bind(w: &World, api: &str, stage: &str, more: &[&str]) -> Output {
    let mut args = vec!["bind", "--rest-api-id", api, "--stage", stage];
    args.extend_from_slice(more);
    cli(w, &args).await
}

/// `stagewire unbind --rest-api-id API --stage STAGE` with these arguments after it.
async fn unbind(w: &World, api: &str, stage: &str, more: &[&str]) -> Output {
    let mut args = vec!["unbind", "--rest-api-id", api, "--stage", stage];
    args.extend_from_slice(more);
    cli(w, &args).await
}

/// The variables the registry holds for `stage`, sorted.
async fn registered(w: &World, stage: &str) -> Vec<String> {
    let mut names: Vec<String> = w
        .registry_items()
        .await
        .into_iter()
        .filter(|r| r.stage.stage == stage)
        .map(|r| r.variable)
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn bind_adds_to_the_binding_and_replace_names_each_removal() {
    let w = World::new().await;
    let api = w.rest_api().await;
    let o = bind(
        &w,
        &api,
        "prod",
        &["--var", "a=value:1", "--var", "b=value:2"],
    )
    .await;
    assert_code(&o, 0);

    // Another variable: added; the others stay as they are.
    let o = bind(
        &w,
        &api,
        "prod",
        &["--var", "c=value:3", "--var", "a=value:10"],
    )
    .await;

    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("c: added = 3"), "{out}");
    assert!(out.contains("a: 1 -> 10"), "{out}");
    assert!(out.contains("b: unchanged = 2"), "{out}");
    assert!(!out.contains("removed"), "{out}");
    assert_eq!(
        w.stage_vars(&api, "prod").await.unwrap(),
        vars(&[("a", "10"), ("b", "2"), ("c", "3")])
    );
    assert_eq!(registered(&w, "prod").await, ["a", "b", "c"]);

    // --replace: the list is the whole set; each variable let go of is named, and one that
    // someone changed since stays as it is.
    w.set_var(&api, "prod", "c", "hand-made").await;
    let o = bind(&w, &api, "prod", &["--var", "a=value:10", "--replace"]).await;

    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("b: removed (was 2)"), "{out}");
    assert!(
        out.contains("c: released, value kept = hand-made (changed since stagewire wrote 3)"),
        "{out}"
    );
    assert!(out.contains("a: unchanged = 10"), "{out}");
    assert_eq!(
        w.stage_vars(&api, "prod").await.unwrap(),
        vars(&[("a", "10"), ("c", "hand-made")])
    );
    assert_eq!(registered(&w, "prod").await, ["a"]);
}

#[tokio::test]
async fn bind_takes_a_variable_no_binding_owns_only_with_adopt() {
    let w = World::new().await;
    let api = w
        .rest_api_with_stage("prod", &[("legacyElb", "old.example.com")])
        .await;

    let o = bind(
        &w,
        &api,
        "prod",
        &["--var", "legacyElb=value:new.example.com"],
    )
    .await;

    assert_code(&o, 1);
    let err = stderr(&o);
    for needle in [
        "legacyElb",
        "\"old.example.com\"",
        "no binding owns it",
        "--adopt",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    w.assert_var(&api, "prod", "legacyElb", "old.example.com")
        .await;
    assert!(w.registry_items().await.is_empty());

    let o = bind(
        &w,
        &api,
        "prod",
        &["--var", "legacyElb=value:new.example.com", "--adopt"],
    )
    .await;

    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("legacyElb: adopted, old.example.com -> new.example.com"),
        "{out}"
    );
    w.assert_var(&api, "prod", "legacyElb", "new.example.com")
        .await;
    assert_eq!(registered(&w, "prod").await, ["legacyElb"]);
    // Once adopted it is the binding's own: binding it again needs no --adopt.
    let o = bind(&w, &api, "prod", &["--var", "legacyElb=value:v3"]).await;
    assert_code(&o, 0);
    assert_stdout_has(&o, "legacyElb: new.example.com -> v3");
}

#[tokio::test]
async fn unbind_one_variable_or_only_forget_the_binding() {
    let w = World::new().await;
    let api = w.rest_api_with_stage("prod", &[("other", "kept")]).await;
    let o = bind(
        &w,
        &api,
        "prod",
        &[
            "--var",
            "a=value:1",
            "--var",
            "b=value:2",
            "--var",
            "c=value:3",
        ],
    )
    .await;
    assert_code(&o, 0);

    // --var: only that variable and its record.
    let o = unbind(&w, &api, "prod", &["--var", "b"]).await;

    assert_code(&o, 0);
    assert_stdout_has(&o, "b: removed (was 2)");
    assert_eq!(
        w.stage_vars(&api, "prod").await.unwrap(),
        vars(&[("a", "1"), ("c", "3"), ("other", "kept")])
    );
    assert_eq!(registered(&w, "prod").await, ["a", "c"]);

    // A name the binding does not hold is refused, and nothing is written.
    for name in ["other", "nosuch"] {
        let o = unbind(&w, &api, "prod", &["--var", name, "--var", "a"]).await;
        assert_code(&o, 1);
        assert_stderr_has(&o, &format!("variable {name}"));
    }
    assert_eq!(registered(&w, "prod").await, ["a", "c"]);

    // --keep-values: the registry forgets, the stage stays as it is.
    let o = unbind(&w, &api, "prod", &["--keep-values"]).await;

    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("a: released, value kept = 1"), "{out}");
    assert!(out.contains("c: released, value kept = 3"), "{out}");
    assert!(w.registry_items().await.is_empty());
    assert_eq!(
        w.stage_vars(&api, "prod").await.unwrap(),
        vars(&[("a", "1"), ("c", "3"), ("other", "kept")])
    );
}

#[tokio::test]
async fn dry_runs_print_the_plan_and_write_nothing() {
    let w = World::new().await;
    let api = w.rest_api().await;
    let two = ["--var", "a=value:1", "--var", "b=value:2"];

    // bind --dry-run on a stage that does not exist: the plan, exit 2, nothing written.
    let o = bind(&w, &api, "prod", &[&two[..], &["--dry-run"]].concat()).await;

    assert_code(&o, 2);
    let out = stdout(&o);
    assert!(out.contains("creating the stage"), "{out}");
    assert!(
        out.contains("a: added = 1") && out.contains("b: added = 2"),
        "{out}"
    );
    assert!(
        out.contains("2 change(s) planned, nothing written"),
        "{out}"
    );
    assert_eq!(w.stage_vars(&api, "prod").await, None);
    assert!(w.registry_items().await.is_empty());

    assert_code(&bind(&w, &api, "prod", &two).await, 0);
    // The same again: nothing to do, exit 0.
    let o = bind(&w, &api, "prod", &[&two[..], &["--dry-run"]].concat()).await;
    assert_code(&o, 0);
    assert_stdout_has(&o, "0 change(s) planned");

    // A change and a removal, planned only.
    let o = bind(
        &w,
        &api,
        "prod",
        &["--var", "a=value:10", "--replace", "--dry-run"],
    )
    .await;
    assert_code(&o, 2);
    let out = stdout(&o);
    assert!(
        out.contains("a: 1 -> 10") && out.contains("b: removed (was 2)"),
        "{out}"
    );

    // unbind --dry-run: each variable named, the stage's deletion said, nothing written.
    let o = unbind(&w, &api, "prod", &["--dry-run"]).await;
    assert_code(&o, 2);
    let out = stdout(&o);
    assert!(
        out.contains("a: removed (was 1)") && out.contains("b: removed (was 2)"),
        "{out}"
    );
    assert!(out.contains("the stage is deleted"), "{out}");
    assert_eq!(
        w.stage_vars(&api, "prod").await.unwrap(),
        vars(&[("a", "1"), ("b", "2")])
    );
    assert_eq!(registered(&w, "prod").await, ["a", "b"]);

    // A dry run of a bind that would be refused says so and exits 1.
    w.deploy_stage(&api, "dev", &[("x", "old")]).await;
    let o = bind(&w, &api, "dev", &["--var", "x=value:new", "--dry-run"]).await;
    assert_code(&o, 1);
    assert_stdout_has(&o, "x: adopted, old -> new");
    assert_stderr_has(&o, "--adopt");
    assert!(w.stage_vars(&api, "dev").await.unwrap()["x"] == "old");

    // sync --dry-run over bindings in sync: exit 0.
    let o = cli(&w, &["sync", "--dry-run"]).await;
    assert_code(&o, 0);
    assert_stdout_has(&o, "0 change(s) and 0 release(s) planned");

    // Every --help documents the dry run's exit statuses.
    for verb in ["bind", "unbind", "sync"] {
        let o = run(&[verb, "--help"], &[]).await;
        let help = stdout(&o);
        assert!(
            help.contains("--dry-run") && help.contains("2: changes"),
            "{verb}: {help}"
        );
    }
}

#[tokio::test]
async fn errors_name_the_table_region_and_endpoint() {
    let w = World::new().await;

    let o = cli(&w, &["status", "--table", "nosuchtable"]).await;

    assert_code(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("the registry table nosuchtable does not exist in region us-east-1"),
        "{err}"
    );
    assert!(err.contains(&w.endpoint), "{err}");

    // An endpoint nothing answers on: what could not be reached, and the cause.
    let down = [("AWS_ENDPOINT_URL", "http://127.0.0.1:9")];
    let o = cli_with(&w, &["status"], &down).await;
    assert_code(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("could not reach DynamoDB at http://127.0.0.1:9 (region us-east-1)"),
        "{err}"
    );
    assert!(err.contains("caused by:"), "{err}");
    assert!(err.contains("--verbose"), "{err}");
    // --verbose: the whole chain.
    let o = cli_with(&w, &["status", "--verbose"], &down).await;
    assert_code(&o, 1);
    let long = stderr(&o);
    assert!(
        long.matches("caused by:").count() > err.matches("caused by:").count(),
        "{long}"
    );

    // A profile that does not exist is named as such.
    let o = cli(&w, &["status", "--profile", "nosuch"]).await;
    assert_code(&o, 64);
    let err = stderr(&o);
    assert!(err.contains("AWS profile nosuch was not found"), "{err}");
    assert!(!err.contains("set AWS_PROFILE"), "{err}");
}

#[tokio::test]
async fn status_shows_every_row_when_one_cannot_be_checked() {
    let w = World::new().await;
    let (good, bad) = (
        w.elb_stack(&unique("EcsGood")).await,
        w.elb_stack(&unique("EcsBad")).await,
    );
    let api = w.rest_api().await;
    let a = format!("a=stack:{}/EcsElbDnsName", good.name);
    let b = format!("b=stack:{}/EcsElbDnsName", bad.name);
    assert_code(
        &bind(&w, &api, "prod", &["--var", &a, "--var", &b]).await,
        0,
    );
    // CloudFormation fails every DescribeStacks of the bad stack.
    w.proxy().add_rule(
        stagewire_devkit::fault_proxy::Rule::new(stagewire_devkit::fault_proxy::Fault::Status(500))
            .service("cloudformation")
            .operation("DescribeStacks")
            .body(bad.name.as_str()),
    );

    let o = cli(&w, &["status", "--json"]).await;

    assert_code(&o, 1);
    let rows: Value = serde_json::from_slice(&o.stdout).expect("a JSON array");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["variable"], "a");
    assert_ne!(rows[0]["state"], "failed", "{:?}", rows[0]);
    assert_eq!(rows[1]["variable"], "b");
    assert_eq!(rows[1]["state"], "failed", "{:?}", rows[1]);
    let note = rows[1]["note"].as_str().unwrap();
    assert!(
        note.contains(&bad.name) && note.contains("DescribeStacks"),
        "{note}"
    );

    let o = cli(&w, &["status"]).await;
    assert_code(&o, 1);
    let out = stdout(&o);
    assert!(out.lines().any(|l| l.contains(" a ")), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(" b ") && l.trim_end().ends_with("failed")),
        "{out}"
    );
    // The note is under the table, whole.
    let note_line = format!("rest:{api} prod b: failed: could not resolve");
    assert!(out.contains(&note_line), "{out}");
    assert!(out.contains("DescribeStacks"), "{out}");
    assert!(out.lines().all(|l| l.chars().count() <= 120), "{out}");
}

/// RFC 3339 in UTC to the second: `2026-12-02T05:43:31Z`.
fn is_utc(s: &str) -> bool {
    s.len() == 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T' && s.starts_with("20")
}

#[tokio::test]
async fn json_carries_the_registry_last_write_and_last_error() {
    let (w, stack, _api) = bound().await;

    let o = cli(&w, &["status", "--json"]).await;
    assert_code(&o, 0);
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    let last = &rows[0]["last_write"];
    assert_eq!(last["value"], stack.dns.as_str(), "{last}");
    assert!(is_utc(last["at"].as_str().unwrap()), "{last}");
    assert_eq!(rows[0]["last_error"], Value::Null);

    // The source goes: a sync records why it kept the value.
    w.delete_stack(&stack.name).await;
    assert_code(&cli(&w, &["sync"]).await, 2);

    let o = cli(&w, &["sync", "--dry-run", "--json"]).await;

    assert_code(&o, 2);
    let plan: Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(plan["changes"], serde_json::json!([]));
    assert_eq!(plan["checked"], 1);
    let row = &plan["rows"][0];
    assert_eq!(row["state"], "source_missing");
    assert_eq!(row["last_write"]["value"], stack.dns.as_str(), "{row}");
    let error = row["last_error"].as_str().unwrap_or_default();
    assert!(error.contains(&stack.name), "{row}");
    assert!(is_utc(row["checked_at"].as_str().unwrap()), "{row}");
    let o = cli(&w, &["status", "--json"]).await;
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows[0]["last_error"], row["last_error"]);
}

#[tokio::test]
async fn the_table_fits_120_columns_and_says_when_nothing_matches() {
    let w = World::new().await;
    let stack = w.elb_stack(&unique("EcsHelloworldProdWithALongName")).await;
    w.register_target(&stack.tg_arn, "10.0.1.10").await;
    let api = w.rest_api().await;
    let by_arn = format!("helloworldElb=stack:{}/EcsElbDnsName", stack.stack_id);
    let long = format!("banner=value:{}", "x".repeat(150));
    assert_code(
        &bind(&w, &api, "prod", &["--var", &by_arn, "--var", &long]).await,
        0,
    );

    let o = cli(&w, &["status"]).await;

    assert_code(&o, 0);
    let out = stdout(&o);
    for line in out.lines() {
        assert!(
            line.chars().count() <= 120,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    // Sources by name, as bind takes them, not by ARN.
    assert!(out.contains("stack:EcsHelloworldProd"), "{out}");
    assert!(!out.contains("arn:aws:cloudformation"), "{out}");

    let o = cli(&w, &["status", "--wide"]).await;
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains(&stack.stack_id), "{out}");
    assert!(out.contains(&"x".repeat(150)), "{out}");

    // A filter that matches nothing says so.
    let o = cli(&w, &["status", "--api", "nosuch", "--stage", "prod"]).await;
    assert_code(&o, 0);
    assert_stdout_has(&o, "no binding matches --api nosuch --stage prod");

    // A mistyped command: the one meant.
    let o = cli(&w, &["stauts"]).await;
    assert_code(&o, 64);
    assert_stderr_has(&o, "similar subcommand exists: 'status'");
}

#[tokio::test]
async fn a_health_wait_says_what_it_waits_for_and_obeys_timeout_and_no_wait() {
    let w = World::new().await;
    let serving = w.elb_stack(&unique("EcsServing")).await;
    w.register_target(&serving.tg_arn, "10.0.1.10").await;
    let idle = w.elb_stack(&unique("EcsIdle")).await;
    let api = w.rest_api().await;
    let to = |lb: &str| format!("v=lb:{lb}");
    assert_code(
        &bind(&w, &api, "prod", &["--var", &to(&serving.lb_name)]).await,
        0,
    );
    let started = std::time::Instant::now();

    let o = bind(
        &w,
        &api,
        "prod",
        &["--var", &to(&idle.lb_name), "--timeout", "12"],
    )
    .await;

    assert_code(&o, 1);
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_secs(5), "{took:?}");
    let err = stderr(&o);
    let waiting = format!(
        "waiting for load balancer {} (variable v) to have a healthy target; {} serves meanwhile",
        idle.lb_name, serving.lb_name
    );
    assert!(err.contains(&waiting), "{err}");
    assert!(err.contains(": 5s of at most 12s"), "{err}");
    assert!(
        err.contains("--timeout") && err.contains("--no-wait"),
        "{err}"
    );
    assert!(
        !err.contains("ServiceTimeout") && !err.contains("WaitForHealthyTargets"),
        "{err}"
    );
    for out in [stdout(&o), err] {
        assert!(
            !out.contains("_aws") && !out.contains("HealthWait"),
            "{out}"
        );
    }
    assert_eq!(w.var(&api, "prod", "v").await, Some(serving.dns.clone()));

    // --no-wait: the switch at once.
    let o = bind(
        &w,
        &api,
        "prod",
        &["--var", &to(&idle.lb_name), "--no-wait"],
    )
    .await;
    assert_code(&o, 0);
    assert!(!stderr(&o).contains("waiting"), "{}", stderr(&o));
    assert_eq!(w.var(&api, "prod", "v").await, Some(idle.dns.clone()));
}

#[tokio::test]
async fn a_bound_variable_whose_source_is_gone_is_named_when_bind_adds_another() {
    let (w, stack, api) = bound().await;
    w.delete_stack(&stack.name).await;

    let o = bind(&w, &api, "prod", &["--var", "banner=value:v2"]).await;

    assert_code(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("Bound before and left as they are: helloworldElb"),
        "{err}"
    );
    assert!(err.contains("--replace"), "{err}");
    assert_eq!(w.var(&api, "prod", "banner").await, None);

    let o = bind(&w, &api, "prod", &["--var", "banner=value:v2", "--replace"]).await;

    assert_code(&o, 0);
    let removed = format!("helloworldElb: removed (was {})", stack.dns);
    assert_stdout_has(&o, &removed);
    assert_eq!(registered(&w, "prod").await, ["banner"]);
}
