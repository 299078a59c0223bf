//! Each adapter alone against the official module (`tests/data/adapters.safetensors`).

mod common;

use common::{assert_close, load_golden};
use patrack::model::head::HeadAdapter;
use patrack::model::mixer::Mixer;
use patrack::model::psfm::Psfm;
use patrack::model::{hashinit, ModelConfig};
use tch::nn;

#[test]
fn mixer_matches_official() {
    let g = load_golden("adapters.safetensors");
    let cfg = ModelConfig::vit_base();
    let vs = nn::VarStore::new(common::test_device());
    let mixer = Mixer::new(vs.root() / "backbone" / "blocks" / 0 / "adap_t", &cfg);
    hashinit::fill_var_store(&vs);
    let out = tch::no_grad(|| mixer.forward(&g["mixer.input"].to_device(vs.device())));
    assert_close("mixer", &out, &g["mixer.output"], 1e-4);
}

#[test]
fn psfm_matches_official_at_both_sizes() {
    let g = load_golden("adapters.safetensors");
    let cfg = ModelConfig::vit_base();
    let vs = nn::VarStore::new(common::test_device());
    let psfm = Psfm::new(vs.root() / "backbone" / "blocks" / 3 / "highfuseadapter1", &cfg);
    hashinit::fill_var_store(&vs);
    for side in [16, 8] {
        let out = tch::no_grad(|| {
            psfm.forward(
                &g[&format!("psfm.rgb{side}")].to_device(vs.device()),
                &g[&format!("psfm.aux{side}")].to_device(vs.device()),
            )
        });
        assert_close(&format!("psfm rgb{side}"), &out.rgb, &g[&format!("psfm.out_rgb{side}")], 1e-4);
        assert_close(&format!("psfm aux{side}"), &out.aux, &g[&format!("psfm.out_aux{side}")], 1e-4);
    }
}

#[test]
fn head_adapter_matches_official() {
    let g = load_golden("adapters.safetensors");
    let cfg = ModelConfig::vit_base();
    let vs = nn::VarStore::new(common::test_device());
    let adapter = HeadAdapter::new(vs.root() / "adapter_head", &cfg);
    hashinit::fill_var_store(&vs);
    let out = tch::no_grad(|| adapter.forward(&g["head_adapter.input"].to_device(vs.device())));
    assert_close("head adapter", &out, &g["head_adapter.output"], 1e-4);
}
