use clap::Parser;

fn main() -> std::process::ExitCode {
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
