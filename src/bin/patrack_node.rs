//! `patrack_node`: the PATrack tracker as a ROS 2 node (r2r). Started by
//! `ros2 run patrack patrack_node --ros-args ...` or `launch/patrack.launch.py`; parameters come
//! from `--params-file` / `-p` (see `config/patrack.yaml`).

#[cfg(feature = "ros")]
fn main() -> std::process::ExitCode {
    // Before anything else: libgomp reads the wait policy when libtorch loads (thread policy in
    // the README).
    if let Err(e) = patrack::device::ensure_passive_omp() {
        eprintln!("warning: {}", patrack::cli::error_chain(&e.into()));
    }
    patrack::device::tune_allocator();
    patrack::device::set_flush_denormals(true);
    match patrack::ros::transport::r2r::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Through the ROS logger when it is up, so the reason also reaches /rosout; each
            // cause once.
            let message = patrack::cli::error_chain(&e);
            log::error!("patrack_node stopped: {message}");
            if log::max_level() == log::LevelFilter::Off {
                eprintln!("patrack_node: {message}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Without the `ros` feature there is no ROS client library in the binary: say how to get one
/// instead of installing a node that cannot join a graph.
#[cfg(not(feature = "ros"))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "patrack_node: this build has no ROS 2 support. Build it in a sourced ROS 2 workspace with \
         `colcon build --packages-select patrack --cargo-args --release --features ros` (add `--features cuda` \
         for GPUs), or use `patrack node` (feature dds) without a ROS install."
    );
    std::process::ExitCode::from(2)
}
