//! Rebuilds the crate when a file under `web/app` or `web/sdk` changes, is added or is removed:
//! `include_dir!` embeds them (src/web.rs) but only tracks the files that existed at the last build.

fn main() {
    println!("cargo::rerun-if-changed=../../web/app");
    println!("cargo::rerun-if-changed=../../web/sdk");
}
