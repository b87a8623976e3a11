//! The Python extension module `shmbridge._native`.
//!
//! A thin layer over the core crate: every layout, offset and synchronisation rule lives in
//! `shmbridge`; this module converts arguments, maps errors onto Python's exception classes,
//! releases the GIL around long copies and waits, and exports mappings through the buffer
//! protocol (see [`exporter`]). The public Python API is `python/shmbridge/__init__.py`.

// PyO3's macros expand to code that trips a few pedantic lints (needless pass-by-value of
// `Bound`, `#[new]` functions returning `Self`), and its signatures are fixed by Python.
#![allow(clippy::needless_pass_by_value, clippy::unused_self)]

mod args;
mod array;
mod channel;
#[cfg(feature = "cli")]
mod cli;
mod errors;
mod exporter;
mod framed;
mod handle;
mod mapping;
mod segment;
mod shared_array;
mod stream;
mod transfer;
mod wait;

use pyo3::prelude::*;

/// The module `shmbridge._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    errors::register_kinds(m)?;
    exporter::register(m)?;
    array::register(m)?;
    channel::register(m)?;
    m.add_class::<mapping::Mapping>()?;
    m.add_class::<segment::Segment>()?;
    m.add_class::<segment::SegmentInfo>()?;
    m.add_class::<framed::FramedSegment>()?;
    m.add_class::<shared_array::ArraySegment>()?;
    m.add_class::<framed::HeaderInfo>()?;
    m.add_class::<transfer::TransferReport>()?;
    m.add_class::<stream::StreamWriter>()?;
    m.add_class::<stream::StreamReader>()?;
    #[cfg(feature = "cli")]
    m.add_function(wrap_pyfunction!(cli::cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(transfer::send_file, m)?)?;
    m.add_function(wrap_pyfunction!(transfer::recv_file, m)?)?;
    m.add_function(wrap_pyfunction!(mapping::map_file, m)?)?;
    m.add_function(wrap_pyfunction!(mapping::anonymous, m)?)?;
    m.add_function(wrap_pyfunction!(segment::remove, m)?)?;
    m.add_function(wrap_pyfunction!(segment::exists, m)?)?;
    m.add_function(wrap_pyfunction!(segment::list_segments, m)?)?;
    m.add_function(wrap_pyfunction!(segment::segment_info, m)?)?;
    m.add_function(wrap_pyfunction!(segment::unique_name, m)?)?;
    m.add_function(wrap_pyfunction!(transfer::name_for_file, m)?)?;
    m.add_function(wrap_pyfunction!(segment::size_prefixed_create, m)?)?;
    m.add_function(wrap_pyfunction!(segment::size_prefixed_len, m)?)?;
    m.add_function(wrap_pyfunction!(segment::size_prefixed_read, m)?)?;
    m.add_function(wrap_pyfunction!(segment::size_prefixed_write, m)?)?;
    m.add("SIZE_PREFIX_LEN", shmbridge::size_prefixed::PREFIX_LEN)?;
    m.add("FRAMED_HEADER_LEN", shmbridge::framed::HEADER_LEN)?;
    m.add(
        "FRAMED_MAGIC",
        pyo3::types::PyBytes::new(m.py(), &shmbridge::framed::MAGIC),
    )?;
    m.add(
        "FRAMED_VERSION",
        (
            shmbridge::framed::VERSION_MAJOR,
            shmbridge::framed::VERSION_MINOR,
        ),
    )?;
    m.add("STREAM_HEADER_LEN", shmbridge::stream::STREAM_HEADER_LEN)?;
    m.add(
        "DEFAULT_STREAM_SEGMENT",
        shmbridge::transfer::DEFAULT_STREAM_SEGMENT,
    )?;
    m.add("DEFAULT_PERMISSIONS", shmbridge::DEFAULT_PERMISSIONS)?;
    m.add("MAX_NAME_LEN", shmbridge::name::max_name_len())?;
    m.add("SHM_DIR", shmbridge::shm_dir().display().to_string())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
