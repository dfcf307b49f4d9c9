//! Names of users and channels: what a topology may write (a bot's `channels`) and what a chat
//! server accepts from a client are the same rule, written once here.

/// The longest user or channel name, in characters.
pub const MAX_NAME: usize = 32;

/// Why a name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing at all.
    #[error("the {0} name is empty")]
    Empty(&'static str),
    /// More than [`MAX_NAME`] characters.
    #[error("the {0} name is longer than {MAX_NAME} characters")]
    TooLong(&'static str),
    /// A character the name may not hold.
    #[error("{0} names cannot contain {1:?}")]
    Character(&'static str, char),
}

/// A user or channel name (`what` is "user" or "channel"): 1 to 32 characters; a channel only
/// letters, digits, `-` and `_`; a user no spaces or control characters.
pub fn check_name(what: &'static str, name: &str, channel: bool) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty(what));
    }
    if name.chars().count() > MAX_NAME {
        return Err(NameError::TooLong(what));
    }
    let bad = if channel {
        name.chars()
            .find(|c| !(c.is_alphanumeric() || *c == '-' || *c == '_'))
    } else {
        name.chars().find(|c| c.is_control() || c.is_whitespace())
    };
    match bad {
        Some(c) => Err(NameError::Character(what, c)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_with_a_reason() {
        assert_eq!(check_name("channel", "lab-2", true), Ok(()));
        assert_eq!(
            check_name("channel", "", true).unwrap_err().to_string(),
            "the channel name is empty"
        );
        assert_eq!(
            check_name("channel", "a b", true).unwrap_err().to_string(),
            "channel names cannot contain ' '"
        );
        assert_eq!(
            check_name("user", "ada lovelace", false).unwrap_err(),
            NameError::Character("user", ' ')
        );
        assert!(check_name("user", &"x".repeat(33), false).is_err());
    }
}
