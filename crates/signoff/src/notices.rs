//! What Signoff's mails say. Every mail has a plain-text part and an HTML part saying the same;
//! a notice says what happened, when, from where, and what to do if it was not the reader.
//! Nothing here sends: the flows write these to the outbox (`mail::enqueue`) in the transaction of
//! the change they report.

use std::net::IpAddr;

use crate::{client_addr::RequestMeta, html::escape, mail::Mail, rfc3339_s};

/// When and from where a change was made, for the notice that reports it.
#[derive(Clone, Debug)]
pub struct Origin<'a> {
    /// The site's origin (`https://example.com`), for links.
    pub site: &'a str,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The client's browser, as it named itself.
    pub user_agent: Option<&'a str>,
}

impl<'a> Origin<'a> {
    /// The origin of the request described by `meta`, on `site`.
    pub fn of(site: &'a str, meta: &'a RequestMeta) -> Self {
        Self {
            site,
            ip: meta.ip,
            user_agent: meta.user_agent.as_deref(),
        }
    }

    fn when_where(&self) -> Vec<(&'static str, String)> {
        let now = crate::now_ms() / 1000;
        let mut lines = vec![(
            "When",
            rfc3339_s(now).replace('T', " ").replace('Z', " UTC"),
        )];
        if let Some(ip) = self.ip {
            lines.push(("From address", ip.to_string()));
        }
        if let Some(agent) = self.user_agent {
            // A browser's name is the client's to choose: bounded, and escaped in HTML.
            lines.push(("Browser", agent.chars().take(120).collect()));
        }
        lines
    }
}

/// What to do about a change one did not make.
fn advice(site: &str) -> String {
    format!(
        "If this was not you, reset your password now at {site}/forgot, then use \"Sign out \
         everywhere\" in the Security section, and check your e-mail address there."
    )
}

/// A notice: `what` happened to account `username`, with when and where, and the advice.
fn notice(to: &str, subject: &str, username: &str, what: &str, origin: &Origin<'_>) -> Mail {
    let facts = origin.when_where();
    let advice = advice(origin.site);
    let mut text = format!("Hello {username},\n\n{what}\n\n");
    for (label, value) in &facts {
        text.push_str(&format!("{label}: {value}\n"));
    }
    text.push_str(&format!(
        "\nIf this was you, there is nothing to do.\n{advice}\n"
    ));
    let mut html = format!(
        "<p>Hello {},</p>\n<p>{}</p>\n<table>\n",
        escape(username),
        escape(what)
    );
    for (label, value) in &facts {
        html.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
            escape(label),
            escape(value)
        ));
    }
    html.push_str(&format!(
        "</table>\n<p>If this was you, there is nothing to do.<br>\n{}</p>\n",
        escape(&advice)
    ));
    Mail {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text,
        html,
    }
}

/// The password was changed from the Security section.
pub fn password_changed(to: &str, username: &str, origin: &Origin<'_>) -> Mail {
    notice(
        to,
        "Your password was changed",
        username,
        "The password of your account was changed, and every other session of the account was \
         signed out.",
        origin,
    )
}

/// The password was reset through a mailed link.
pub fn password_reset(to: &str, username: &str, origin: &Origin<'_>) -> Mail {
    notice(
        to,
        "Your password was reset",
        username,
        "The password of your account was reset with a link sent to this address, and every \
         session of the account was signed out.",
        origin,
    )
}

/// The account's address changed: told to the old address.
pub fn email_changed(to: &str, username: &str, new_address: &str, origin: &Origin<'_>) -> Mail {
    notice(
        to,
        "Your e-mail address was changed",
        username,
        &format!(
            "The e-mail address of your account was changed to {}. Mail about the account, \
             password resets included, now goes there.",
            mask(new_address)
        ),
        origin,
    )
}

