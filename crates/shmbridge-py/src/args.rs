//! Python arguments as the core's types, in one place: open modes, access, permissions and
//! segment options, sizes and offsets, timeouts, file-mapping access, transfers and owners.
//! Every refusal is a `ValueError` naming the argument and what it accepts (an offset out of
//! range is `shmbridge.OutOfBounds`, as an access past the end would be).

use std::ffi::CString;
use std::time::Duration;

use pyo3::exceptions::{PyDeprecationWarning, PyTypeError, PyValueError};
use pyo3::prelude::*;
use shmbridge::{Access, MapAccess, OpenMode, OwnerPolicy, SegmentOptions, TransferMode};

use crate::errors;

/// An open mode in Boost's words: `"create_only"`, `"open_only"` or `"open_or_create"`.
pub(crate) fn open_mode(mode: &str) -> PyResult<OpenMode> {
    Ok(match mode {
        "create_only" => OpenMode::CreateOnly,
        "open_only" => OpenMode::OpenOnly,
        "open_or_create" => OpenMode::OpenOrCreate,
        _ => {
            return Err(PyValueError::new_err(format!(
                "invalid mode {mode:?}: use \"create_only\", \"open_only\" or \"open_or_create\""
            )))
        }
    })
}

/// The access of `readonly=`.
pub(crate) fn access(readonly: bool) -> Access {
    if readonly {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    }
}

/// The options of a new or opened segment: `readonly=`, `permissions=` (None: 0o600) and
/// `populate=`.
pub(crate) fn segment_options(
    readonly: bool,
    permissions: Option<u32>,
    populate: bool,
) -> SegmentOptions {
    SegmentOptions {
        permissions,
        access: access(readonly),
        populate,
    }
}

/// A size in bytes (`size=`, `capacity=`): not negative.
pub(crate) fn size(what: &str, size: i64) -> PyResult<u64> {
    u64::try_from(size)
        .map_err(|_| PyValueError::new_err(format!("invalid {what} {size}: must not be negative")))
}

/// An offset into a mapping: not negative (`shmbridge.OutOfBounds` otherwise).
pub(crate) fn offset(offset: i64) -> PyResult<u64> {
    u64::try_from(offset).map_err(|_| errors::out_of_bounds(format!("negative offset {offset}")))
}

/// `timeout` in seconds as a duration (`None`: no limit; a value too large to represent, or
/// infinity, is no limit either).
///
/// # Errors
///
/// `ValueError` for NaN and negative numbers.
pub(crate) fn timeout(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) => shmbridge::duration_from_secs(t)
            .map_err(|e| PyValueError::new_err(e.detail().to_owned())),
    }
}

/// The access of `map_file`'s `mode`: `"r"` (read-only), `"w"` or `"r+"` (read-write), `"c"`
/// (copy-on-write).
pub(crate) fn map_access(mode: &str) -> PyResult<MapAccess> {
    Ok(match mode {
        "r" => MapAccess::ReadOnly,
        "w" | "r+" => MapAccess::ReadWrite,
        "c" => MapAccess::CopyOnWrite,
        _ => {
            return Err(PyValueError::new_err(format!(
                "invalid mode {mode:?}: use \"r\", \"w\" or \"c\""
            )))
        }
    })
}

/// How a file travels: `"auto"`, `"one-shot"` or `"stream"` (the older spellings `"oneshot"`
/// and `"one_shot"` are still accepted).
pub(crate) fn transfer(transfer: &str) -> PyResult<TransferMode> {
    Ok(match transfer {
        "auto" => TransferMode::Auto,
        "one-shot" | "oneshot" | "one_shot" => TransferMode::OneShot,
        "stream" => TransferMode::Stream,
        _ => {
            return Err(PyValueError::new_err(format!(
                "invalid transfer {transfer:?}: use \"auto\", \"one-shot\" or \"stream\""
            )))
        }
    })
}

/// The name of a transfer, as reports give it: `"one-shot"` or `"stream"`.
pub(crate) fn transfer_name(transfer: TransferMode) -> &'static str {
    match transfer {
        TransferMode::Auto => "auto",
        TransferMode::OneShot => "one-shot",
        TransferMode::Stream => "stream",
    }
}

/// Warn (`DeprecationWarning`, at the caller) that `old` is an old name of `new`.
pub(crate) fn deprecated(py: Python<'_>, old: &str, new: &str) -> PyResult<()> {
    let msg = CString::new(format!("{old} is deprecated: use {new}")).unwrap_or_default();
    PyErr::warn(py, &py.get_type::<PyDeprecationWarning>(), &msg, 1)
}

/// The value of a keyword argument renamed from `old` to `new`: `new`'s value, or the
/// deprecated `old`'s (with a `DeprecationWarning`), or `default`; both given is a `TypeError`.
pub(crate) fn renamed<'a>(
    py: Python<'_>,
    (new, new_value): (&str, Option<&'a str>),
    (old, old_value): (&str, Option<&'a str>),
    default: &'a str,
) -> PyResult<&'a str> {
    match (new_value, old_value) {
        (Some(_), Some(_)) => Err(PyTypeError::new_err(format!(
            "give {new}= only ({old}= is its deprecated old name)"
        ))),
        (Some(v), None) => Ok(v),
        (None, Some(v)) => {
            deprecated(py, &format!("{old}="), &format!("{new}="))?;
            Ok(v)
        }
        (None, None) => Ok(default),
    }
}

/// The owner policy of an `owner=` argument: None (only this user's own segments), `"any"`,
/// a user id, or a sequence of user ids (accepted besides this user's own).
pub(crate) fn owner(owner: Option<&Bound<'_, PyAny>>) -> PyResult<OwnerPolicy> {
    let Some(o) = owner else {
        return Ok(OwnerPolicy::SameUser);
    };
    if o.is_none() {
        return Ok(OwnerPolicy::SameUser);
    }
    if let Ok(s) = o.extract::<String>() {
        return match s.as_str() {
            "any" => Ok(OwnerPolicy::Any),
            "self" => Ok(OwnerPolicy::SameUser),
            _ => Err(PyValueError::new_err(format!(
                "owner must be None, 'self', 'any', a user id or a sequence of user ids, not {s:?}"
            ))),
        };
    }
    if let Ok(uid) = o.extract::<u32>() {
        return Ok(OwnerPolicy::Allow(vec![uid]));
    }
    o.extract::<Vec<u32>>()
        .map(OwnerPolicy::Allow)
        .map_err(|_| {
            PyValueError::new_err(
                "owner must be None, 'self', 'any', a user id or a sequence of user ids",
            )
        })
}
