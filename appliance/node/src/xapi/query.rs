//! Reading statements: a [`Query`] (the Statement resource's filters, the
//! reader's limits) walked through `statement_keys` ([`keys`]) in sequence
//! order, a page at a time. The store runs these on its read connections.

use super::keys;
use rusqlite::Connection;

/// Filters of a statement query (already parsed and checked).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// IFI key; matches the actor or an Agent/Group object.
    pub agent: Option<String>,
    pub verb: Option<String>,
    pub activity: Option<String>,
    pub registration: Option<String>,
    /// Stored-time bounds, in the store's fixed-width UTC form.
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: usize,
    pub ascending: bool,
    /// Continue after (ascending) or before (descending) this sequence number.
    pub cursor: Option<i64>,
    /// Only statements stored by this credential (IFI key): statements/read/mine.
    pub authority: Option<String>,
    /// Only statements with this actor (IFI key): a learner's own.
    pub actor: Option<String>,
    /// `related_agents=true`: `agent` also matches authority, instructor,
    /// team, context agents and inside a SubStatement.
    pub related_agents: bool,
    /// `related_activities=true`: `activity` also matches context
    /// activities and inside a SubStatement.
    pub related_activities: bool,
    /// Also the statements that meet the filters through the statement
    /// their StatementRef targets (the Statement resource's rule); the
    /// node's own reads leave them out.
    pub targeting: bool,
}

impl Query {
    /// The key filters ([`keys`]), most selective first: the first one
    /// drives the walk, the others are checked per row.
    fn key_filters(&self) -> Vec<(i64, String)> {
        let mut f = Vec::new();
        if let Some(r) = &self.registration {
            f.push((keys::REGISTRATION, r.to_ascii_lowercase()));
        }
        if let Some(a) = &self.agent {
            f.push((if self.related_agents { keys::RELATED_AGENT } else { keys::AGENT }, a.clone()));
        }
        if let Some(a) = &self.activity {
            f.push((if self.related_activities { keys::RELATED_ACTIVITY } else { keys::ACTIVITY }, a.clone()));
        }
        if let Some(v) = &self.verb {
            f.push((keys::VERB, v.clone()));
        }
        f
    }
}

/// What a reader is limited to, as IFI keys (None: no limit).
#[derive(Debug, Clone, Default)]
pub struct Only {
    /// Statements this credential stored (statements/read/mine).
    pub authority: Option<String>,
    /// Statements with this actor (a signed-in person's own).
    pub actor: Option<String>,
}

/// One page of a query.
pub struct Page {
    pub statements: Vec<String>,
    /// The latest `stored` among them (the page's Last-Modified).
    pub last_stored: Option<String>,
    /// Cursor of the next page, when there is one.
    pub next: Option<i64>,
}

pub(super) fn run_query(c: &Connection, q: &Query) -> rusqlite::Result<Page> {
    let (mut statements, mut last, mut next) = (Vec::new(), None, None);
    let mut last_stored: Option<String> = None;
    scan(c, q, |seq, body, stored| {
        if statements.len() == q.limit {
            next = last;
            return false;
        }
        last = Some(seq);
        statements.push(body);
        if last_stored.as_deref().is_none_or(|l| stored.as_str() > l) {
            last_stored = Some(stored);
        }
        true
    })?;
    Ok(Page { statements, last_stored, next })
}

/// Runs `q` (at most `q.limit + 1` rows), handing each row to `row` until
/// it returns false. With key filters the walk goes down the first filter's
/// rows of `statement_keys` in sequence order and checks the others per row.
pub(super) fn scan(
    c: &Connection,
    q: &Query,
    mut row: impl FnMut(i64, String, String) -> bool,
) -> rusqlite::Result<()> {
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut sql = String::new();
    let mut add = |sql: &mut String, cond: &str, values: Vec<rusqlite::types::Value>| {
        let mut parts = cond.split('?');
        sql.push_str(parts.next().unwrap_or_default());
        for (part, v) in parts.zip(values) {
            args.push(v);
            sql.push_str(&format!("?{}", args.len()));
            sql.push_str(part);
        }
    };
    let filters = q.key_filters();
    let seq = match filters.split_first() {
        None => {
            sql.push_str("SELECT s.seq, s.body, s.stored FROM statements s WHERE s.voided = 0");
            "s.seq"
        }
        Some(((kind, key), rest)) => {
            sql.push_str(
                "SELECT s.seq, s.body, s.stored FROM statement_keys k CROSS JOIN statements s ON s.seq = k.seq WHERE",
            );
            add(&mut sql, " k.kind = ? AND k.key = ? AND s.voided = 0", vec![(*kind).into(), key.clone().into()]);
            for (kind, key) in rest {
                add(
                    &mut sql,
                    " AND EXISTS (SELECT 1 FROM statement_keys x WHERE x.kind = ? AND x.key = ? AND x.seq = k.seq)",
                    vec![(*kind).into(), key.clone().into()],
                );
            }
            if !q.targeting {
                sql.push_str(" AND s.statement_ref IS NULL");
            }
            "k.seq"
        }
    };
    if let Some(v) = &q.since {
        add(&mut sql, " AND s.stored > ?", vec![v.clone().into()]);
    }
    if let Some(v) = &q.until {
        add(&mut sql, " AND s.stored <= ?", vec![v.clone().into()]);
    }
    if let Some(v) = &q.authority {
        add(&mut sql, " AND s.authority = ?", vec![v.clone().into()]);
    }
    if let Some(v) = &q.actor {
        add(&mut sql, " AND s.actor = ?", vec![v.clone().into()]);
    }
    if let Some(cur) = q.cursor {
        let cond = format!(" AND {seq} {} ?", if q.ascending { ">" } else { "<" });
        add(&mut sql, &cond, vec![cur.into()]);
    }
    sql.push_str(&format!(" ORDER BY {seq} {}", if q.ascending { "ASC" } else { "DESC" }));
    sql.push_str(&format!(" LIMIT {}", q.limit + 1));
    let mut stmt = c.prepare_cached(&sql)?;
    let rows =
        stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)))?;
    for r in rows {
        let (seq, body, stored) = r?;
        if !row(seq, body, stored) {
            break;
        }
    }
    Ok(())
}
