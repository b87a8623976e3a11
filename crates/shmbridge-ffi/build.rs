//! Give the shared library a versioned soname, so that programs linked against it record
//! `libshmbridge.so.<abi>` and a later, ABI-incompatible release can be installed beside it.
//!
//! The ABI version follows Cargo's semver: `MAJOR` from 1.0 on, and `0.MINOR` before (in 0.x a
//! new minor may break the ABI, as `shmbridgeConfigVersion.cmake`'s `SameMinorVersion` says).
//! `CMake` (`CMakeLists.txt`) computes the same string to name the installed files and links.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
        let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
        let abi = if major == "0" {
            format!("0.{minor}")
        } else {
            major
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libshmbridge.so.{abi}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
