//! Groups and their members, as allocserv's admin API manages them:
//! listing, creating, renaming and deleting groups, and adding and
//! removing one member at a time. (A user's whole set of groups is
//! replaced with [`Accounts::set_groups`].)
//!
//! Groups are keyed by name, as users are; memberships go when either
//! side is deleted (the tables' foreign keys cascade).

use super::policy::UnixSeconds;
use super::{check_name, Accounts, AccountsError};
use rusqlite::{params, Connection, OptionalExtension};

/// A group as listed: its name and members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group's name.
    pub name: String,
    /// Its members' names, sorted.
    pub members: Vec<String>,
    /// When it was made.
    pub created: UnixSeconds,
}

impl Accounts {
    /// Every group with its members, by name.
    pub fn groups(&self) -> Result<Vec<GroupInfo>, AccountsError> {
        let db = self.db();
        let rows = db
            .prepare("SELECT name, created FROM account_groups ORDER BY name")?
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?
            .collect::<Result<Vec<(String, UnixSeconds)>, _>>()?;
        rows.into_iter()
            .map(|(name, created)| {
                Ok(GroupInfo {
                    members: members_of(&db, &name)?,
                    name,
                    created,
                })
            })
            .collect()
    }

    /// One group, if it exists.
    pub fn group(&self, name: &str) -> Result<Option<GroupInfo>, AccountsError> {
        let db = self.db();
        let created: Option<UnixSeconds> = db
            .query_row(
                "SELECT created FROM account_groups WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        created
            .map(|created| {
                Ok(GroupInfo {
                    name: name.to_owned(),
                    members: members_of(&db, name)?,
                    created,
                })
            })
            .transpose()
    }

    /// Makes an empty group.
    pub fn add_group(&self, name: &str, now: UnixSeconds) -> Result<(), AccountsError> {
        check_name(name)?;
        let added = self.db().execute(
            "INSERT OR IGNORE INTO account_groups (name, created) VALUES (?1, ?2)",
            params![name, now],
        )?;
        if added == 0 {
            return Err(AccountsError::GroupExists(name.to_owned()));
        }
        Ok(())
    }

    /// Renames a group, keeping its members.
    pub fn rename_group(&self, name: &str, new_name: &str) -> Result<(), AccountsError> {
        check_name(new_name)?;
        if name == new_name {
            return match self.group(name)? {
                Some(_) => Ok(()),
                None => Err(AccountsError::NoSuchGroup(name.to_owned())),
            };
        }
        let mut db = self.db();
        let tx = db.transaction()?;
        let created: Option<UnixSeconds> = tx
            .query_row(
                "SELECT created FROM account_groups WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        let Some(created) = created else {
            return Err(AccountsError::NoSuchGroup(name.to_owned()));
        };
        // The memberships' foreign key does not follow a renamed key, so
        // the group is made anew under its new name and the old one goes.
        let added = tx.execute(
            "INSERT OR IGNORE INTO account_groups (name, created) VALUES (?1, ?2)",
            params![new_name, created],
        )?;
        if added == 0 {
            return Err(AccountsError::GroupExists(new_name.to_owned()));
        }
        tx.execute(
            "UPDATE account_memberships SET grp = ?2 WHERE grp = ?1",
            params![name, new_name],
        )?;
        tx.execute("DELETE FROM account_groups WHERE name = ?1", params![name])?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes a group and its memberships (not its members).
    pub fn delete_group(&self, name: &str) -> Result<(), AccountsError> {
        let deleted = self
            .db()
            .execute("DELETE FROM account_groups WHERE name = ?1", params![name])?;
        if deleted == 0 {
            return Err(AccountsError::NoSuchGroup(name.to_owned()));
        }
        Ok(())
    }

    /// Puts a user in a group; `Ok(false)` if they already were.
    pub fn add_member(&self, group: &str, user: &str) -> Result<bool, AccountsError> {
        let db = self.db();
        self.require_both(&db, group, user)?;
        let added = db.execute(
            "INSERT OR IGNORE INTO account_memberships (user, grp) VALUES (?1, ?2)",
            params![user, group],
        )?;
        Ok(added > 0)
    }

    /// Takes a user out of a group; `Ok(false)` if they were not in it.
    pub fn remove_member(&self, group: &str, user: &str) -> Result<bool, AccountsError> {
        let db = self.db();
        self.require_both(&db, group, user)?;
        let removed = db.execute(
            "DELETE FROM account_memberships WHERE user = ?1 AND grp = ?2",
            params![user, group],
        )?;
        Ok(removed > 0)
    }

    /// `NoSuchGroup` or `NoSuchUser` unless both exist.
    fn require_both(&self, db: &Connection, group: &str, user: &str) -> Result<(), AccountsError> {
        let exists = |table: &str, name: &str| -> Result<bool, AccountsError> {
            Ok(db
                .query_row(
                    &format!("SELECT 1 FROM {table} WHERE name = ?1"),
                    params![name],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
        };
        if !exists("account_groups", group)? {
            return Err(AccountsError::NoSuchGroup(group.to_owned()));
        }
        if !exists("account_users", user)? {
            return Err(AccountsError::NoSuchUser(user.to_owned()));
        }
        Ok(())
    }
}

fn members_of(db: &Connection, group: &str) -> Result<Vec<String>, AccountsError> {
    let members = db
        .prepare_cached("SELECT user FROM account_memberships WHERE grp = ?1 ORDER BY user")?
        .query_map(params![group], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::super::{NewUser, Role};
    use super::*;

    const T0: UnixSeconds = 1_800_000_000;

    fn with_users(names: &[&str]) -> Accounts {
        let a = Accounts::in_memory().expect("opens");
        for name in names {
            a.add_user(
                &NewUser {
                    name: (*name).into(),
                    role: Role::User,
                    password: None,
                    groups: vec![],
                },
                T0,
            )
            .expect("adds");
        }
        a
    }

    #[test]
    fn a_group_is_made_filled_renamed_and_deleted_without_touching_its_members() {
        let a = with_users(&["alice", "bob"]);
        a.add_group("crew", T0).expect("adds");
        assert!(matches!(
            a.add_group("crew", T0),
            Err(AccountsError::GroupExists(_))
        ));
        assert!(a.add_member("crew", "bob").expect("joins"));
        assert!(a.add_member("crew", "alice").expect("joins"));
        assert!(!a.add_member("crew", "alice").expect("already in"));
        assert_eq!(
            a.group("crew").expect("reads").map(|g| g.members),
            Some(vec!["alice".to_string(), "bob".to_string()])
        );
        a.rename_group("crew", "team").expect("renames");
        assert_eq!(a.group("crew").expect("reads"), None);
        let team = a.group("team").expect("reads").expect("exists");
        assert_eq!(team.members, ["alice", "bob"]);
        assert_eq!(team.created, T0);
        assert!(a.remove_member("team", "bob").expect("leaves"));
        assert!(!a.remove_member("team", "bob").expect("was not in"));
        a.delete_group("team").expect("deletes");
        assert!(a.groups().expect("lists").is_empty());
        assert_eq!(a.users(T0).expect("lists").len(), 2);
        assert!(a
            .user("alice", T0)
            .expect("reads")
            .is_some_and(|u| u.identity.groups.is_empty()));
    }

    #[test]
    fn unknown_groups_and_users_and_clashing_names_are_refused() {
        let a = with_users(&["alice"]);
        a.add_group("crew", T0).expect("adds");
        a.add_group("team", T0).expect("adds");
        assert!(matches!(
            a.add_member("nope", "alice"),
            Err(AccountsError::NoSuchGroup(_))
        ));
        assert!(matches!(
            a.add_member("crew", "nobody"),
            Err(AccountsError::NoSuchUser(_))
        ));
        assert!(matches!(
            a.rename_group("crew", "team"),
            Err(AccountsError::GroupExists(_))
        ));
        assert!(matches!(
            a.rename_group("nope", "other"),
            Err(AccountsError::NoSuchGroup(_))
        ));
        assert!(matches!(
            a.rename_group("crew", "bad name"),
            Err(AccountsError::BadName(_))
        ));
        assert!(matches!(
            a.delete_group("nope"),
            Err(AccountsError::NoSuchGroup(_))
        ));
        assert_eq!(
            a.groups()
                .expect("lists")
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>(),
            ["crew", "team"]
        );
    }
}
