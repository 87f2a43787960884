//! Input rules for usernames and passwords, shared by the server (which enforces them) and the
//! browser (which can explain them before a round trip). The Unicode rules for names and
//! passwords are the server's alone (the core's `names` and `password::normalise`).

use crate::error::AppError;

/// The shortest username, in characters (after composition).
pub const USERNAME_MIN_CHARS: usize = 3;
/// The longest username, in characters (after composition).
pub const USERNAME_MAX_CHARS: usize = 32;
/// NIST SP 800-63B-4: at least 15 characters when the password is the only factor.
pub const PASSWORD_MIN_CHARS: usize = 15;
/// We accept at least 64 (NIST) and cap at 128 so hashing cost stays bounded.
pub const PASSWORD_MAX_CHARS: usize = 128;

/// Checks a username typed to sign in, before anything is looked up: no account can have a
/// name this long (allowing for a name typed decomposed, whose accents are characters of their
/// own) or with control characters, so such input is refused as malformed (400) rather than
/// carried to the database. What makes a name new or the same is server-side
/// (the core's `names`: its Unicode tables do not belong in the browser).
pub fn login_username(raw: &str) -> Result<(), AppError> {
    let name = raw.trim();
    if name.chars().count() > USERNAME_MAX_CHARS * 4 {
        return Err(AppError::invalid_input(format!(
            "Username must be {USERNAME_MIN_CHARS} to {USERNAME_MAX_CHARS} characters long."
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::invalid_input(
            "Username may contain only letters, digits, '_', '-' and '.'.",
        ));
    }
    Ok(())
}

/// Checks a text parameter that is not free text (an id, a handle, a provider's id) before
/// anything is looked up with it: one with a control character is malformed (400), never
/// carried to the database (PostgreSQL refuses a NUL byte in text with an error).
pub fn plain_parameter(name: &str, value: &str) -> Result<(), AppError> {
    if value.chars().any(char::is_control) || value.len() > 256 {
        return Err(AppError::invalid_input(format!("The {name} is not valid.")));
    }
    Ok(())
}

/// Checks a new password. Counted in Unicode characters, never truncated, no composition rules.
pub fn new_password(password: &str) -> Result<(), AppError> {
    let count = password.chars().count();
    if count < PASSWORD_MIN_CHARS {
        return Err(AppError::invalid_input(format!(
            "Password must be at least {PASSWORD_MIN_CHARS} characters long."
        )));
    }
    if count > PASSWORD_MAX_CHARS {
        return Err(AppError::invalid_input(format!(
            "Password must be at most {PASSWORD_MAX_CHARS} characters long."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_names_are_bounded_and_printable() {
        assert!(login_username("  alice ").is_ok());
        assert!(login_username(&"e\u{301}".repeat(USERNAME_MAX_CHARS)).is_ok());
        assert!(login_username(&"a".repeat(USERNAME_MAX_CHARS * 4 + 1)).is_err());
        assert!(login_username("al\u{0}ice").is_err());
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        // 15 characters, 30 bytes: accepted. 14 four-byte emoji (56 bytes): refused.
        assert!(new_password(&"é".repeat(15)).is_ok());
        assert!(new_password(&"😀".repeat(14)).is_err());
        assert!(new_password("correct horse battery").is_ok());
        assert!(new_password(&"x".repeat(128)).is_ok());
        assert!(new_password(&"x".repeat(129)).is_err());
    }
}
