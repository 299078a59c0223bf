//! 1. Makes the binaries find libtorch without LD_LIBRARY_PATH: an rpath to the libtorch the crate
//!    was built against, plus one relative to the binary for a checkout that was moved or copied
//!    (`target/<profile>/patrack` -> `.libtorch/torch/lib`). LD_LIBRARY_PATH still overrides both.
//! 2. Compiles `csrc/shim.cpp`: the TF32 switch and the version string, which tch does not expose.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.cpp");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = PathBuf::from(std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys exports the libtorch lib dir"));
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../../.libtorch/torch/lib");

    let include = lib.parent().expect("libtorch root").join("include");
    cc::Build::new()
        .cpp(true)
        .file("csrc/shim.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-w")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .compile("patrack_shim");
}
