//! Who is behind a call: a person, as four eyes compare them (a module of its own: the store
//! keeps who asked for a deployment, and depends on nothing else here for it).

/// The person behind a call, whatever it came through: the one logged in (the identity
/// provider's stable subject, `sub:<sub>`), the person who made the API token, or the holder of
/// the bootstrap token (`bootstrap`). Four eyes compare people, never actor names: a token's
/// name is chosen freely by whoever makes it and stands for nobody.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// Stable: `sub:<subject>`, `bootstrap`, `dev:<user>`; `name:<login>` for what was kept
    /// before people were recorded.
    pub id: String,
    /// The person's login name (their `preferred_username`, or the token maker's).
    pub name: String,
}

impl Person {
    /// A person logged in through the identity provider.
    pub fn subject(subject: &str, name: &str) -> Person {
        Person {
            id: format!("sub:{subject}"),
            name: name.to_owned(),
        }
    }

    /// A person known only by the login name kept before people were recorded.
    pub fn named(name: &str) -> Person {
        Person {
            id: format!("name:{name}"),
            name: name.to_owned(),
        }
    }

    /// Whether two calls come from the same person: the same stable id, or the same login name
    /// (conservative: what was kept before people were recorded has only a name).
    pub fn same_as(&self, other: &Person) -> bool {
        self.id == other.id || self.name == other.name
    }
}
