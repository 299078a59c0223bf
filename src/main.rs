use clap::Parser;

fn main() -> std::process::ExitCode {
    // Before anything else: libgomp reads the wait policy when libtorch loads (thread policy in
    // the README).
    if let Err(e) = patrack::device::ensure_passive_omp() {
        eprintln!("warning: {}", patrack::cli::error_chain(&e.into()));
    }
    patrack::device::tune_allocator();
    patrack::device::set_flush_denormals(true);
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,rustdds=warn")).init();
    match patrack::cli::run(patrack::cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", patrack::cli::error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
