//! `patrack node`: the ROS 2 node over the pure-Rust DDS transport, without a ROS install.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::ros::params::NodeParams;
use crate::ros::transport::dds::{self, DdsOptions};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// `ros__parameters` YAML files (config/patrack.yaml, then presets), merged in order.
    #[arg(long = "params", value_name = "FILE")]
    pub params: Vec<PathBuf>,
    /// One parameter by its dotted ROS name, the value in YAML (e.g. `sync.queue_size=5`,
    /// `initial_bbox=[10, 20, 40, 30]`); applied after the files.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// ROS namespace of the node (topics are relative to it).
    #[arg(long, default_value = "/")]
    pub namespace: String,
    #[arg(long, default_value = crate::ros::params::NODE_NAME)]
    pub node_name: String,
    /// DDS domain; default `ROS_DOMAIN_ID` or 0.
    #[arg(long)]
    pub domain_id: Option<u16>,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long)]
    pub run_for_s: Option<f64>,
}

/// The parameters from the files and `--set` overrides.
pub fn params(args: &Args) -> anyhow::Result<NodeParams> {
    let mut params = if args.params.is_empty() { NodeParams::default() } else { NodeParams::from_files(&args.params)? };
    for item in &args.set {
        let (name, value) = item.split_once('=').with_context(|| format!("--set {item}: expected NAME=VALUE"))?;
        let value: serde_yaml::Value =
            serde_yaml::from_str(value).with_context(|| format!("--set {item}: value is not YAML"))?;
        params = params.with_value(name.trim(), value).with_context(|| format!("--set {item}"))?;
    }
    Ok(params)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let params = params(&args)?;
    let mut options = DdsOptions { namespace: args.namespace, node_name: args.node_name, ..DdsOptions::default() };
    if let Some(id) = args.domain_id {
        options.domain_id = id;
    }
    if let Some(s) = args.run_for_s {
        options.run_for = Some(Duration::try_from_secs_f64(s).context("--run-for-s")?);
    }
    dds::run(params, &options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(params: &[&str], set: &[&str]) -> Args {
        Args {
            params: params.iter().map(PathBuf::from).collect(),
            set: set.iter().map(|s| s.to_string()).collect(),
            namespace: "/".into(),
            node_name: "patrack".into(),
            domain_id: None,
            run_for_s: None,
        }
    }

    #[test]
    fn files_then_overrides_make_the_parameters() {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
        let base = format!("{config}/patrack.yaml");
        let preset = format!("{config}/rgbe.yaml");
        let p = params(&args(&[&base, &preset], &["sync.queue_size=5", "initial_bbox=[1, 2, 3, 4]", "device=cpu"]))
            .unwrap();
        assert_eq!(p.modality, crate::sensor::Modality::Event);
        assert_eq!(p.sync.queue_size, 5);
        assert_eq!(p.initial_bbox, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(p.device, "cpu");
        for bad in ["sync.queue_size", "sync.queue_size=0", "nope=1", "initial_bbox=[1, 2"] {
            assert!(params(&args(&[], &[bad])).is_err(), "{bad}");
        }
        assert!(params(&args(&["/nonexistent/patrack.yaml"], &[])).is_err());
    }
}
