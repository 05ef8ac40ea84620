//! Drive's query language, as `files.list` reads its `q`
//! (<https://developers.google.com/drive/api/guides/ref-search-terms>,
//! <https://developers.google.com/drive/api/guides/search-files>): the terms the hub and the
//! tests use (`name`, `fullText`, `trashed`), joined by `and` / `or` / `not` and parentheses.
//! String literals are in single quotes, `\'` and `\\` escaping a quote and a backslash. A
//! query that does not parse is Drive's 400 `invalid` on `q`.

/// A parsed `q`.
#[derive(Debug, PartialEq)]
pub(crate) enum Query {
    And(Box<Query>, Box<Query>),
    Or(Box<Query>, Box<Query>),
    Not(Box<Query>),
    /// `name contains 'x'`: "only performs prefix matching for a name term", case-insensitive.
    NameContains(String),
    /// `name = 'x'`.
    NameIs(String),
    /// `fullText contains 'x'`: "only performs matching on entire string tokens for the
    /// fullText term", over the name and the content's text.
    FullTextContains(String),
    /// `trashed = true|false`.
    Trashed(bool),
}

/// What a file offers a query: its name, the text of its content where the stand-in holds
/// bytes, and whether it is in the trash.
pub(crate) struct Searched<'a> {
    pub name: &'a str,
    pub content: Option<&'a str>,
    pub trashed: bool,
}

impl Query {
    pub(crate) fn parse(q: &str) -> Option<Query> {
        let tokens = tokenize(q)?;
        let mut parser = Parser { tokens, at: 0 };
        let query = parser.or()?;
        (parser.at == parser.tokens.len()).then_some(query)
    }

    pub(crate) fn matches(&self, file: &Searched<'_>) -> bool {
        match self {
            Query::And(a, b) => a.matches(file) && b.matches(file),
            Query::Or(a, b) => a.matches(file) || b.matches(file),
            Query::Not(a) => !a.matches(file),
            Query::NameContains(text) => file.name.to_lowercase().starts_with(&text.to_lowercase()),
            Query::NameIs(text) => file.name == text,
            Query::FullTextContains(text) => {
                let wanted = words(text);
                !wanted.is_empty()
                    && [Some(file.name), file.content]
                        .into_iter()
                        .flatten()
                        .any(|text| {
                            let had = words(text);
                            had.windows(wanted.len())
                                .any(|run| run == wanted.as_slice())
                        })
            }
            Query::Trashed(trashed) => file.trashed == *trashed,
        }
    }
}

/// A text's tokens, lower-cased: its runs of letters and digits.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Literal(String),
    Open,
    Close,
    Equals,
}

fn tokenize(q: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '=' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Equals,
                });
            }
            '\'' => {
                chars.next();
                let mut literal = String::new();
                loop {
                    match chars.next()? {
                        '\\' => match chars.next()? {
                            escaped @ ('\'' | '\\') => literal.push(escaped),
                            // Only a quote and a backslash are escaped.
                            _ => return None,
                        },
                        '\'' => break,
                        other => literal.push(other),
                    }
                }
                tokens.push(Token::Literal(literal));
            }
            c if c.is_ascii_alphabetic() => {
                let mut word = String::new();
                while let Some(&c) = chars.peek().filter(|c| c.is_ascii_alphanumeric()) {
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
            _ => return None,
        }
    }
    Some(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn keyword(&mut self, word: &str) -> bool {
        let found = matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w == word);
        self.at += usize::from(found);
        found
    }

    fn or(&mut self) -> Option<Query> {
        let mut query = self.and()?;
        while self.keyword("or") {
            query = Query::Or(Box::new(query), Box::new(self.and()?));
        }
        Some(query)
    }

    fn and(&mut self) -> Option<Query> {
        let mut query = self.unary()?;
        while self.keyword("and") {
            query = Query::And(Box::new(query), Box::new(self.unary()?));
        }
        Some(query)
    }

    fn unary(&mut self) -> Option<Query> {
        if self.keyword("not") {
            return Some(Query::Not(Box::new(self.unary()?)));
        }
        match self.next()? {
            Token::Open => {
                let query = self.or()?;
                (self.next()? == Token::Close).then_some(query)
            }
            Token::Word(field) => {
                let operator = self.next()?;
                let value = self.next()?;
                match (field.as_str(), operator, value) {
                    ("name", Token::Word(op), Token::Literal(text)) if op == "contains" => {
                        Some(Query::NameContains(text))
                    }
                    ("name", Token::Equals, Token::Literal(text)) => Some(Query::NameIs(text)),
                    ("fullText", Token::Word(op), Token::Literal(text)) if op == "contains" => {
                        Some(Query::FullTextContains(text))
                    }
                    ("trashed", Token::Equals, Token::Word(value)) => match value.as_str() {
                        "true" => Some(Query::Trashed(true)),
                        "false" => Some(Query::Trashed(false)),
                        _ => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file<'a>(name: &'a str, content: Option<&'a str>) -> Searched<'a> {
        Searched {
            name,
            content,
            trashed: false,
        }
    }

    #[test]
    fn terms_combine_and_literals_unescape() {
        let q = Query::parse(
            r"(name contains 'it\'s a\\b' or fullText contains 'x') and trashed = false",
        )
        .unwrap();
        assert!(q.matches(&file(r"It's a\b report", None)));
        assert!(!q.matches(&file("its a b", None)));
        let q = Query::parse("fullText contains 'Quarterly Figures'").unwrap();
        assert!(q.matches(&file("notes", Some("the quarterly figures, final"))));
        assert!(!q.matches(&file("notes", Some("quarterlyfigures"))));
        assert!(!q.matches(&file("notes", None)));
        // Prefix only for a name.
        let q = Query::parse("name contains 'world'").unwrap();
        assert!(!q.matches(&file("HelloWorld", None)));
        assert!(Query::parse("not trashed = true")
            .unwrap()
            .matches(&file("a", None)));
    }

    #[test]
    fn malformed_queries_do_not_parse() {
        for bad in [
            "name contains 'unterminated",
            "name contains 'a' and",
            "name contains 'it's'",
            "owner contains 'a'",
            "(trashed = false",
            "trashed = maybe",
            r"name contains 'a\n'",
            "",
        ] {
            assert_eq!(Query::parse(bad), None, "{bad}");
        }
    }
}
