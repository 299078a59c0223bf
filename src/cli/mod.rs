//! The `patrack` command line: one file per subcommand.

use clap::{Parser, Subcommand};

pub mod bag;
pub mod bench;
pub mod common;
pub mod convert;
pub mod eval;
pub mod info;
pub mod init_weights;
#[cfg(feature = "dds-transport")]
pub mod node;
pub mod replay;
pub mod run;
pub mod synth;
pub mod train;

/// PATrack multi-modal single-object tracker (RGB + thermal / depth / event) on libtorch.
#[derive(Debug, Parser)]
#[command(name = "patrack", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// libtorch version, CUDA/cuDNN state, devices and CPU features: the first diagnostic.
    Info(info::Args),
    /// Track one sequence folder offline; writes annotated frames and boxes (the demo).
    Run(run::Args),
    /// Convert an official .pth.tar checkpoint (or a state dict file) to .safetensors.
    Convert(convert::Args),
    /// Run the tracker over a benchmark (LasHeR, RGBT234, GTOT, DepthTrack, VisEvent) or score
    /// existing raw results; tables and plots.
    Eval(eval::Args),
    /// Track through a recorded rosbag2 bag (MCAP or sqlite3) offline; writes an output bag and
    /// CSV/JSON.
    Replay(Box<replay::Args>),
    /// Write benchmark sequences (LasHeR, RGBT234, GTOT, DepthTrack, VisEvent) as rosbag2 MCAP
    /// bags with the ground truth as a topic, for `ros2 bag play` and `patrack replay`.
    Bag(bag::Args),
    /// Write the deterministic test weights (untrained) as a .safetensors file.
    InitWeights(init_weights::Args),
    /// Network and full-step latency, throughput and peak memory per device and precision.
    Bench(bench::Args),
    /// Progressive adaptation training: the RGB-only base, then adapters per modality.
    Train(train::Args),
    /// Write a synthetic RGB+X benchmark (thermal, depth or event) in its benchmark layout.
    Synth(synth::Args),
    /// The ROS 2 node over a pure-Rust DDS stack (no ROS install needed).
    #[cfg(feature = "dds-transport")]
    Node(node::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Info(a) => info::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Run(a) => run::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Replay(a) => replay::run(*a),
        Command::Bag(a) => bag::run(a),
        Command::InitWeights(a) => init_weights::run(a),
        Command::Train(a) => train::run(a),
        Command::Synth(a) => synth::run(a),
        #[cfg(feature = "dds-transport")]
        Command::Node(a) => node::run(a),
    }
}

/// The error and its causes joined by `: `, each stated once: a cause whose text the message
/// already contains (an error that prints its source and also returns it) is not repeated.
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut message = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_chain_states_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("{path}: {source}")]
        struct Repeats {
            path: String,
            source: std::io::Error,
        }
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = anyhow::Error::new(Repeats { path: "a.yaml".into(), source: io }).context("reading parameters");
        let text = super::error_chain(&e);
        assert_eq!(text.matches("not found").count(), 1, "{text}");
        assert!(text.starts_with("reading parameters: a.yaml: "), "{text}");
    }
}