/// A sign-in from a browser the account has not seen before.
pub fn new_device(to: &str, username: &str, origin: &Origin<'_>) -> Mail {
    notice(
        to,
        "New sign-in to your account",
        username,
        "Your account was signed in to from a browser it has not seen before.",
        origin,
    )
}

/// A provider was linked to, or unlinked from, the account.
pub fn provider_changed(
    to: &str,
    username: &str,
    provider: &str,
    linked: bool,
    origin: &Origin<'_>,
) -> Mail {
    let (subject, what) = if linked {
        (
            format!("{provider} can now sign in to your account"),
            format!("{provider} was linked to your account: signing in with it now opens it."),
        )
    } else {
        (
            format!("{provider} was unlinked from your account"),
            format!("{provider} was unlinked from your account: it no longer signs in to it."),
        )
    };
    notice(to, &subject, username, &what, origin)
}

/// A link with a token, and what it is for.
fn link_mail(to: &str, subject: &str, lines: &[&str], link: &str, after: &str) -> Mail {
    let mut text = String::new();
    let mut html = String::new();
    for line in lines {
        text.push_str(line);
        text.push_str("\n\n");
        html.push_str(&format!("<p>{}</p>\n", escape(line)));
    }
    text.push_str(&format!("{link}\n\n{after}\n"));
    html.push_str(&format!(
        "<p><a href=\"{0}\">{0}</a></p>\n<p>{1}</p>\n",
        escape(link),
        escape(after)
    ));
    Mail {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text,
        html,
    }
}

/// The password reset link.
pub fn reset_link(to: &str, username: &str, link: &str) -> Mail {
    link_mail(
        to,
        "Reset your password",
        &[
            &format!("Hello {username},"),
            "Someone (we hope you) asked to reset the password of your account. Open this link \
             within 30 minutes to choose a new one; it works once:",
        ],
        link,
        "If you did not ask for this, ignore this mail: your password stays as it is. Setting \
         a new password signs out every session of the account.",
    )
}

/// The link that confirms a new address.
pub fn verify_link(to: &str, username: &str, link: &str) -> Mail {
    link_mail(
        to,
        "Confirm your e-mail address",
        &[
            &format!("Hello {username},"),
            "Open this link within 24 hours to confirm this address for your account. Password \
             resets and security notices will come here:",
        ],
        link,
        "If you did not ask for this, ignore this mail: the address is not added.",
    )
}

/// Someone asked to add an address that another account already uses. Said to that address
/// only: the person asking is told nothing different, so an address reveals no account.
pub fn address_in_use(to: &str, site: &str) -> Mail {
    link_mail(
        to,
        "Your e-mail address is already in use",
        &[
            "Someone asked to add this e-mail address to an account, but it already belongs to \
           yours, so nothing was changed. If you forgot your password, you can reset it here:",
        ],
        &format!("{site}/forgot"),
        "If you did not ask for this, you can ignore this mail.",
    )
}

/// An address with most of its local part hidden (`a•••@example.com`): enough for its owner to
/// recognise, not enough for whoever reads the old mailbox to take.
pub fn mask(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_say_what_when_where_and_what_to_do_in_both_parts() {
        let origin = Origin {
            site: "https://example.com",
            ip: Some("203.0.113.7".parse().unwrap()),
            user_agent: Some("<script>Mozilla</script>"),
        };
        let mail = password_changed("a@example.com", "ann<b>", &origin);
        for part in [&mail.text, &mail.html] {
            assert!(
                part.contains("password of your account was changed"),
                "{part}"
            );
            assert!(part.contains("203.0.113.7"), "{part}");
            assert!(part.contains("UTC"), "{part}");
            assert!(part.contains("https://example.com/forgot"), "{part}");
        }
        assert!(!mail.html.contains("<script>"), "{}", mail.html);
        assert!(!mail.html.contains("<b>"), "{}", mail.html);
        assert_eq!(mask("someone@example.com"), "s•••@example.com");
    }
}
