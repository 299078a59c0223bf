//! The parts of a ROS 2 command line (`--ros-args ... [--]`) the node reads itself: parameter
//! files and `-p` values in order (see [`crate::ros::params`] for why), the node name and
//! namespace remaps, and log levels. Everything else is left to rcl, which reads the same
//! command line.

use std::path::PathBuf;

/// Errors of a ROS command line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("{flag} needs a value")]
    MissingValue { flag: String },
    #[error("{flag} {value}: expected NAME:=VALUE")]
    NotAnAssignment { flag: String, value: String },
}

/// What the node takes from its command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosArgs {
    /// `--params-file FILE`, in order.
    pub params_files: Vec<PathBuf>,
    /// `-p NAME:=VALUE` / `--param NAME:=VALUE`, in order; values are YAML text.
    pub params: Vec<(String, String)>,
    /// `-r __node:=NAME` (or `__name`).
    pub node_name: Option<String>,
    /// `-r __ns:=NS`.
    pub namespace: Option<String>,
    /// `--log-level LEVEL` and `--log-level LOGGER:=LEVEL`.
    pub log_levels: Vec<(Option<String>, String)>,
    /// Topic and service remaps `-r FROM:=TO`, in order (for messages that name the topic a
    /// subscription really reads; rcl applies them itself).
    pub remaps: Vec<(String, String)>,
}

impl RosArgs {
    /// Reads the `--ros-args` sections of a command line (the program name may be included).
    /// A section runs to the next `--` or `--ros-args` or the end; arguments outside sections
    /// are not the node's concern.
    pub fn parse<I, S>(args: I) -> Result<Self, ArgsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out = Self::default();
        let mut in_ros = false;
        let mut it = args.into_iter().map(Into::into);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--ros-args" => {
                    in_ros = true;
                    continue;
                }
                "--" => {
                    in_ros = false;
                    continue;
                }
                _ if !in_ros => continue,
                _ => {}
            }
            let mut value = |flag: &str| it.next().ok_or_else(|| ArgsError::MissingValue { flag: flag.to_owned() });
            match arg.as_str() {
                "--params-file" => out.params_files.push(PathBuf::from(value("--params-file")?)),
                "-p" | "--param" => {
                    let v = value(&arg)?;
                    let (name, text) = split_assignment(&arg, &v)?;
                    out.params.push((name.to_owned(), text.to_owned()));
                }
                "-r" | "--remap" => {
                    let v = value(&arg)?;
                    let (from, to) = split_assignment(&arg, &v)?;
                    // `node:__ns:=x` targets one node of a process; this process has one.
                    let from = from.rsplit(':').next().unwrap_or(from);
                    match from {
                        "__node" | "__name" => out.node_name = Some(to.to_owned()),
                        "__ns" => out.namespace = Some(to.to_owned()),
                        _ => out.remaps.push((from.to_owned(), to.to_owned())),
                    }
                }
                "--log-level" => {
                    let v = value("--log-level")?;
                    match v.split_once(":=") {
                        Some((logger, level)) => out.log_levels.push((Some(logger.to_owned()), level.to_owned())),
                        None => out.log_levels.push((None, v)),
                    }
                }
                // Flags with one value the node does not read.
                "-e" | "--enclave" | "--log-config-file" | "--log-file-name" => {
                    value(&arg)?;
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The node's fully qualified name with the remaps applied.
    pub fn node_fqn(&self, default_name: &str) -> String {
        let name = self.node_name.as_deref().unwrap_or(default_name);
        let ns = self.namespace.as_deref().unwrap_or("/").trim_end_matches('/');
        let ns = if ns.is_empty() || ns.starts_with('/') { ns.to_owned() } else { format!("/{ns}") };
        format!("{ns}/{name}")
    }

    /// The name a relative topic of the node resolves to: expanded in the node's namespace, then
    /// remapped when a rule names it (relative or fully qualified; the first matching rule
    /// wins, as in rcl).
    pub fn resolve_topic(&self, topic: &str, default_name: &str) -> String {
        let fqn = self.node_fqn(default_name);
        let (namespace, name) = fqn.rsplit_once('/').unwrap_or(("", default_name));
        let namespace = if namespace.is_empty() { "/" } else { namespace };
        let expanded = crate::ros::output::expand_topic(topic, namespace, name);
        for (from, to) in &self.remaps {
            let from_expanded = crate::ros::output::expand_topic(from, namespace, name);
            if from_expanded == expanded {
                return crate::ros::output::expand_topic(to, namespace, name);
            }
        }
        expanded
    }

    /// The level for the node's own logger: `--log-level LEVEL`, or `--log-level NAME:=LEVEL`
    /// for the node's logger name (the last one given wins, as in rcl).
    pub fn log_level(&self, logger: &str) -> Option<log::LevelFilter> {
        self.log_levels
            .iter()
            .rev()
            .find(|(name, _)| name.as_deref().is_none_or(|n| n == logger))
            .and_then(|(_, level)| parse_level(level))
    }
}

fn split_assignment<'a>(flag: &str, value: &'a str) -> Result<(&'a str, &'a str), ArgsError> {
    value
        .split_once(":=")
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| ArgsError::NotAnAssignment { flag: flag.to_owned(), value: value.to_owned() })
}

