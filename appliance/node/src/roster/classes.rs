//! Classes, as the coach view reads them: which classes there are, who is
//! in one, and whether a coach shares a class with a learner (the rule
//! `may_see_learner` and the coach pages enforce).

use super::{Person, Role, Roster, RosterError};

/// A class and how many learners it has.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClassSummary {
    pub name: String,
    pub learners: usize,
}

impl Roster {
    /// Every class with at least one member, by name, with its learner count.
    pub fn classes(&self) -> Result<Vec<ClassSummary>, RosterError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT m.class, count(CASE WHEN p.role = 'learner' THEN 1 END)
                 FROM memberships m JOIN people p ON p.id = m.person GROUP BY m.class ORDER BY m.class",
            )
            .map_err(self.db())?;
        let rows = stmt
            .query_map([], |r| Ok(ClassSummary { name: r.get(0)?, learners: r.get::<_, i64>(1)? as usize }))
            .map_err(self.db())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.db())
    }

    /// The learners of `class`, by name then id (their `classes` is the one
    /// asked for: what the class table needs).
    pub fn learners_in(&self, class: &str) -> Result<Vec<Person>, RosterError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.id, p.name FROM people p JOIN memberships m ON m.person = p.id
                 WHERE m.class = ?1 AND p.role = 'learner' ORDER BY p.name, p.id",
            )
            .map_err(self.db())?;
        let rows = stmt
            .query_map([class], |r| {
                Ok(Person { id: r.get(0)?, name: r.get(1)?, role: Role::Learner, classes: vec![class.to_string()] })
            })
            .map_err(self.db())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.db())
    }

    /// The person `id`, without their password hash.
    pub fn person(&self, id: &str) -> Result<Option<Person>, RosterError> {
        Ok(self.credentials(id)?.map(|(p, _)| p))
    }

    /// Whether `learner` is in any of `classes` (a coach's).
    pub fn shares_class(&self, learner: &str, classes: &[String]) -> Result<bool, RosterError> {
        if classes.is_empty() {
            return Ok(false);
        }
        Ok(self.classes_of(learner)?.iter().any(|c| classes.contains(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::NewPerson;
    use super::*;

    #[test]
    fn classes_list_their_learners_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Roster::open(&dir.path().join("roster.db")).unwrap();
        let add = |r: &mut Roster, id: &str, name: &str, role: Role, classes: &[&str]| {
            let classes: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
            r.add(&NewPerson::new(id, name, role, &classes, "a-password-1").unwrap()).unwrap();
        };
        add(&mut r, "wang", "王小明", Role::Learner, &["3A"]);
        add(&mut r, "amy", "Amy", Role::Learner, &["3A", "3B"]);
        add(&mut r, "li", "Li", Role::Coach, &["3A"]);
        add(&mut r, "zed", "Zed", Role::Learner, &[]);
        assert_eq!(
            r.classes().unwrap(),
            vec![ClassSummary { name: "3A".into(), learners: 2 }, ClassSummary { name: "3B".into(), learners: 1 }]
        );
        let ids: Vec<String> = r.learners_in("3A").unwrap().into_iter().map(|p| p.id).collect();
        assert_eq!(ids, ["amy", "wang"], "learners only, by name");
        assert!(r.learners_in("9Z").unwrap().is_empty());
        assert!(r.shares_class("amy", &["3B".into()]).unwrap());
        assert!(!r.shares_class("zed", &["3A".into()]).unwrap());
        assert!(!r.shares_class("amy", &[]).unwrap());
        assert_eq!(r.person("li").unwrap().unwrap().role, Role::Coach);
        assert!(r.person("nobody").unwrap().is_none());
    }
}
