//! The web client's built files (`web/dist`) are embedded into the binary.
//! A checkout where the web client has not been built yet still compiles:
//! the folder is created empty and the server says the client is missing.

fn main() {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/dist");
    if let Err(e) = std::fs::create_dir_all(&dist) {
        println!("cargo:warning=cannot create {}: {e}", dist.display());
    }
    println!("cargo:rerun-if-changed=../../web/dist");
}
