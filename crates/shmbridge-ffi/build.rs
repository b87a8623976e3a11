//! Give the shared library a soname, so that programs linked against it by its full path (as
//! `CMake` imported targets do) record `libshmbridge.so` and find it through rpath or the loader.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libshmbridge.so");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
