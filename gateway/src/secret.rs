//! The gateway's own secret (`kgate serve --gateway-token`), and the cookie that carries it.
//!
//! Contract: [`AccessToken`] holds the secret and never shows it (`Debug` is redacted; the
//! commands print it with [`AccessToken::expose`] in the URLs they give the user, and nowhere
//! else); [`cookie`] is the `Set-Cookie` value that keeps it for one origin. Admission checks
//! it (`admit::token`).

use std::fmt;

/// The name of the cookie and of the query parameter.
pub const TOKEN_NAME: &str = "kgate-token";

/// A gateway's secret; `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// A token from its text: URL- and cookie-safe characters only (`A-Z a-z 0-9 - _ . ~`),
    /// at least 16 of them.
    pub fn new(text: &str) -> Result<Self, String> {
        let safe = text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
        if text.len() < 16 || !safe {
            return Err("a token is at least 16 of the characters A-Z a-z 0-9 - _ . ~".to_owned());
        }
        Ok(Self(text.to_owned()))
    }

    /// The secret itself, for the URLs the commands print.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this token, compared in constant time.
    pub(crate) fn matches(&self, candidate: &[u8]) -> bool {
        let ours = self.0.as_bytes();
        // Constant time in the candidate's content (its length is not a secret).
        candidate.len() == ours.len()
            && candidate
                .iter()
                .zip(ours)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// The `Set-Cookie` value that keeps `token` for the origin that set it: `HttpOnly` (no script
/// reads it), `SameSite=Strict` (no other site's request carries it), the whole origin.
pub(crate) fn cookie(token: &AccessToken) -> String {
    format!(
        "{TOKEN_NAME}={}; HttpOnly; SameSite=Strict; Path=/",
        token.expose()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn tokens_are_checked_and_never_shown() {
        let token = AccessToken::new(SECRET).unwrap();
        assert!(AccessToken::new("short").is_err());
        assert!(AccessToken::new("0123456789abcdef;x").is_err());
        assert!(!format!("{token:?}").contains(SECRET));
        assert!(token.matches(SECRET.as_bytes()));
        assert!(!token.matches(b"0123456789abcdef0123456789abcdeX"));
        assert!(!token.matches(b"0123456789abcdef"));
    }
}
