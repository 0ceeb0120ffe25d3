//! `kici init` and `kici compile`: the lock file written for the test repository, `--check`,
//! and bad input — each documented error code with its file, position and suggestion, exit 1,
//! and no lock file written.

mod support;

use kici_engine::lockfile::{LockFile, LockJob, LockMatrix, SCHEMA_VERSION};
use support::Project;

const LOCK: &str = ".kici/kici.lock.json";

#[test]
fn compiles_the_test_repository() {
    let repo = Project::test_repo();
    let run = repo.kici(&["compile"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "✓ Compiled workflows → .kici/kici.lock.json (10 workflows)\n"
    );
    let lock = LockFile::parse(&repo.read(LOCK), "test").expect("the written lock file loads");
    assert_eq!(lock.schema_version, SCHEMA_VERSION);
    assert_eq!(lock.sdk.bundle_hash, kici_sdk::sdk().hash);
    let hello = lock.workflow("hello-world").expect("hello-world");
    assert_eq!(hello.source.file, ".kici/workflows/hello-world.ts");
    assert_eq!(hello.source.export, "#default");
    let LockJob::Static(greet) = &hello.jobs[0] else {
        panic!("a static job")
    };
    let say_hello = greet.flat_steps()[0];
    assert_eq!(say_hello.name, "say-hello");
    let location = say_hello.source_location.as_ref().expect("step call site");
    assert_eq!(
        (location.file.as_str(), location.line, location.column),
        (".kici/workflows/hello-world.ts", 9, 9)
    );
    let LockJob::Static(test) = &lock.workflow("dynamic-matrix").unwrap().jobs[0] else {
        panic!("a static job")
    };
    assert!(matches!(test.matrix, Some(LockMatrix::Dynamic { .. })));

    let run = repo.kici(&["compile", "--check"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "✓ Workflows are valid (10 workflows)\n");
    repo.write(
        ".kici/workflows/hello-world.ts",
        &repo.read(".kici/workflows/hello-world.ts").replace("Hello", "Hi"),
    );
    let run = repo.kici(&["compile", "--check"]);
    run.expect_code(1);
    assert_eq!(
        run.stderr,
        "error: .kici/kici.lock.json is out of date\n  hint: run `kici compile` and commit the result\n"
    );
}

#[test]
fn content_hash_follows_the_source_but_not_line_endings() {
    let repo = Project::test_repo();
    repo.kici(&["compile"]).expect_code(0);
    let hash = |repo: &Project| {
        LockFile::parse(&repo.read(LOCK), "t")
            .unwrap()
            .workflow("hello-world")
            .unwrap()
            .content_hash
            .clone()
    };
    let original = hash(&repo);
    let source = repo.read(".kici/workflows/hello-world.ts");
    repo.write(".kici/workflows/hello-world.ts", &source.replace('\n', "\r\n"));
    repo.kici(&["compile"]).expect_code(0);
    assert_eq!(hash(&repo), original);
    repo.write(".kici/workflows/hello-world.ts", &format!("{source}// changed\n"));
    repo.kici(&["compile"]).expect_code(0);
    assert_ne!(hash(&repo), original);
}

#[test]
fn init_scaffolds_a_project_that_compiles_and_runs() {
    let project = Project::empty();
    let run = project.kici(&["init"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "✓ Created .kici/workflows/hello-world.ts, .kici/workflows/pr-checks.ts, .kici/package.json, .kici/tsconfig.json, .kici/AGENTS.md and .kici/types/\nNext: `kici compile` to write .kici/kici.lock.json, then `kici run local push` to run it here.\n"
    );
    assert!(project.exists(".kici/types/@kici-dev/sdk/index.d.ts"));
    let package: serde_json::Value = serde_json::from_str(&project.read(".kici/package.json")).expect("package.json");
    assert_eq!(package["type"], "module", "workflow modules are ES modules");
    assert!(
        project
            .read(".kici/AGENTS.md")
            .starts_with("# KiCI workflows: notes for coding agents\n")
    );
    let ignored = project.read(".kici/.gitignore");
    for line in [".secrets", ".env.local", "node_modules/"] {
        assert!(ignored.lines().any(|l| l == line), "{line} not ignored:\n{ignored}");
    }
    let again = project.kici(&["init"]);
    again.expect_code(1);
    assert_eq!(
        again.stderr,
        "error: .kici/workflows/hello-world.ts already exists\n  hint: pass --force to overwrite the scaffolded files\n"
    );
    project.commit();
    let run = project.kici(&["compile"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "✓ Compiled workflows → .kici/kici.lock.json (2 workflows)\n"
    );
    let run = project.kici(&["run", "local"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("[greet › say-hello] Hello, World!"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("pr-checks"),
        "pr-checks ran on a push:\n{}",
        run.stdout
    );
    let run = project.kici(&["run", "local", "pr", "--json"]);
    run.expect_code(0);
    let jobs: Vec<String> = run.json()["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .flat_map(|w| {
            let workflow = w["name"].as_str().unwrap_or_default().to_string();
            w["jobs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |j| format!("{workflow}/{} {}", j["name"].as_str().unwrap_or_default(), j["status"]))
        })
        .collect();
    assert_eq!(
        jobs,
        [
            "hello-world/greet \"success\"",
            "pr-checks/lint \"success\"",
            "pr-checks/test \"success\""
        ]
    );
}

#[test]
fn init_without_agents_md_and_with_force() {
    let project = Project::empty();
    project.kici(&["init", "--no-agents-md"]).expect_code(0);
    assert!(!project.exists(".kici/AGENTS.md"));
    project.write(".kici/workflows/hello-world.ts", "// mine\n");
    let run = project.kici(&["init", "--force"]);
    run.expect_code(0);
    assert!(
        project
            .read(".kici/workflows/hello-world.ts")
            .contains("workflow('hello-world'")
    );
    assert!(project.exists(".kici/AGENTS.md"));
}

/// Compiles a one-file project and asserts the single diagnostic and that no lock was written.
fn check_error(source: &str, expected: &str) {
    let project = Project::with_workflow("broken.ts", source);
    let run = project.kici(&["compile"]);
    run.expect_code(1);
    assert!(
        run.stderr.starts_with(expected),
        "expected:\n{expected}\ngot:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("kici.lock.json not written"), "{}", run.stderr);
    assert!(!project.exists(LOCK), "a lock file was written");
}

#[test]
fn a_misspelt_sdk_import_is_e003_with_the_closest_export() {
    let project = Project::with_workflow(
        "broken.ts",
        "import { workflow, job, push, waitForStpe } from '@kici-dev/sdk';\n\nexport default workflow('x', { on: push(), jobs: [job('a', { runsOn: 'linux', steps: [waitForStpe('w', { check: () => true })] })] });\n",
    );
    let run = project.kici(&["compile"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains(
            "error [E003]: The requested module '@kici-dev/sdk' does not provide an export named 'waitForStpe'\n  Suggestion: did you mean 'waitForStep'? (@kici-dev/sdk has no export 'waitForStpe')\n"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_syntax_error_is_e003_with_its_position() {
    check_error(
        "import { workflow } from '@kici-dev/sdk';\nexport default workflow('x', {\n  jobs: [,\n});\n",
        ".kici/workflows/broken.ts:4:1 error [E003]: Unexpected token\n  Suggestion: fix the syntax error; workflow files must be valid TypeScript\n",
    );
}

#[test]
fn a_job_without_runs_on_is_e003_at_the_job() {
    check_error(
        "import { workflow, job, push } from '@kici-dev/sdk';\n\nexport default workflow('x', {\n  on: push(),\n  jobs: [\n    job('build', { steps: [async () => {}] }),\n  ],\n});\n",
        ".kici/workflows/broken.ts:6:5 error [E003]: Job \"build\": one of runsOn or runsOnAll is required\n  Suggestion: add runsOn, e.g. runsOn: 'kici:os:linux'\n",
    );
}

#[test]
fn a_misspelt_job_option_is_e108_with_a_suggestion() {
    check_error(
        "import { workflow, job, push } from '@kici-dev/sdk';\n\nexport default workflow('x', {\n  on: push(),\n  jobs: [\n    job('build', { runsOn: 'linux', timeoutt: 5000, run: async () => {} }),\n  ],\n});\n",
        ".kici/workflows/broken.ts:6:5 error [E108]: Job \"build\": unknown job option \"timeoutt\"\n  Suggestion: did you mean \"timeout\"?\n",
    );
}

#[test]
fn options_this_build_does_not_implement_are_e109() {
    check_error(
        "import { workflow, job, push } from '@kici-dev/sdk';\n\nexport default workflow('x', {\n  on: push(),\n  jobs: [\n    job('deploy', { runsOn: 'linux', resources: { limits: { cpus: 1 } }, run: async () => {} }),\n  ],\n});\n",
        ".kici/workflows/broken.ts:6:5 error [E109]: Job \"deploy\": option \"resources\" is not implemented by this build of KiCI\n  Suggestion: remove \"resources\" for now: this build would ignore it and run the job as if it were not there\n",
    );
    check_error(
        "import { workflow, job, push } from '@kici-dev/sdk';\n\nexport default workflow('x', {\n  on: push(),\n  approval: true,\n  jobs: [job('a', { runsOn: 'linux', run: async () => {} })],\n});\n",
        ".kici/workflows/broken.ts:3:16 error [E109]: Workflow \"x\": option \"approval\" is not implemented by this build of KiCI\n",
    );
    check_error(
        "import { workflow, job, step, push } from '@kici-dev/sdk';\n\nexport default workflow('x', {\n  on: push(),\n  jobs: [job('a', { runsOn: 'linux', steps: [\n    step('s', { run: async () => {}, whenInSync: async () => {} }),\n  ] })],\n});\n",
        ".kici/workflows/broken.ts:6:5 error [E109]: Job \"a\" step \"s\": option \"whenInSync\" is not implemented by this build of KiCI\n",
    );
}

#[test]
fn checkout_false_and_caches_reach_the_lock_file() {
    let project = Project::with_workflow(
        "nocheckout.ts",
        "import { workflow, job, push } from '@kici-dev/sdk';\n\nexport default workflow('x', {\n  on: push(),\n  jobs: [job('a', { runsOn: 'linux', checkout: false, cache: { key: 'k', paths: ['out'] }, run: async () => {} })],\n});\n",
    );
    project.kici(&["compile"]).expect_code(0);
    let lock: serde_json::Value = serde_json::from_str(&project.read(".kici/kici.lock.json")).unwrap();
    let job = &lock["workflows"][0]["jobs"][0];
    assert_eq!(job["checkout"], serde_json::json!(false));
    assert_eq!(job["cache"], serde_json::json!([{"key": "k", "paths": ["out"]}]));
}

#[test]
fn a_concurrency_group_is_a_name_or_a_pure_function_and_an_impure_one_is_refused() {
    let project = Project::with_workflow(
        "groups.ts",
        "import { workflow, job, push } from '@kici-dev/sdk';\n\nexport default workflow('x', {\n  on: push(),\n  jobs: [\n    job('a', { runsOn: 'linux', concurrencyGroup: 'deploy', run: async () => {} }),\n    job('b', { runsOn: 'linux', concurrencyGroup: (event) => `deploy-${event.targetBranch}`, run: async () => {} }),\n  ],\n});\n",
    );
    project.kici(&["compile"]).expect_code(0);
    let lock: serde_json::Value = serde_json::from_str(&project.read(".kici/kici.lock.json")).unwrap();
    let jobs = &lock["workflows"][0]["jobs"];
    assert_eq!(jobs[0]["concurrencyGroup"], serde_json::json!("deploy"));
    assert_eq!(
        jobs[1]["concurrencyGroup"]["_type"],
        serde_json::json!("inline"),
        "{}",
        jobs[1]
    );
    check_error(
        "import { workflow, job, push } from '@kici-dev/sdk';\n\nexport default workflow('x', {\n  on: push(),\n  jobs: [\n    job('c', { runsOn: 'linux', concurrencyGroup: () => `deploy-${Date.now()}`, run: async () => {} }),\n  ],\n});\n",
        ".kici/workflows/broken.ts:6:5 error [E109]: Job \"c\": a concurrencyGroup function that is not pure (it uses the global 'Date') is not implemented by this build of KiCI\n",
    );
}

#[test]
fn environment_and_env_functions_are_inlined_when_pure_and_left_to_an_init_job_when_not() {
    let project = Project::with_workflow(
        "deploy.ts",
        "import { workflow, job, push } from '@kici-dev/sdk';\n\nexport default workflow('x', {\n  on: push(),\n  jobs: [job('a', {\n    runsOn: 'linux',\n    environment: (event) => (event.targetBranch === 'main' ? 'production' : 'staging'),\n    env: (event) => ({ TARGET: process.env.X }),\n    approval: { approvers: [{ user: 'alice' }], timeout: 600 },\n    secrets: ['DEPLOY_KEY'],\n    run: async () => {},\n  })],\n});\n",
    );
    let run = project.kici(&["compile"]);
    run.expect_code(0);
    assert_eq!(
        run.stderr,
        "[kici] Job \"a\": env function is not pure (it uses the global 'process'). An init job will be required, adding ~5-10s delay.\n"
    );
    let lock: serde_json::Value = serde_json::from_str(&project.read(".kici/kici.lock.json")).unwrap();
    let job = &lock["workflows"][0]["jobs"][0];
    assert_eq!(
        job["environments"],
        serde_json::json!([{"value": {"_type": "inline", "expression": "(event) => event.targetBranch === \"main\" ? \"production\" : \"staging\""}, "dynamic": false}])
    );
    assert_eq!(job["dynamicEnv"], serde_json::json!(true));
    assert!(job.get("env").is_none(), "{job}");
    assert_eq!(
        job["approval"],
        serde_json::json!({"clauses": [{"user": "alice"}], "timeoutSeconds": 600, "when": "always"})
    );
    assert_eq!(job["secrets"], serde_json::json!(["DEPLOY_KEY"]));
}

const TWO_JOBS: &str = "import { workflow, job, push } from '@kici-dev/sdk';\n\nexport default workflow('x', {\n  on: push(),\n  jobs: [\n    job('a', { runsOn: 'linux', needs: [NEEDS_A], run: async () => {} }),\n    job('b', { runsOn: 'linux', needs: [NEEDS_B], run: async () => {} }),\n  ],\n});\n";

fn two_jobs(needs_a: &str, needs_b: &str) -> String {
    TWO_JOBS.replace("NEEDS_A", needs_a).replace("NEEDS_B", needs_b)
}

#[test]
fn a_needs_cycle_is_e102() {
    check_error(
        &two_jobs("'b'", "'a'"),
        ".kici/workflows/broken.ts:6:5 error [E102]: Circular dependency: a -> b -> a\n  Suggestion: remove one of the needs in the cycle\n",
    );
}

#[test]
fn a_missing_need_is_e101_with_a_suggestion() {
    check_error(
        &two_jobs("", "'c'"),
        ".kici/workflows/broken.ts:7:5 error [E101]: Job \"b\" needs \"c\", which does not exist in workflow \"x\"\n  Suggestion: did you mean \"a\"?\n",
    );
}

#[test]
fn a_self_dependency_is_e103() {
    check_error(
        &two_jobs("'a'", ""),
        ".kici/workflows/broken.ts:6:5 error [E103]: Job \"a\" depends on itself\n  Suggestion: remove \"a\" from its own needs\n",
    );
}

#[test]
fn a_duplicate_job_name_is_e106() {
    check_error(
        &two_jobs("", "").replace("job('b'", "job('a'"),
        ".kici/workflows/broken.ts:7:5 error [E106]: Duplicate job name \"a\" in workflow \"x\"\n  Suggestion: job names must be unique within a workflow; rename one of them\n",
    );
}

#[test]
fn a_static_matrix_over_256_is_e104() {
    check_error(
        "import { workflow, job, push } from '@kici-dev/sdk';\nconst n = Array.from({ length: 17 }, (_, i) => String(i));\nexport default workflow('x', {\n  on: push(),\n  jobs: [job('m', { runsOn: 'linux', matrix: { a: n, b: n }, run: async () => {} })],\n});\n",
        ".kici/workflows/broken.ts:5:10 error [E104]: Job \"m\": static matrix has 289 combinations (max 256)\n",
    );
}

#[test]
fn a_file_without_a_workflow_is_e004() {
    check_error(
        "export const answer = 42;\n",
        ".kici/workflows/broken.ts: error [E004]: .kici/workflows/broken.ts exports no workflow\n",
    );
}

#[test]
fn a_module_that_throws_is_e003() {
    check_error(
        "import { workflow } from '@kici-dev/sdk';\n\nthrow new Error('boom');\n",
        ".kici/workflows/broken.ts:3:7 error [E003]: boom\n",
    );
}

#[test]
fn a_duplicate_workflow_name_is_e107() {
    let project = Project::with_workflow(
        "a.ts",
        "import { workflow, job, push } from '@kici-dev/sdk';\nexport default workflow('same', { on: push(), jobs: [job('j', { runsOn: 'linux', run: async () => {} })] });\n",
    );
    project.write(".kici/workflows/b.ts", &project.read(".kici/workflows/a.ts"));
    let run = project.kici(&["compile"]);
    run.expect_code(1);
    assert!(
        run.stderr.starts_with(".kici/workflows/b.ts:2:16 error [E107]: Duplicate workflow name \"same\" (also defined in .kici/workflows/a.ts)\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_workflows_is_e001() {
    let project = Project::empty();
    let run = project.kici(&["compile"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .starts_with(".kici/workflows: error [E001]: no .kici/workflows directory found in "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Suggestion: Run \"kici init\""), "{}", run.stderr);
    project.write(".kici/workflows/README.md", "no workflows here");
    let run = project.kici(&["compile"]);
    run.expect_code(1);
    assert_eq!(
        run.stderr,
        ".kici/workflows: error [E001]: .kici/workflows/ contains no *.ts workflow files\n  Suggestion: Run \"kici init\" to scaffold .kici/ with an example workflow\n✗ 1 error — kici.lock.json not written\n"
    );
}

#[test]
fn a_trigger_pattern_the_loader_would_reject_is_an_error() {
    check_error(
        "import { workflow, job, push } from '@kici-dev/sdk';\nexport default workflow('x', {\n  on: push({ branches: /^(?!wip)/ }),\n  jobs: [job('j', { runsOn: 'linux', run: async () => {} })],\n});\n",
        ".kici/workflows/broken.ts:2:16 error [E110]: Workflow \"x\": invalid push trigger: invalid pattern: invalid regex /^(?!wip)/:",
    );
}

#[test]
fn a_failed_compile_leaves_an_existing_lock_file_untouched() {
    let project = Project::with_workflow(
        "a.ts",
        "import { workflow, job, push } from '@kici-dev/sdk';\nexport default workflow('a', { on: push(), jobs: [job('j', { runsOn: 'linux', run: async () => {} })] });\n",
    );
    project.kici(&["compile"]).expect_code(0);
    let before = project.read(LOCK);
    project.write(".kici/workflows/a.ts", "export default workflow(;\n");
    project.kici(&["compile"]).expect_code(1);
    assert_eq!(project.read(LOCK), before);
}

const WATCHED: &str = "import { workflow, job, push } from '@kici-dev/sdk';\nexport default workflow('watched', { on: push(), jobs: [job('JOB', { runsOn: 'linux', run: async () => {} })] });\n";

#[test]
fn watch_compiles_on_every_save_reports_errors_and_stops_on_ctrl_c() {
    let project = Project::with_workflow("watched.ts", &WATCHED.replace("JOB", "first"));
    let mut watch = project.kici_background(&["compile", "--watch"]);
    let project = &project;
    let lock_has = |job: &str| {
        let needle = format!("\"name\": \"{job}\"");
        move |_: &support::Background| {
            // Read whole: the lock file is written beside and renamed into place.
            std::fs::read_to_string(project.path().join(LOCK)).is_ok_and(|lock| lock.contains(&needle))
        }
    };
    watch.wait_for("the first lock file", lock_has("first"));

    project.write(".kici/workflows/watched.ts", &WATCHED.replace("JOB", "second"));
    watch.wait_for("the lock file of the edited workflow", lock_has("second"));

    project.write(".kici/workflows/watched.ts", "export default workflow(;\n");
    watch.wait_for("the compile error", |w| {
        w.stderr().contains("kici.lock.json not written")
    });
    assert!(
        watch
            .stderr()
            .starts_with(".kici/workflows/watched.ts:1:25 error [E003]: "),
        "{}",
        watch.stderr()
    );
    assert!(watch.is_running(), "a compile error stopped --watch");
    assert!(project.read(LOCK).contains("\"name\": \"second\""));

    project.write(".kici/workflows/watched.ts", &WATCHED.replace("JOB", "third"));
    watch.wait_for("the lock file of the fixed workflow", lock_has("third"));
    watch.wait_for("the third result line", |w| w.stdout().matches('✓').count() == 3);
    let (stdout, stderr) = (watch.stdout(), watch.stderr());
    assert_eq!(watch.interrupt(), 0, "Ctrl+C exit code");

    // One line a compilation (stdout is not a terminal: no screen clearing), with its time.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[0], "Watching .kici/ for changes (Ctrl+C to stop)");
    for line in &lines[1..] {
        let took = line
            .strip_prefix("✓ Compiled workflows → .kici/kici.lock.json (1 workflow) in ")
            .and_then(|rest| rest.strip_suffix('s'))
            .unwrap_or_else(|| panic!("unexpected result line `{line}`"));
        assert!(took.parse::<f64>().is_ok(), "{line}");
    }
    assert!(!stdout.contains('\u{1b}'), "escape sequences on a pipe: {stdout:?}");
    let failures: Vec<&str> = stderr.lines().filter(|l| l.starts_with('✗')).collect();
    assert_eq!(failures.len(), 1, "{stderr}");
    assert!(
        failures[0].starts_with("✗ 1 error — kici.lock.json not written in "),
        "{stderr}"
    );
}

#[test]
fn verbose_lists_each_files_workflows_triggers_and_jobs_then_the_phase_timings() {
    let project = Project::with_workflow(
        "ci.ts",
        "import { workflow, job, push, pr } from '@kici-dev/sdk';\n\nconst build = job('build', { runsOn: 'linux', steps: [async () => {}, async () => {}] });\n\nexport default workflow('ci', {\n  on: [push({ branches: ['main'] }), pr({ target: 'main' })],\n  jobs: [\n    build,\n    job('test', { runsOn: 'linux', needs: [build], matrix: { node: ['18', '20'] }, run: async () => {} }),\n    job('report', { runsOn: 'linux', needs: [{ name: 'build', when: 'always' }], run: async () => {} }),\n  ],\n});\n",
    );
    project.write(
        ".kici/workflows/release.ts",
        "import { workflow, job, tag } from '@kici-dev/sdk';\nexport default workflow('release', { on: tag({ patterns: ['v*'] }), jobs: [job('publish', { runsOn: 'linux', run: async () => {} })] });\n",
    );
    let run = project.kici(&["compile", "--verbose"]);
    run.expect_code(0);
    let (listing, phases) = run
        .stdout
        .split_once("phases: ")
        .unwrap_or_else(|| panic!("no phases line:\n{}", run.stdout));
    assert_eq!(
        listing,
        ".kici/workflows/ci.ts\n  workflow ci\n    on: push (branches: main) | pr (target: main)\n    job build: 2 steps, runs on linux\n    job test: 1 step, needs build, matrix of 2, runs on linux\n    job report: 1 step, needs build (always), runs on linux\n.kici/workflows/release.ts\n  workflow release\n    on: tag (tags: v*)\n    job publish: 1 step, runs on linux\n"
    );
    let (timings, result) = phases.split_once('\n').expect("two lines");
    let names: Vec<&str> = timings
        .split(", ")
        .map(|phase| {
            let (name, ms) = phase.split_once(' ').expect("`<phase> <n> ms`");
            let ms = ms.strip_suffix(" ms").expect("milliseconds");
            assert!(ms.parse::<u64>().is_ok(), "{phase}");
            name
        })
        .collect();
    assert_eq!(names, ["stage", "describe", "generate"]);
    assert_eq!(result, "✓ Compiled workflows → .kici/kici.lock.json (2 workflows)\n");
}

#[test]
fn schedules_and_dispatch_inputs_reach_the_lock_file() {
    let project = Project::with_workflow(
        "deploy.ts",
        "import { workflow, job, dispatch, schedule, z } from '@kici-dev/sdk';\nexport default workflow('deploy', {\n  on: [dispatch({ inputs: { replicas: z.number().int().min(1).max(10).default(2) } }), schedule({ cron: '0 3 * * 1-5', timezone: 'Europe/Paris' })],\n  jobs: [job('j', { runsOn: 'linux', run: async () => {} })],\n});\n",
    );
    project.kici(&["compile"]).expect_code(0);
    let lock: serde_json::Value = serde_json::from_str(&project.read(LOCK)).unwrap();
    assert_eq!(
        lock["workflows"][0]["triggers"],
        serde_json::json!([
            {"_type": "dispatch", "types": [], "inputs": {"replicas": {"type": "integer", "optional": false, "nullable": false, "default": 2, "min": 1, "max": 10}}},
            {"_type": "schedule", "cronExpression": "0 3 * * 1-5", "timezone": "Europe/Paris"}
        ])
    );
}

#[test]
fn generic_webhook_auth_on_the_trigger_is_refused_for_the_sources_own() {
    check_error(
        "import { workflow, job, genericWebhook } from '@kici-dev/sdk';\nexport default workflow('x', {\n  on: genericWebhook({ source: 'alerts', auth: { method: 'api-key', secret: 'ALERT_TOKEN' } }),\n  jobs: [job('j', { runsOn: 'linux', run: async () => {} })],\n});\n",
        ".kici/workflows/broken.ts:2:16 error [E110]: Workflow \"x\": invalid generic_webhook trigger: genericWebhook({ auth }) is not implemented by this build: the source verifies its webhooks",
    );
}
