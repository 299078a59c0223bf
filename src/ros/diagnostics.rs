//! The node's `/diagnostics` entry (`diagnostic_msgs/DiagnosticArray`, one status named
//! [`DIAGNOSTIC_NAME`]) from its counters: rates over the window since the previous report,
//! totals, the tracker state, and a level that says what is wrong first.

use crate::ros::inputs::Input;
use crate::ros::msgs::{DiagnosticArray, DiagnosticStatus, Header, KeyValue, Time};
use crate::ros::node::NodeStats;
use crate::ros::params::NodeParams;
use crate::ros::sync::SyncStats;
use crate::sensor::Modality;
use crate::tracker::TargetState;

/// Name of the node's entry in `/diagnostics`.
pub const DIAGNOSTIC_NAME: &str = "patrack: tracker";

/// Counters now and at the previous report.
pub struct Window<'a> {
    pub now: &'a NodeStats,
    pub before: &'a NodeStats,
    pub elapsed_s: f64,
}

fn array(stamp: Time, level: u8, message: String, hardware_id: &str, values: Vec<KeyValue>) -> DiagnosticArray {
    DiagnosticArray {
        header: Header { stamp, frame_id: String::new() },
        status: vec![DiagnosticStatus {
            level,
            name: DIAGNOSTIC_NAME.to_owned(),
            message,
            hardware_id: hardware_id.to_owned(),
            values,
        }],
    }
}

fn kv(values: &mut Vec<KeyValue>, key: &str, value: String) {
    values.push(KeyValue { key: key.to_owned(), value });
}

/// The status of a node without a loaded model (lifecycle `unconfigured` or `finalized`).
pub fn idle_status(stamp: Time, message: &str, context: &[(&str, String)]) -> DiagnosticArray {
    let mut values = Vec::new();
    for (key, value) in context {
        kv(&mut values, key, value.clone());
    }
    array(stamp, DiagnosticStatus::OK, message.to_owned(), "", values)
}

