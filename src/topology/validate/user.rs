//! `user NAME { password "…" role student }`: accounts for logging in.

use super::*;

impl Validator<'_> {
    /// One account; `seen` catches a user declared twice.
    pub(super) fn user(
        &mut self,
        command: &Command,
        seen: &mut HashMap<String, Span>,
    ) -> Option<User> {
        let (name, name_span, block) = self.named_block(
            command,
            ("user", "user NAME { password \"…\" role student }", "block"),
            seen,
            None,
        )?;
        let mut password = None;
        let mut role = UserRole::Student;
        self.keys(
            block,
            &format!("user `{name}`"),
            &["password", "role"],
            |v, key, c| match key {
                "password" => {
                    password = v.text(c, "password \"secret\"").map(|(t, _)| t.to_string())
                }
                _ => {
                    let Some((text, span)) = v.text(c, "role student") else {
                        return;
                    };
                    match text {
                        "operator" => role = UserRole::Operator,
                        "student" => role = UserRole::Student,
                        _ => v.diags.push(
                            Diagnostic::error(span, format!("unknown user role `{text}`"))
                                .with_label("expected `operator` or `student`")
                                .with_hint_opt(did_you_mean(text, ["operator", "student"])),
                        ),
                    }
                }
            },
        );
        let Some(password) = password else {
            self.diags.push(
                Diagnostic::error(name_span, format!("user `{name}` has no password"))
                    .with_label("accounts log in with a password")
                    .with_hint("add `password \"…\"` to the block"),
            );
            return None;
        };
        Some(User {
            name: name.to_string(),
            password,
            role,
        })
    }
}