/// rcutils severity names (any case) as `log` levels.
pub fn parse_level(text: &str) -> Option<log::LevelFilter> {
    Some(match text.to_ascii_lowercase().as_str() {
        "debug" => log::LevelFilter::Debug,
        "info" => log::LevelFilter::Info,
        "warn" | "warning" => log::LevelFilter::Warn,
        "error" | "fatal" => log::LevelFilter::Error,
        "unset" => return None,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sections_launch_ros_writes_in_order() {
        // What launch_ros passes for Node(parameters=[base, preset, {dict}], name=..., namespace=...).
        let args = RosArgs::parse([
            "patrack_node",
            "--ros-args",
            "-r",
            "__node:=tracker",
            "-r",
            "__ns:=/robot",
            "--params-file",
            "/share/config/patrack.yaml",
            "--params-file",
            "/share/config/rgbe.yaml",
            "--params-file",
            "/tmp/launch_params_x",
            "-p",
            "tracker.lost_threshold:=0.5",
            "--log-level",
            "debug",
            "--",
            "-p",
            "not:=mine",
            "--ros-args",
            "--param",
            "thermal.low:=28000.0",
            "-r",
            "rgb/image:=/camera/color/image_raw",
        ])
        .unwrap();
        assert_eq!(
            args.params_files,
            ["/share/config/patrack.yaml", "/share/config/rgbe.yaml", "/tmp/launch_params_x"].map(PathBuf::from)
        );
        assert_eq!(
            args.params,
            [("tracker.lost_threshold".into(), "0.5".into()), ("thermal.low".into(), "28000.0".into())]
        );
        assert_eq!(args.node_fqn("patrack"), "/robot/tracker");
        assert_eq!(args.resolve_topic("rgb/image", "patrack"), "/camera/color/image_raw");
        assert_eq!(args.resolve_topic("aux/image", "patrack"), "/robot/aux/image");
        assert_eq!(args.resolve_topic("~/init", "patrack"), "/robot/tracker/init");
        assert_eq!(args.log_level("robot.tracker"), Some(log::LevelFilter::Debug));
    }

    #[test]
    fn logger_specific_levels_and_defaults() {
        let args = RosArgs::parse(["--ros-args", "--log-level", "patrack:=WARN", "--log-level", "rcl:=debug"]).unwrap();
        assert_eq!(args.log_level("patrack"), Some(log::LevelFilter::Warn));
        assert_eq!(args.log_level("other"), None);
        assert_eq!(RosArgs::parse(["x"]).unwrap().node_fqn("patrack"), "/patrack");
        assert_eq!(RosArgs::parse(["--ros-args", "-r", "__ns:=robot"]).unwrap().node_fqn("patrack"), "/robot/patrack");
    }

    #[test]
    fn malformed_arguments_are_errors_naming_the_flag() {
        assert_eq!(
            RosArgs::parse(["--ros-args", "-p", "novalue"]),
            Err(ArgsError::NotAnAssignment { flag: "-p".into(), value: "novalue".into() })
        );
        assert_eq!(
            RosArgs::parse(["--ros-args", "--params-file"]),
            Err(ArgsError::MissingValue { flag: "--params-file".into() })
        );
        assert!(RosArgs::parse(["-p", "outside:=ros-args"]).unwrap().params.is_empty());
    }
}
