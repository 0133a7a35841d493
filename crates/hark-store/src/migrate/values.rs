//! A value on its way from SQLite to PostgreSQL: read from SQLite's dynamic
//! types into the type of its PostgreSQL column (integers become booleans,
//! blobs bytea), batched into one array per column for the insert, and
//! read back the same way for comparison.

use crate::{StoreError, StoreResult};
use rusqlite::types::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// How a PostgreSQL column's values travel: the array type they are sent
/// as, and how they are read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carrier {
    Int,
    Bool,
    Float,
    Bytes,
    /// Anything else travels as text and is cast to the column's type.
    Text,
}

impl Carrier {
    /// The carrier of a column of PostgreSQL type `pg_type` (as
    /// `format_type` spells it).
    pub(crate) fn of(pg_type: &str) -> Carrier {
        match pg_type {
            "bigint" | "integer" | "smallint" => Carrier::Int,
            "boolean" => Carrier::Bool,
            "double precision" | "real" => Carrier::Float,
            "bytea" => Carrier::Bytes,
            _ => Carrier::Text,
        }
    }

    /// The PostgreSQL array type a batch of this column is sent as.
    pub(crate) fn array_type(self) -> &'static str {
        match self {
            Carrier::Int => "bigint[]",
            Carrier::Bool => "boolean[]",
            Carrier::Float => "float8[]",
            Carrier::Bytes => "bytea[]",
            Carrier::Text => "text[]",
        }
    }

    /// How the column is read back as this carrier (`column` is quoted).
    pub(crate) fn read_back(self, column: &str) -> String {
        match self {
            Carrier::Int => format!("{column}::bigint"),
            Carrier::Bool => column.to_owned(),
            Carrier::Float => format!("{column}::float8"),
            Carrier::Bytes => column.to_owned(),
            Carrier::Text => format!("{column}::text"),
        }
    }
}

/// One value, in its PostgreSQL column's terms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Bool(bool),
    Float(f64),
    Bytes(Vec<u8>),
    Text(String),
}

impl Val {
    /// Converts a SQLite value into `carrier`'s terms; `None` if it cannot
    /// be (a text in an integer column, say).
    pub(crate) fn from_sqlite(value: Value, carrier: Carrier) -> Option<Val> {
        Some(match (value, carrier) {
            (Value::Null, _) => Val::Null,
            (Value::Integer(i), Carrier::Int) => Val::Int(i),
            // SQLite keeps booleans as 0 and 1.
            (Value::Integer(i), Carrier::Bool) => Val::Bool(i != 0),
            (Value::Integer(i), Carrier::Float) => Val::Float(i as f64),
            (Value::Real(f), Carrier::Float) => Val::Float(f),
            (Value::Blob(b), Carrier::Bytes) => Val::Bytes(b),
            (Value::Text(t), Carrier::Bytes) => Val::Bytes(t.into_bytes()),
            (Value::Text(t), Carrier::Text) => Val::Text(t),
            (Value::Integer(i), Carrier::Text) => Val::Text(i.to_string()),
            (Value::Real(f), Carrier::Text) => Val::Text(f.to_string()),
            _ => return None,
        })
    }

    /// Reads column `at` of a PostgreSQL row selected with
    /// [`Carrier::read_back`].
    pub(crate) fn from_pg(row: &Row, at: usize, carrier: Carrier) -> StoreResult<Val> {
        Ok(match carrier {
            Carrier::Int => row
                .try_get::<_, Option<i64>>(at)?
                .map_or(Val::Null, Val::Int),
            Carrier::Bool => row
                .try_get::<_, Option<bool>>(at)?
                .map_or(Val::Null, Val::Bool),
            Carrier::Float => row
                .try_get::<_, Option<f64>>(at)?
                .map_or(Val::Null, Val::Float),
            Carrier::Bytes => row
                .try_get::<_, Option<Vec<u8>>>(at)?
                .map_or(Val::Null, Val::Bytes),
            Carrier::Text => row
                .try_get::<_, Option<String>>(at)?
                .map_or(Val::Null, Val::Text),
        })
    }

