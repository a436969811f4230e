//! Small helpers to read typed values out of `AnyRow`s.
//!
//! Stored strings (roles, channels, time zones, actors) are parsed back into their types here;
//! a value that does not parse means someone edited the database by hand, reported as
//! `StoreError::Corrupt` naming the column rather than a panic.

use super::{Result, StoreError};
use crate::request::Actor;
use crate::timestamp::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

pub(super) fn i64_(row: &AnyRow, col: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}

pub(super) fn opt_i64(row: &AnyRow, col: &str) -> Result<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(col)?)
}

pub(super) fn string(row: &AnyRow, col: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(col)?)
}

pub(super) fn opt_string(row: &AnyRow, col: &str) -> Result<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

pub(super) fn ts(row: &AnyRow, col: &str) -> Result<Timestamp> {
    Ok(Timestamp(i64_(row, col)?))
}

pub(super) fn opt_ts(row: &AnyRow, col: &str) -> Result<Option<Timestamp>> {
    Ok(opt_i64(row, col)?.map(Timestamp))
}

pub(super) fn opt_actor(row: &AnyRow, col: &str) -> Result<Option<Actor>> {
    match opt_string(row, col)? {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|e| corrupt(col, e)),
    }
}

pub(super) fn corrupt(col: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("column {col}: {detail}"))
}

/// `u32` columns are stored as BIGINT; anything outside `u32` is corruption.
pub(super) fn u32_(row: &AnyRow, col: &str) -> Result<u32> {
    let v = i64_(row, col)?;
    u32::try_from(v).map_err(|_| corrupt(col, format!("{v} out of range")))
}

pub(super) fn f64_(row: &AnyRow, col: &str) -> Result<f64> {
    Ok(row.try_get::<f64, _>(col)?)
}

/// An `UPDATE` of `what` that touched no row: there is none (in this organization).
pub(super) fn updated(rows: u64, what: impl std::fmt::Display) -> Result<()> {
    if rows == 0 {
        return Err(StoreError::NotFound(what.to_string()));
    }
    Ok(())
}
