//! The network through CUDA graphs, one per batch size, each captured the first time that batch
//! size runs (the single-target `Tracker` always runs a batch of 1, the `MultiTracker` a batch of
//! its target count). Eager on other devices, when `cuda_graph` is off, and from the first failed
//! capture or replay on (with a warning): a graph is an optimisation, never a reason to stop.
//!
//! Each graph keeps its own input, activation and output buffers, so memory grows with the number
//! of batch sizes seen (at most `max_targets`); a graph stays until the tracker is dropped.

use std::collections::BTreeMap;

use tch::Tensor;

use crate::model::{GraphedTrack, HeadOutput, PATrack};

/// Captured graphs by batch size.
#[derive(Debug, Default)]
pub struct GraphCache {
    graphs: BTreeMap<i64, GraphedTrack>,
    failed: bool,
}

impl GraphCache {
    /// `model.track(z_tokens, x)`: replayed from the graph of `x`'s batch size when `use_graphs`
    /// and the model is on CUDA (capturing it first), else eagerly.
    pub fn network(&mut self, model: &PATrack, use_graphs: bool, z_tokens: &Tensor, x: &Tensor) -> HeadOutput {
        if use_graphs && model.device().is_cuda() && !self.failed {
            let batch = x.size().first().copied().unwrap_or(0);
            if let std::collections::btree_map::Entry::Vacant(slot) = self.graphs.entry(batch) {
                match GraphedTrack::capture(model, z_tokens, x) {
                    Ok(g) => {
                        log::info!("network captured as a CUDA graph for a batch of {batch}");
                        slot.insert(g);
                    }
                    Err(e) => {
                        log::warn!("{e}; running the network eagerly");
                        self.failed = true;
                    }
                }
            }
            if let Some(g) = self.graphs.get_mut(&batch) {
                match g.run(z_tokens, x) {
                    Ok(head) => return head,
                    Err(e) => log::warn!("{e}; running the network eagerly from now on"),
                }
                self.graphs.clear();
                self.failed = true;
            }
        }
        model.track(z_tokens, x)
    }

    /// The batch sizes with a captured graph.
    pub fn batch_sizes(&self) -> Vec<i64> {
        self.graphs.keys().copied().collect()
    }

    /// A capture or replay failed: the network runs eagerly from now on.
    pub fn failed(&self) -> bool {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Precision;
    use crate::model::ModelConfig;
    use tch::{Device, Kind};

    #[test]
    fn on_the_cpu_the_network_runs_eagerly_and_nothing_is_captured() {
        let mut model = PATrack::new(ModelConfig::tiny(), Device::Cpu, Precision::Fp32).unwrap();
        model.fill_hashed();
        let c = &model.cfg;
        let z =
            model.embed_template(&Tensor::rand([2, 6, c.template_size, c.template_size], (Kind::Float, Device::Cpu)));
        let x = Tensor::rand([2, 6, c.search_size, c.search_size], (Kind::Float, Device::Cpu));
        let mut cache = GraphCache::default();
        let head = cache.network(&model, true, &z, &x);
        let eager = model.track(&z, &x);
        assert_eq!((head.score_map - eager.score_map).abs().max().double_value(&[]), 0.0);
        assert!(cache.batch_sizes().is_empty() && !cache.failed());
    }
}
