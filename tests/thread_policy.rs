//! The OpenMP wait policy of the thread policy (README, "Thread policy"):
//! `device::ensure_passive_omp` restarts the process once with `OMP_WAIT_POLICY=PASSIVE` when the
//! variable is unset and keeps a value the user set. The test re-runs its own binary as a child
//! (a restart replaces the whole process, so it cannot run in the test process itself).

use patrack::device::{ensure_passive_omp, OMP_WAIT_POLICY};

/// Runs this test binary again as a child that calls [`ensure_passive_omp`]: the child prints a
/// line before the call and the policy it ends up with after it, so a restart shows as two
/// "before" lines from one process id.
#[test]
fn passive_omp_restarts_once_and_keeps_a_chosen_policy() {
    const CHILD: &str = "PATRACK_TEST_OMP_CHILD";
    if std::env::var_os(CHILD).is_some() {
        eprintln!("before pid={}", std::process::id());
        let result = ensure_passive_omp();
        eprintln!(
            "after {}={} ok={}",
            OMP_WAIT_POLICY,
            std::env::var(OMP_WAIT_POLICY).unwrap_or_default(),
            result.is_ok()
        );
        return;
    }
    let run = |policy: Option<&str>| {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command.args(["--exact", "passive_omp_restarts_once_and_keeps_a_chosen_policy"]);
        command.args(["--nocapture", "--test-threads=1"]).env(CHILD, "1");
        match policy {
            Some(p) => command.env(OMP_WAIT_POLICY, p),
            None => command.env_remove(OMP_WAIT_POLICY),
        };
        let out = command.output().unwrap();
        assert!(out.status.success());
        let stderr = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("before") || l.starts_with("after")).collect();
        // A restart is an exec: the same process, not a child.
        let mut pids: Vec<&str> = lines.iter().filter_map(|l| l.split(" pid=").nth(1)).collect();
        pids.dedup();
        assert_eq!(pids.len(), 1, "{stderr}");
        lines.iter().map(|l| l.split(" pid=").next().unwrap()).collect::<Vec<_>>().join("|")
    };
    // Unset: one restart, then PASSIVE.
    assert_eq!(run(None), "before|before|after OMP_WAIT_POLICY=PASSIVE ok=true");
    // Chosen by the user: no restart, the value kept.
    assert_eq!(run(Some("ACTIVE")), "before|after OMP_WAIT_POLICY=ACTIVE ok=true");
    assert_eq!(run(Some("")), "before|after OMP_WAIT_POLICY= ok=true");
}
