//! Values crossing the C API: what SQLite stores, and the Rust types bound
//! as parameters or read from columns.

use super::{DbError, DbResult};

/// One SQL value, as SQLite stores it. REAL is left out: the schema has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A parameter's value as it is bound: text and bytes borrowed from the Rust
/// value they come from, so binding copies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// UTF-8 text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl From<ValueRef<'_>> for Value {
    fn from(v: ValueRef<'_>) -> Value {
        match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Text(s) => Value::Text(s.to_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

/// A Rust value that can be bound as a statement parameter.
pub trait ToSql {
    /// The SQL value to bind, borrowed from `self`.
    fn to_sql(&self) -> ValueRef<'_>;

    /// The SQL value, owned.
    fn to_value(&self) -> Value {
        self.to_sql().into()
    }
}

/// A Rust value that can be read from a result column.
pub trait FromSql: Sized {
    /// Converts the column value; a type or range mismatch is SQLITE_MISMATCH.
    fn from_value(v: Value) -> DbResult<Self>;
}

impl ToSql for Value {
    fn to_sql(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Text(s) => ValueRef::Text(s),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }
}

impl FromSql for Value {
    fn from_value(v: Value) -> DbResult<Self> {
        Ok(v)
    }
}

impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_sql(&self) -> ValueRef<'_> {
        (**self).to_sql()
    }
}

impl<T: ToSql> ToSql for Option<T> {
    fn to_sql(&self) -> ValueRef<'_> {
        match self {
            Some(v) => v.to_sql(),
            None => ValueRef::Null,
        }
    }
}

impl<T: FromSql> FromSql for Option<T> {
    fn from_value(v: Value) -> DbResult<Self> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

impl ToSql for i64 {
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Integer(*self)
    }
}

impl FromSql for i64 {
    fn from_value(v: Value) -> DbResult<Self> {
        match v {
            Value::Integer(i) => Ok(i),
            other => Err(DbError::mismatch(format!(
                "expected an integer, found {}",
                kind(&other)
            ))),
        }
    }
}

impl ToSql for u64 {
    /// SQLite integers are signed; sizes, counts and timestamps stay far below 2^63.
    fn to_sql(&self) -> ValueRef<'_> {
        debug_assert!(
            *self <= i64::MAX as u64,
            "u64 {self} does not fit an SQLite integer"
        );
        ValueRef::Integer(*self as i64)
    }
}

/// Integer types that convert losslessly to i64 when bound, and with a range
/// check when read.
macro_rules! small_integer {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> ValueRef<'_> {
                ValueRef::Integer(i64::from(*self))
            }
        }

        impl FromSql for $t {
            fn from_value(v: Value) -> DbResult<Self> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| {
                    DbError::mismatch(format!("integer {i} is out of range for {}", stringify!($t)))
                })
            }
        }
    )*};
}

small_integer!(i32, u32, u8, u16);

impl FromSql for u64 {
    fn from_value(v: Value) -> DbResult<Self> {
        let i = i64::from_value(v)?;
        u64::try_from(i)
            .map_err(|_| DbError::mismatch(format!("integer {i} is out of range for u64")))
    }
}

impl ToSql for bool {
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::from(*self))
    }
}

impl FromSql for bool {
    fn from_value(v: Value) -> DbResult<Self> {
        match i64::from_value(v)? {
            0 => Ok(false),
            1 => Ok(true),
            i => Err(DbError::mismatch(format!("integer {i} is not a boolean"))),
        }
    }
}

impl ToSql for str {
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl ToSql for String {
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl FromSql for String {
    fn from_value(v: Value) -> DbResult<Self> {
        match v {
            Value::Text(s) => Ok(s),
            other => Err(DbError::mismatch(format!(
                "expected text, found {}",
                kind(&other)
            ))),
        }
    }
}

impl ToSql for [u8] {
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl ToSql for Vec<u8> {
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl<const N: usize> ToSql for [u8; N] {
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl FromSql for Vec<u8> {
    fn from_value(v: Value) -> DbResult<Self> {
        match v {
            Value::Blob(b) => Ok(b),
            other => Err(DbError::mismatch(format!(
                "expected a blob, found {}",
                kind(&other)
            ))),
        }
    }
}

impl<const N: usize> FromSql for [u8; N] {
    fn from_value(v: Value) -> DbResult<Self> {
        let b = Vec::<u8>::from_value(v)?;
        let len = b.len();
        b.try_into()
            .map_err(|_| DbError::mismatch(format!("expected a blob of {N} bytes, found {len}")))
    }
}

/// The SQL type name of a value, for mismatch messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Integer(_) => "an integer",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    }
}
