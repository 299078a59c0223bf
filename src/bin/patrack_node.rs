//! `patrack_node`: the PATrack tracker as a ROS 2 node (r2r). Started by
//! `ros2 run patrack patrack_node --ros-args ...` or `launch/patrack.launch.py`; parameters come
//! from `--params-file` / `-p` (see `config/patrack.yaml`).

fn main() -> std::process::ExitCode {
    patrack::device::tune_allocator();
    patrack::device::set_flush_denormals(true);
    match patrack::ros::transport::r2r::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("patrack_node: {}", patrack::cli::error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