/// The status of a running tracker. Levels, first match wins: ERROR when the inference thread
/// has ended or every pair since the last good one failed; WARN when the cameras are silent, on
/// input or processing errors in the window, or when the target is lost; else OK.
pub fn tracker_status(
    w: &Window,
    params: &NodeParams,
    device: &str,
    stamp: Time,
    context: &[(&str, String)],
) -> DiagnosticArray {
    let (stats, prev) = (w.now, w.before);
    let rate = |now: u64, before: u64| format!("{:.2}", now.saturating_sub(before) as f64 / w.elapsed_s);
    let processed = stats.processed.saturating_sub(prev.processed);
    let mut values = Vec::new();
    for (key, value) in context {
        kv(&mut values, key, value.clone());
    }
    let cameras = Input::cameras(params);
    for input in cameras {
        let i = input.index();
        kv(&mut values, &format!("{}_rate_hz", input.key()), rate(stats.received[i], prev.received[i]));
    }
    kv(&mut values, "pairs_rate_hz", rate(stats.sync.pairs, prev.sync.pairs));
    kv(&mut values, "processed_rate_hz", rate(stats.processed, prev.processed));
    let drops = |s: &SyncStats| (s.dropped_a.total(), s.dropped_b.total());
    let (now_a, now_b) = drops(&stats.sync);
    let (prev_a, prev_b) = drops(&prev.sync);
    kv(&mut values, "sync_dropped_rgb", now_a.saturating_sub(prev_a).to_string());
    kv(&mut values, "sync_dropped_aux", now_b.saturating_sub(prev_b).to_string());
    kv(&mut values, "sync_dropped_total", (now_a + now_b).to_string());
    kv(&mut values, "pairs_skipped_busy", stats.pairs_skipped_busy.saturating_sub(prev.pairs_skipped_busy).to_string());
    kv(&mut values, "pairs_skipped_busy_total", stats.pairs_skipped_busy.to_string());
    kv(&mut values, "pairs_skipped_rate_total", stats.pairs_skipped_rate.to_string());
    kv(&mut values, "dropped_disabled_total", stats.dropped_disabled.to_string());
    let malformed: u64 = stats.malformed.iter().sum();
    kv(&mut values, "malformed_messages_total", malformed.to_string());
    kv(&mut values, "frame_errors_total", stats.frame_errors.to_string());
    kv(&mut values, "inits_rejected_total", stats.inits_rejected.to_string());
    kv(&mut values, "track_errors_total", stats.track_errors.to_string());
    kv(&mut values, "inference_failures_total", stats.inference_failures.to_string());
    // Means only over a window that processed something: no "nan" before the first frame.
    if processed > 0 {
        let mean = |sum: f64, before: f64| format!("{:.2}", (sum - before) / processed as f64);
        kv(&mut values, "inference_ms_mean", mean(stats.inference_ms_sum, prev.inference_ms_sum));
        kv(&mut values, "latency_ms_mean", mean(stats.latency_ms_sum, prev.latency_ms_sum));
    }
    kv(&mut values, "latency_ms_max_total", format!("{:.2}", stats.latency_ms_max));
    let state = stats.state.unwrap_or(TargetState::Uninitialised);
    kv(&mut values, "state", state.to_string());
    kv(&mut values, "confidence", format!("{:.3}", stats.last_score));
    kv(&mut values, "track_id", stats.track_id.to_string());
    let several = params.max_targets > 1;
    let lost = stats.targets.iter().filter(|(_, s, _)| *s == TargetState::Lost).count();
    if several {
        // One value for all targets: "id state score" per target, in the targets' order.
        let list: Vec<String> = stats.targets.iter().map(|(id, s, score)| format!("{id} {s} {score:.3}")).collect();
        kv(&mut values, "targets", list.join("; "));
    }
    kv(&mut values, "processed_total", stats.processed.to_string());
    kv(&mut values, "device", device.to_owned());
    if params.modality == Modality::Depth {
        // Without a calibration the 3D outputs are silent; say so where operators look.
        let camera = stats.camera.clone().unwrap_or_else(|| "none received: no 3D output".to_owned());
        kv(&mut values, "camera_info", camera);
        kv(&mut values, "camera_info_invalid_total", stats.camera_info_invalid.to_string());
        kv(&mut values, "targets_3d_total", stats.targets_3d.to_string());
        kv(&mut values, "depth_missing_total", stats.depth_missing.to_string());
        if !stats.last_depth_missing.is_empty() {
            kv(&mut values, "depth_missing_last", stats.last_depth_missing.clone());
        }
    }
    let received_cameras = cameras.iter().all(|i| stats.received[i.index()] > prev.received[i.index()]);
    let errors_now = stats.malformed.iter().sum::<u64>() > prev.malformed.iter().sum::<u64>()
        || stats.frame_errors > prev.frame_errors
        || stats.track_errors > prev.track_errors
        || stats.publish_errors > prev.publish_errors;
    let (level, message) = if !stats.inference_alive {
        (DiagnosticStatus::ERROR, "the inference thread has stopped: nothing is tracked (restart the node)".to_owned())
    } else if stats.consecutive_failures > 0 {
        let last = &stats.last_failure;
        (DiagnosticStatus::ERROR, format!("inference failing ({} pairs in a row): {last}", stats.consecutive_failures))
    } else if !params.enabled {
        (DiagnosticStatus::OK, "disabled (enabled = false): camera messages are dropped".to_owned())
    } else if !received_cameras {
        (DiagnosticStatus::WARN, "waiting for rgb and aux images".to_owned())
    } else if errors_now {
        (DiagnosticStatus::WARN, format!("{state}; input or processing errors (see counters)"))
    } else if several && lost > 0 {
        (DiagnosticStatus::WARN, format!("{lost} of {} targets lost", stats.targets.len()))
    } else if several {
        (DiagnosticStatus::OK, format!("{} targets tracking", stats.targets.len()))
    } else if state == TargetState::Lost {
        (DiagnosticStatus::WARN, "target lost".to_owned())
    } else {
        (DiagnosticStatus::OK, state.to_string())
    };
    array(stamp, level, message, device, values)
}
