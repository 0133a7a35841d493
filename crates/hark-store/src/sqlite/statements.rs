//! Where a statement comes from: the writer's, prepared once and kept for
//! the life of its connection ([`Prepared`]), or any other connection's
//! statement cache.
//!
//! `rusqlite`'s cache (`prepare_cached`) costs, at every use, a copy of the
//! SQL into a new allocation, two hashes and a comparison of the whole
//! text, and a `sqlite3_clear_bindings`: 9 % of the writer's instructions
//! on the send path, which runs ten or so statements per message
//! (docs/benchmarks.md, "The writer's statements prepared once"). The
//! writer owns its connection for as long as it runs, so it keeps its
//! statements instead, found by the address of their `'static` text.
//! Functions the writer shares with the read paths take either source
//! through [`Statements`].

use crate::StoreResult;
use rusqlite::{CachedStatement, Connection, PrepFlags, Statement};
use rustc_hash::FxHashMap;
use std::ops::DerefMut;

/// A source of prepared statements for one connection.
pub(crate) trait Statements<'c> {
    /// A statement ready to bind and run; reset after each run as any is.
    type Held<'s>: DerefMut<Target = Statement<'c>>
    where
        Self: 's;

    /// The statement for `sql`, prepared on first use.
    fn statement<'s>(&'s mut self, sql: &'static str) -> StoreResult<Self::Held<'s>>;
}

/// Any connection: its statement cache.
impl<'c> Statements<'c> for &'c Connection {
    type Held<'s>
        = CachedStatement<'c>
    where
        Self: 's;

    fn statement<'s>(&'s mut self, sql: &'static str) -> StoreResult<CachedStatement<'c>> {
        Ok(self.prepare_cached(sql)?)
    }
}

/// The writer's statements, each prepared the first time its SQL is used
/// and kept until the writer ends (they are finalized before its
/// connection closes, which they borrow). Keyed by where the `'static`
/// text lives: no hashing or comparing of the SQL, and a text that lives
/// for the whole program is never another text at the same address. The
/// writer runs a bounded set of SQL constants, so the map stays small;
/// its keys are addresses, so a plain multiplicative hash (`rustc-hash`)
/// serves, where the default SipHash was 3 % of the writer's instructions.
pub(crate) struct Prepared<'c> {
    conn: &'c Connection,
    held: FxHashMap<(usize, usize), Statement<'c>>,
}

impl<'c> Prepared<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Prepared {
            conn,
            held: FxHashMap::default(),
        }
    }

    /// The statement for `sql`, prepared on first use.
    pub(crate) fn get(&mut self, sql: &'static str) -> StoreResult<&mut Statement<'c>> {
        let key = (sql.as_ptr() as usize, sql.len());
        match self.held.entry(key) {
            std::collections::hash_map::Entry::Occupied(held) => Ok(held.into_mut()),
            std::collections::hash_map::Entry::Vacant(slot) => Ok(slot.insert(
                self.conn
                    .prepare_with_flags(sql, PrepFlags::SQLITE_PREPARE_PERSISTENT)?,
            )),
        }
    }

    /// How many statements are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }
}

impl<'c> Statements<'c> for Prepared<'c> {
    type Held<'s>
        = &'s mut Statement<'c>
    where
        Self: 's;

    fn statement<'s>(&'s mut self, sql: &'static str) -> StoreResult<&'s mut Statement<'c>> {
        self.get(sql)
    }
}

/// A source lent for a while: a helper can pass what it was given on to
/// another.
impl<'c, S: Statements<'c>> Statements<'c> for &mut S {
    type Held<'s>
        = S::Held<'s>
    where
        Self: 's;

    fn statement<'s>(&'s mut self, sql: &'static str) -> StoreResult<S::Held<'s>> {
        (**self).statement(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSERT: &str = "INSERT INTO t (v) VALUES (?1)";
    const ABOVE: &str = "SELECT count(*), coalesce(sum(v), 0) FROM t WHERE v > ?1";

    /// Written once for both sources, as the shared helpers are.
    fn above<'c>(mut db: impl Statements<'c>, v: i64) -> StoreResult<(i64, i64)> {
        Ok(db
            .statement(ABOVE)?
            .query_row([v], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    #[test]
    fn a_held_statement_runs_again_with_new_values_and_is_prepared_once() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let mut prepared = Prepared::new(&conn);
        for v in 1..=5_i64 {
            prepared.get(INSERT).unwrap().execute([v]).unwrap();
        }
        // Each run answers with its own values, from either source.
        for (v, want) in [(0, (5, 15)), (3, (2, 9)), (5, (0, 0)), (1, (4, 14))] {
            assert_eq!(above(&mut prepared, v).unwrap(), want, "held, above {v}");
            assert_eq!(above(&conn, v).unwrap(), want, "cached, above {v}");
        }
        assert_eq!(prepared.len(), 2, "each text prepared once");
        // The same text at another address (a copy, leaked to make it
        // 'static) is another key, never another text's statement.
        let copy: &'static str = Box::leak(ABOVE.to_owned().into_boxed_str());
        let n: i64 = prepared
            .get(copy)
            .unwrap()
            .query_row([4], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(prepared.len(), 3);
        // A statement that fails to prepare is not kept.
        assert!(prepared.get("SELECT nothing FROM nowhere").is_err());
        assert_eq!(prepared.len(), 3);
    }
}
