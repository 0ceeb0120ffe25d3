//! `kici preview <event>`: the dry run's output for matching and non-matching workflows (trigger,
//! branch, paths), the jobs with their needs, `--job`, and its exit codes.

mod support;

use support::Project;

const CI: &str = "import { workflow, job, push, pr } from '@kici-dev/sdk';\n\nconst build = job('build', { runsOn: 'linux', steps: [async () => {}, async () => {}] });\n\nexport default workflow('ci', {\n  on: [push({ branches: ['main'] }), pr({ target: 'main' })],\n  jobs: [\n    build,\n    job('test', { runsOn: 'linux', needs: [build], matrix: { node: ['18', '20'] }, run: async () => {} }),\n    job('lint', { runsOn: 'linux', run: async () => {} }),\n  ],\n});\n";
const DOCS: &str = "import { workflow, job, push } from '@kici-dev/sdk';\nexport default workflow('docs', { on: push({ paths: ['docs/**'] }), jobs: [job('site', { runsOn: 'linux', run: async () => {} })] });\n";
const RELEASE: &str = "import { workflow, job, tag } from '@kici-dev/sdk';\nexport default workflow('release', { on: tag({ patterns: ['v*'] }), jobs: [job('publish', { runsOn: 'linux', run: async () => {} })] });\n";

fn project() -> Project {
    let project = Project::with_workflow("ci.ts", CI);
    project.write(".kici/workflows/docs.ts", DOCS);
    project.write(".kici/workflows/release.ts", RELEASE);
    project.commit();
    project
}

#[test]
fn a_push_shows_what_runs_with_its_jobs_and_why_the_rest_does_not() {
    let project = project();
    let run = project.kici(&["preview", "push", "--files", "src/app.ts"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "🔍 DRY RUN: push event on main (1 changed file)

✓ ci (.kici/workflows/ci.ts) runs: trigger 1 matched, push (branches: main)
    build: 2 steps, runs on linux
    test: 1 step, needs build, matrix of 2, runs on linux
    lint: 1 step, runs on linux
✗ docs (.kici/workflows/docs.ts) does not run: paths: expected docs/**, got src/app.ts
✗ release (.kici/workflows/release.ts) does not run: type: expected tag, got push

Decision Summary: 1 of 3 workflows would run: ci
"
    );
    assert!(!project.exists(".kici/kici.lock.json"), "preview wrote a lock file");
}

#[test]
fn branch_job_and_nothing_matching() {
    let project = project();
    let run = project.kici(&[
        "preview",
        "push",
        "--branch",
        "dev",
        "--files",
        "docs/index.md",
        "--job",
        "site",
    ]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "🔍 DRY RUN: push event on dev (1 changed file)

✗ ci (.kici/workflows/ci.ts) does not run: push (branches: main): branches: expected main, got dev; pr (target: main): type: expected pull_request, got push
✓ docs (.kici/workflows/docs.ts) runs: trigger 1 matched, push (paths: docs/**)
    site: 1 step, runs on linux
✗ release (.kici/workflows/release.ts) does not run: type: expected tag, got push

Decision Summary: 1 of 3 workflows would run: docs
"
    );
    let run = project.kici(&[
        "preview",
        "pr",
        "--workflow",
        "ci",
        "--job",
        "test",
        "--base",
        "main",
        "--branch",
        "feature",
    ]);
    run.expect_code(0);
    assert!(
        run.stdout.contains(
            "✓ ci (.kici/workflows/ci.ts) runs: trigger 2 matched, pr (target: main)\n    build: 2 steps, runs on linux\n    test: 1 step, needs build, matrix of 2, runs on linux\n\nDecision Summary: 1 of 1 workflow would run: ci\n"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .starts_with("🔍 DRY RUN: pull_request:opened event on main from feature ("),
        "{}",
        run.stdout
    );

    let run = project.kici(&["preview", "tag:v1", "--workflow", "docs"]);
    run.expect_code(0);
    assert!(
        run.stdout.ends_with("\nDecision Summary: 0 of 1 workflow would run\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn bad_input_fails_with_a_hint() {
    let project = project();
    let run = project.kici(&["preview"]);
    run.expect_code(2);
    assert!(run.stderr.contains("Usage: kici preview"), "{}", run.stderr);
    let run = project.kici(&["preview", "push", "--job", "nope"]);
    run.expect_code(1);
    assert_eq!(
        run.stderr,
        "error: no job named 'nope'\n  hint: jobs: build, test, lint, site, publish\n"
    );
    let run = project.kici(&["preview", "push", "--workflow", "nope"]);
    run.expect_code(1);
    assert_eq!(
        run.stderr,
        "error: no workflow named 'nope'\n  hint: workflows: ci, docs, release\n"
    );
}
