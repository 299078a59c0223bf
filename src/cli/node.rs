//! `patrack node`: the ROS 2 node over the pure-Rust DDS transport, without a ROS install.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::ros::params::{NodeParams, ParamSources};
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
    /// How service requests are laid out on DDS: `enhanced` for peers on Fast DDS (the default
    /// RMW of Humble and Jazzy), `cyclone` for peers on rmw_cyclonedds_cpp.
    #[arg(long, default_value = "enhanced", value_parser = ["enhanced", "cyclone"])]
    pub service_mapping: String,
}

/// The parameters from the files and `--set` overrides, merged in order and validated once (so
/// `--set thermal.low=28000 --set thermal.high=32000` works whatever the files say).
pub fn params(args: &Args) -> anyhow::Result<NodeParams> {
    let mut values = Vec::new();
    for item in &args.set {
        let (name, value) = item.split_once('=').with_context(|| format!("--set {item}: expected NAME=VALUE"))?;
        values.push((name.trim().to_owned(), value.to_owned()));
    }
    let sources = ParamSources::read(&args.params, &values)?;
    Ok(NodeParams::resolve_strict(&sources)?)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let params = params(&args)?;
    let mut options = DdsOptions { namespace: args.namespace, node_name: args.node_name, ..DdsOptions::default() };
    if let Some(id) = args.domain_id {
        options.domain_id = id;
    }
    if args.service_mapping == "cyclone" {
        options.service_mapping = ros2_client::ServiceMapping::Cyclone;
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
            service_mapping: "enhanced".into(),
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
        // Overrides are merged before one validation: raw 16-bit thermal counts.
        let set = ["thermal.scaling=fixed", "thermal.low=28000.0", "thermal.high=32000.0"];
        let p = params(&args(&[&base, &preset], &set)).unwrap();
        assert_eq!((p.thermal.low, p.thermal.high), (28000.0, 32000.0));
        // An override wins over a key the preset sets.
        let p = params(&args(&[&base, &preset], &["tracker.lost_threshold=0.5"])).unwrap();
        assert_eq!(p.tracker.lost_threshold, 0.5);
        assert!(params(&args(&["/nonexistent/patrack.yaml"], &[])).is_err());
    }
}