    /// The value as a SQLite parameter (for resuming after a key).
    pub(crate) fn to_sqlite(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Int(i) => Value::Integer(*i),
            Val::Bool(b) => Value::Integer(i64::from(*b)),
            Val::Float(f) => Value::Real(*f),
            Val::Bytes(b) => Value::Blob(b.clone()),
            Val::Text(t) => Value::Text(t.clone()),
        }
    }

    /// The value in a JSON key (the progress row's last key).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Null => serde_json::Value::Null,
            Val::Int(i) => (*i).into(),
            Val::Bool(b) => (*b).into(),
            Val::Float(f) => (*f).into(),
            Val::Bytes(b) => b.iter().map(|x| serde_json::Value::from(*x)).collect(),
            Val::Text(t) => t.as_str().into(),
        }
    }

    /// A key value back from its JSON, as `carrier`.
    pub(crate) fn from_json(value: &serde_json::Value, carrier: Carrier) -> StoreResult<Val> {
        let bad = || StoreError::Migrate(format!("migrate_progress holds a bad key value {value}"));
        Ok(match (value, carrier) {
            (serde_json::Value::Null, _) => Val::Null,
            (v, Carrier::Int) => Val::Int(v.as_i64().ok_or_else(bad)?),
            (v, Carrier::Bool) => Val::Bool(v.as_bool().ok_or_else(bad)?),
            (v, Carrier::Float) => Val::Float(v.as_f64().ok_or_else(bad)?),
            (serde_json::Value::String(s), Carrier::Text) => Val::Text(s.clone()),
            (serde_json::Value::Array(a), Carrier::Bytes) => Val::Bytes(
                a.iter()
                    .map(|x| x.as_u64().and_then(|x| u8::try_from(x).ok()))
                    .collect::<Option<_>>()
                    .ok_or_else(bad)?,
            ),
            _ => return Err(bad()),
        })
    }

    /// For messages about a row: `3`, `'abc'`, `NULL`.
    pub(crate) fn show(&self) -> String {
        match self {
            Val::Null => "NULL".into(),
            Val::Int(i) => i.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Float(f) => f.to_string(),
            Val::Bytes(b) => format!("<{} bytes>", b.len()),
            Val::Text(t) if t.chars().count() > 40 => {
                format!("{:?}…", t.chars().take(40).collect::<String>())
            }
            Val::Text(t) => format!("{t:?}"),
        }
    }
}

/// A batch of one column's values as one array parameter.
pub(crate) enum Column {
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Float(Vec<Option<f64>>),
    Bytes(Vec<Option<Vec<u8>>>),
    Text(Vec<Option<String>>),
}

impl Column {
    pub(crate) fn new(carrier: Carrier) -> Column {
        match carrier {
            Carrier::Int => Column::Int(Vec::new()),
            Carrier::Bool => Column::Bool(Vec::new()),
            Carrier::Float => Column::Float(Vec::new()),
            Carrier::Bytes => Column::Bytes(Vec::new()),
            Carrier::Text => Column::Text(Vec::new()),
        }
    }

    /// Appends `value`, which [`Val::from_sqlite`] made for this column's
    /// carrier.
    pub(crate) fn push(&mut self, value: &Val) {
        match (self, value) {
            (Column::Int(v), Val::Int(x)) => v.push(Some(*x)),
            (Column::Bool(v), Val::Bool(x)) => v.push(Some(*x)),
            (Column::Float(v), Val::Float(x)) => v.push(Some(*x)),
            (Column::Bytes(v), Val::Bytes(x)) => v.push(Some(x.clone())),
            (Column::Text(v), Val::Text(x)) => v.push(Some(x.clone())),
            (Column::Int(v), _) => v.push(None),
            (Column::Bool(v), _) => v.push(None),
            (Column::Float(v), _) => v.push(None),
            (Column::Bytes(v), _) => v.push(None),
            (Column::Text(v), _) => v.push(None),
        }
    }

    pub(crate) fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Column::Int(v) => v,
            Column::Bool(v) => v,
            Column::Float(v) => v,
            Column::Bytes(v) => v,
            Column::Text(v) => v,
        }
    }
}

impl Val {
    /// The integer, if this is one (an id naming a chat or user).
    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }
}
