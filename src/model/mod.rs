//! The PATrack network (spec sections 1-7): the OSTrack ViT-B/16 backbone shared by the RGB and
//! the auxiliary stream, modality-dependent (`Mixer`) and modality-entangled (`PSFM`) adapters in
//! the blocks, the fusion `LN(x)[:, Lz:] + LN(xi)[:, Lz:]`, the task-level head adapter and the
//! center head.
//!
//! One struct per official PyTorch submodule, built on `nn::Path` with the official attribute
//! names, so variable names are the official state-dict keys (`backbone.blocks.3.highfuseadapter1.
//! obj_fuse.linearcat.weight`). Freezing and per-group learning rates for adapter training follow
//! from the names.

pub mod checkpoint;
pub mod config;
pub mod detect;
pub mod graph;
pub mod hashinit;
pub mod head;
pub mod load;
pub mod mixer;
mod pickle;
pub mod psfm;
pub mod vit;
pub mod weights;

pub use config::{CandidateElimination, ConfigError, ModelConfig};
pub use graph::{GraphError, GraphedTrack};
pub use head::HeadOutput;
pub use load::{load_file, LoadError};
pub use vit::{Capture, DropPath};
pub use weights::{is_dead_key, load_state_dict, KeyProblem, LoadReport, WeightError};

use tch::{nn, Device, Kind, Tensor};

use crate::device::Precision;

/// The whole network with its variables.
#[derive(Debug)]
pub struct PATrack {
    /// The variables, named by the official state-dict keys.
    pub vs: nn::VarStore,
    pub cfg: ModelConfig,
    pub backbone: vit::Backbone,
    /// The task-level adapter; absent in the RGB-only base.
    pub adapter_head: Option<head::HeadAdapter>,
    pub box_head: head::CenterPredictor,
    precision: Precision,
}

/// Errors building a network.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model configuration: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Weights(#[from] WeightError),
}

impl PATrack {
    /// A network with freshly initialised variables on `device` in `precision`.
    pub fn new(cfg: ModelConfig, device: Device, precision: Precision) -> Result<Self, ModelError> {
        cfg.validate()?;
        let mut vs = nn::VarStore::new(device);
        let root = vs.root();
        let backbone = vit::Backbone::new(&root / "backbone", &cfg);
        let adapter_head = (!cfg.rgb_only).then(|| head::HeadAdapter::new(&root / "adapter_head", &cfg));
        let box_head = head::CenterPredictor::new(&root / "box_head", &cfg);
        if precision != Precision::Fp32 {
            vs.set_kind(precision.kind());
        }
        Ok(Self { vs, cfg, backbone, adapter_head, box_head, precision })
    }

    /// Loads a state dict (official key names) strictly; see [`weights::load_state_dict`].
    pub fn load<I>(&mut self, tensors: I) -> Result<LoadReport, WeightError>
    where
        I: IntoIterator<Item = (String, Tensor)>,
    {
        load_state_dict(&self.vs, &self.cfg, tensors)
    }

    /// Fills every variable from the deterministic hash rule of the golden vectors.
    pub fn fill_hashed(&mut self) {
        hashinit::fill_var_store(&self.vs);
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Whether this is the RGB-only tracker (OSTrack-style, e.g. loaded from OSTrack's public
    /// checkpoint): the aux channels of every frame are ignored.
    pub fn is_rgb_only(&self) -> bool {
        self.cfg.rgb_only
    }

    /// Switches OSTrack's candidate elimination on (`Some`) or off (`None`, the default) without
    /// touching the weights; refused for the two-stream PATrack network (see
    /// [`CandidateElimination`]).
    pub fn set_candidate_elimination(&mut self, ce: Option<CandidateElimination>) -> Result<(), ModelError> {
        let cfg = ModelConfig { candidate_elimination: ce.clone(), ..self.cfg.clone() };
        cfg.validate()?;
        self.cfg = cfg;
        self.backbone.set_candidate_elimination(ce);
        Ok(())
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The dtype the network computes in.
    pub fn kind(&self) -> Kind {
        self.precision.kind()
    }

    /// Normalised template crop (B, 6, Hz, Wz) -> template tokens (2B, Lz, C) to keep for the
    /// whole sequence.
    pub fn embed_template(&self, z: &Tensor) -> Tensor {
        let _guard = tch::no_grad_guard();
        self.backbone.embed_template(&self.input(z))
    }

    /// Template tokens + normalised search crop (B, 6, Hx, Wx) -> the head's three maps.
    pub fn track(&self, z_tokens: &Tensor, x: &Tensor) -> HeadOutput {
        let _guard = tch::no_grad_guard();
        self.forward_tokens(z_tokens, x, None)
    }

    /// The whole network from the two crops, as the official `PATrack.forward`.
    pub fn forward(&self, z: &Tensor, x: &Tensor) -> HeadOutput {
        self.forward_tokens(&self.backbone.embed_template(&self.input(z)), x, None)
    }

    /// [`forward`](Self::forward) for training: stochastic depth in the blocks when `drop` is
    /// given (`None`: exactly `forward`).
    pub fn forward_train(&self, z: &Tensor, x: &Tensor, drop: Option<&mut DropPath>) -> HeadOutput {
        let z_tokens = self.backbone.embed_template(&self.input(z));
        let x_tokens = self.backbone.embed_search(&self.input(x));
        let fused = self.backbone.forward_dropping(&z_tokens, &x_tokens, None, drop);
        self.box_head.forward(&self.head_input(&fused))
    }

    /// As [`forward`](Self::forward), also returning the intermediates (for parity checks); the
    /// head input `(B, C, H, W)` is returned beside the capture.
    pub fn forward_capture(&self, z: &Tensor, x: &Tensor) -> (HeadOutput, Capture, Tensor) {
        let mut cap = Capture::default();
        let z_tokens = self.backbone.embed_template(&self.input(z));
        let x_tokens = self.backbone.embed_search(&self.input(x));
        let fused = self.backbone.forward(&z_tokens, &x_tokens, Some(&mut cap));
        let head_in = self.head_input(&fused);
        (self.box_head.forward(&head_in), cap, head_in)
    }

    fn forward_tokens(&self, z_tokens: &Tensor, x: &Tensor, capture: Option<&mut Capture>) -> HeadOutput {
        let x_tokens = self.backbone.embed_search(&self.input(x));
        let fused = self.backbone.forward(z_tokens, &x_tokens, capture);
        self.box_head.forward(&self.head_input(&fused))
    }

    /// Head adapter on the fused search tokens, laid out as a map: (B, Lx, C) -> (B, C, H, W).
    fn head_input(&self, fused: &Tensor) -> Tensor {
        let a = match &self.adapter_head {
            Some(adapter) => adapter.forward(fused),
            None => fused.shallow_clone(),
        };
        let (b, _, c) = a.size3().expect("tokens are (B, L, C)");
        let side = self.cfg.search_feat();
        a.transpose(1, 2).reshape([b, c, side, side])
    }

    /// Moves an input to the network's device and dtype.
    fn input(&self, t: &Tensor) -> Tensor {
        t.to_device(self.device()).to_kind(self.kind())
    }
}
