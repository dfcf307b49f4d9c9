//! `connection A -> B { … }` (one way) and `A <-> B` (both): the link's properties, for every
//! copy of a `count` node named.

use super::*;

impl Validator<'_> {
    pub(super) fn connection(&mut self, command: &Command, connections: &mut Vec<Connection>) {
        let usage = "connection A -> B { latency 10ms }";
        let words = &command.words;
        let shape_ok = (words.len() == 4 || words.len() == 5)
            && matches!(words[2].kind, WordKind::Arrow | WordKind::BiArrow)
            && words[1].text().is_some()
            && words[3].text().is_some()
            && words.get(4).is_none_or(|w| w.block().is_some());
        if !shape_ok {
            let mut d = Diagnostic::error(
                command.span,
                "this connection is not written as `connection A -> B`",
            )
            .with_label(format!("expected `{usage}` (or `<->` for both ways)"));
            if words.len() >= 3 && words[2].text() == Some("<-") {
                d = d.with_hint("links go left to right: write `B -> A`");
            }
            self.diags.push(d);
            return;
        }
        let both_ways = matches!(words[2].kind, WordKind::BiArrow);
        let (a, b) = (
            words[1].text().unwrap_or_default(),
            words[3].text().unwrap_or_default(),
        );
        let mut link = Link::default();
        if let Some(block) = words.get(4).and_then(Word::block) {
            self.keys(block, "connection", &LINK_KEYS, |v, key, c| match key {
                "protocol" => {
                    let Some((text, span)) = v.text(c, "protocol \"tcp\"") else {
                        return;
                    };
                    if !text.eq_ignore_ascii_case("tcp") {
                        v.diags.push(
                            Diagnostic::warning(
                                span,
                                format!("protocol `{text}` is shown but every link carries TCP"),
                            )
                            .with_label("only tcp is carried"),
                        );
                    }
                    link.protocol = Some(text.to_string());
                }
                "bandwidth" => link.bandwidth = v.value(c, "bandwidth 1Gbps", parse_rate),
                "latency" => {
                    link.latency = v
                        .value(c, "latency 10ms", parse_duration)
                        .unwrap_or_default()
                }
                "jitter" => {
                    link.jitter = v.value(c, "jitter 5ms", parse_duration).unwrap_or_default()
                }
                "loss" => link.loss = v.value(c, "loss 1%", parse_percent).unwrap_or_default(),
                _ => link.encrypted = v.value(c, "encrypted true", parse_bool).unwrap_or_default(),
            });
        }
        if a == b {
            self.diags.push(
                Diagnostic::error(
                    words[1].span.to(words[3].span),
                    format!("a link from `{a}` to itself"),
                )
                .with_label("both ends are the same node")
                .with_hint("a node always reaches itself; link it to another node"),
            );
            return;
        }
        let (Some(froms), Some(tos)) = (
            self.node_or_group(a, words[1].span),
            self.node_or_group(b, words[3].span),
        ) else {
            return;
        };
        for from in &froms {
            for to in &tos {
                let mut pairs = vec![(from, to)];
                if both_ways {
                    pairs.push((to, from));
                }
                for (f, t) in pairs {
                    if let Some(existing) =
                        connections.iter_mut().find(|c| &c.from == f && &c.to == t)
                    {
                        self.diags.push(
                            Diagnostic::warning(command.span, format!("the link `{f}` -> `{t}` is declared twice; this later one is used"))
                                .with_label("declared again here")
                                .with_related(existing.span, "first declared here"),
                        );
                        existing.link = link.clone();
                        existing.span = command.span;
                        continue;
                    }
                    connections.push(Connection {
                        from: f.clone(),
                        to: t.clone(),
                        both_ways,
                        link: link.clone(),
                        span: command.span,
                    });
                }
            }
        }
    }

    // ----- policies -----
}
