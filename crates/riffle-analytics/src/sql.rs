//! The application code: Kinesis Analytics' streaming SQL (the SQLstream
//! dialect) parsed into a [`Program`].
//!
//! The code is a list of statements separated by `;`:
//!
//! - `CREATE [OR REPLACE] STREAM name (column type, ...)`: an
//!   in-application stream;
//! - `CREATE [OR REPLACE] PUMP name AS INSERT INTO stream [(columns)]
//!   SELECT STREAM ...`: a continuous query feeding a stream.
//!
//! `sqlparser` parses the standard parts. What the dialect adds is
//! rewritten in the token stream first, with the positions of the original
//! tokens kept for messages: `SELECT STREAM` (the `STREAM` is recorded and
//! dropped), `STEP(expr BY interval)` (becomes `STEP(expr, interval)`),
//! `CURSOR(query)` (becomes a subquery argument), and `WINDOWED BY STAGGER
//! (PARTITION BY ... RANGE interval)` (cut out and parsed as a window
//! specification). Unquoted identifiers are folded to upper case, as
//! SQLstream does; quoted ones keep their case.

use sqlparser::ast::{self, Expr, Query, Statement as SqlStatement, WindowSpec};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

/// A syntax error with its position in the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SQL error at line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// A column of an in-application stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub data_type: ast::DataType,
}

/// `WINDOWED BY STAGGER (PARTITION BY ... RANGE interval)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stagger {
    pub partition_by: Vec<Expr>,
    pub range: Expr,
}

/// `stream OVER (RANGE interval PRECEDING) [AS alias]` in FROM: the rows
/// of `stream` a join sees, those of the last `range`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamWindow {
    /// The stream's name as resolved (quoted as written, else upper case).
    pub stream: String,
    pub alias: Option<String>,
    pub range: Expr,
}

/// One statement of the application code.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateStream {
        name: String,
        columns: Vec<Column>,
    },
    CreatePump {
        name: String,
        target: String,
        /// The target's columns named in the INSERT, if any.
        columns: Vec<String>,
        query: Box<Query>,
        /// `SELECT STREAM` (a continuous query) rather than `SELECT`.
        stream: bool,
        stagger: Option<Box<Stagger>>,
        /// Windows of the streams joined in FROM.
        windows: Vec<StreamWindow>,
    },
}

/// Parsed application code.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Program {
    pub statements: Vec<Statement>,
}

/// An identifier as SQLstream resolves it: quoted ones as written,
/// unquoted ones upper-cased.
pub fn ident(w: &ast::Ident) -> String {
    match w.quote_style {
        Some(_) => w.value.clone(),
        None => w.value.to_ascii_uppercase(),
    }
}

/// A (possibly qualified) name as SQLstream resolves it.
pub fn object_name(n: &ast::ObjectName) -> String {
    n.0.iter()
        .map(|p| match p.as_ident() {
            Some(i) => ident(i),
            None => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn err_at(loc: Location, message: impl Into<String>) -> SqlError {
    SqlError {
        line: loc.line,
        column: loc.column,
        message: message.into(),
    }
}

/// Positions sqlparser reports in its messages ("... at Line: 3, Column:
/// 7") are those of our tokens, which keep the original positions.
fn from_parser(e: sqlparser::parser::ParserError, fallback: Location) -> SqlError {
    let text = match e {
        sqlparser::parser::ParserError::TokenizerError(m)
        | sqlparser::parser::ParserError::ParserError(m) => m,
        sqlparser::parser::ParserError::RecursionLimitExceeded => {
            "the statement is nested too deeply".to_string()
        }
    };
    let (message, loc) = match text.rfind(" at Line: ") {
        Some(i) => {
            let pos = &text[i + " at Line: ".len()..];
            let mut parts = pos.split(", Column: ");
            let line = parts.next().and_then(|l| l.trim().parse().ok());
            let column = parts.next().and_then(|c| c.trim().parse().ok());
            match (line, column) {
                (Some(line), Some(column)) => (text[..i].to_string(), Location { line, column }),
                _ => (text.clone(), fallback),
            }
        }
        None => (text, fallback),
    };
    let message = message
        .strip_prefix("sql parser error: ")
        .unwrap_or(&message)
        .to_string();
    err_at(loc, message)
}

fn is_kw(t: &TokenWithSpan, k: Keyword) -> bool {
    matches!(&t.token, Token::Word(w) if w.keyword == k && w.quote_style.is_none())
}

fn is_word(t: &TokenWithSpan, s: &str) -> bool {
    matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(s))
}

fn significant(t: &TokenWithSpan) -> bool {
    !matches!(t.token, Token::Whitespace(_))
}

/// Parses application code.
pub fn parse(code: &str) -> Result<Program, SqlError> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, code)
        .tokenize_with_location()
        .map_err(|e| err_at(e.location, e.message))?;
    let tokens: Vec<TokenWithSpan> = tokens.into_iter().filter(significant).collect();
    let mut program = Program::default();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::SemiColon if depth <= 0 => {
                if i > start {
                    program.statements.push(statement(&tokens[start..i])?);
                }
                start = i + 1;
                depth = 0;
            }
            _ => {}
        }
    }
    if start < tokens.len() {
        program.statements.push(statement(&tokens[start..])?);
    }
    Ok(program)
}

fn end_of(tokens: &[TokenWithSpan]) -> Location {
    tokens
        .last()
        .map_or(Location { line: 1, column: 1 }, |t| t.span.end)
}

/// A token with the position of `at`.
fn synth(token: Token, at: &TokenWithSpan) -> TokenWithSpan {
    TokenWithSpan {
        token,
        span: at.span,
    }
}

fn word(s: &str, at: &TokenWithSpan) -> TokenWithSpan {
    synth(Token::make_keyword(s), at)
}

fn statement(t: &[TokenWithSpan]) -> Result<Statement, SqlError> {
    let first = &t[0];
    if !is_kw(first, Keyword::CREATE) {
        return Err(err_at(
            first.span.start,
            format!(
                "Expected CREATE OR REPLACE STREAM or CREATE OR REPLACE PUMP, found: {}",
                first.token
            ),
        ));
    }
    let mut i = 1;
    if t.get(i).is_some_and(|x| is_kw(x, Keyword::OR)) {
        if !t.get(i + 1).is_some_and(|x| is_kw(x, Keyword::REPLACE)) {
            let at = t.get(i + 1).map_or(end_of(t), |x| x.span.start);
            return Err(err_at(at, "Expected REPLACE after CREATE OR"));
        }
        i += 2;
    }
    let Some(kind) = t.get(i) else {
        return Err(err_at(end_of(t), "Expected STREAM or PUMP, found: EOF"));
    };
    if is_word(kind, "STREAM") {
        create_stream(&t[i + 1..], kind)
    } else if is_word(kind, "PUMP") {
        create_pump(&t[i + 1..], kind)
    } else {
        Err(err_at(
            kind.span.start,
            format!("Expected STREAM or PUMP, found: {}", kind.token),
        ))
    }
}

fn parser(tokens: Vec<TokenWithSpan>) -> Parser<'static> {
    static DIALECT: GenericDialect = GenericDialect {};
    Parser::new(&DIALECT).with_tokens_with_locations(tokens)
}

fn create_stream(t: &[TokenWithSpan], at: &TokenWithSpan) -> Result<Statement, SqlError> {
    // Parsed as a CREATE TABLE with the same name and columns.
    let mut tokens = vec![word("CREATE", at), word("TABLE", at)];
    tokens.extend(t.iter().cloned());
    let parsed = parser(tokens)
        .parse_statement()
        .map_err(|e| from_parser(e, end_of(t)))?;
    match parsed {
        SqlStatement::CreateTable(c) => {
            if c.columns.is_empty() {
                return Err(err_at(at.span.start, "A stream needs at least one column"));
            }
            Ok(Statement::CreateStream {
                name: object_name(&c.name),
                columns: c
                    .columns
                    .iter()
                    .map(|col| Column {
                        name: ident(&col.name),
                        data_type: col.data_type.clone(),
                    })
                    .collect(),
            })
        }
        _ => Err(err_at(at.span.start, "Expected a stream definition")),
    }
}

fn create_pump(t: &[TokenWithSpan], at: &TokenWithSpan) -> Result<Statement, SqlError> {
    let name = match t.first().map(|x| &x.token) {
        Some(Token::Word(w)) => ident(&ast::Ident {
            value: w.value.clone(),
            quote_style: w.quote_style,
            span: t[0].span,
        }),
        _ => {
            let loc = t.first().map_or(end_of(t), |x| x.span.start);
            return Err(err_at(loc, "Expected a pump name"));
        }
    };
    if !t.get(1).is_some_and(|x| is_kw(x, Keyword::AS)) {
        let loc = t.get(1).map_or(end_of(t), |x| x.span.start);
        return Err(err_at(loc, "Expected AS after the pump name"));
    }
    let body = &t[2..];
    let (body, stream, stagger, windows) = rewrite(body)?;
    let parsed = parser(body)
        .parse_statement()
        .map_err(|e| from_parser(e, end_of(t)))?;
    let SqlStatement::Insert(insert) = parsed else {
        return Err(err_at(
            at.span.start,
            "A pump must be AS INSERT INTO stream SELECT ...",
        ));
    };
    let target = match &insert.table {
        ast::TableObject::TableName(n) => object_name(n),
        other => other.to_string(),
    };
    let Some(query) = insert.source else {
        return Err(err_at(at.span.start, "A pump needs a SELECT"));
    };
    Ok(Statement::CreatePump {
        name,
        target,
        columns: insert.columns.iter().map(object_name).collect(),
        query,
        stream,
        stagger,
        windows,
    })
}

/// Tokens in standard SQL, whether the outer SELECT was `SELECT STREAM`,
/// and the stagger window if one was given.
type Rewritten = (
    Vec<TokenWithSpan>,
    bool,
    Option<Box<Stagger>>,
    Vec<StreamWindow>,
);

/// Rewrites the dialect's additions into standard SQL (see the module
/// documentation); returns the tokens, whether the outer SELECT was
/// `SELECT STREAM`, and the stagger window if one was given.
fn rewrite(t: &[TokenWithSpan]) -> Result<Rewritten, SqlError> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(t.len());
    let mut stream = false;
    let mut stagger = None;
    let mut windows = Vec::new();
    let mut seen_select = false;
    // Depths of open parentheses that belong to a STEP( call.
    let mut step_parens: Vec<i32> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < t.len() {
        let tok = &t[i];
        match &tok.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                if step_parens.last() == Some(&depth) {
                    step_parens.pop();
                }
                depth -= 1;
            }
            _ => {}
        }
        if is_kw(tok, Keyword::SELECT) && t.get(i + 1).is_some_and(|x| is_word(x, "STREAM")) {
            if !seen_select {
                stream = true;
            }
            seen_select = true;
            out.push(tok.clone());
            i += 2;
            continue;
        }
        if is_kw(tok, Keyword::SELECT) {
            seen_select = true;
        }
        if is_word(tok, "STEP") && t.get(i + 1).is_some_and(|x| x.token == Token::LParen) {
            step_parens.push(depth + 1);
        }
        if is_kw(tok, Keyword::BY) && step_parens.last() == Some(&depth) {
            out.push(synth(Token::Comma, tok));
            i += 1;
            continue;
        }
        if is_word(tok, "CURSOR") && t.get(i + 1).is_some_and(|x| x.token == Token::LParen) {
            i += 1;
            continue;
        }
        // `stream OVER (...)`: OVER after a name, not after a call.
        if is_kw(tok, Keyword::OVER)
            && t.get(i + 1).is_some_and(|x| x.token == Token::LParen)
            && out
                .last()
                .is_some_and(|p| matches!(p.token, Token::Word(_)))
        {
            let (w, next) = stream_window(t, i, &out)?;
            windows.push(w);
            i = next;
            continue;
        }
        if is_word(tok, "WINDOWED") && depth == 0 {
            let (s, next) = stagger_clause(t, i)?;
            stagger = Some(Box::new(s));
            i = next;
            continue;
        }
        out.push(tok.clone());
        i += 1;
    }
    Ok((out, stream, stagger, windows))
}

/// The token's identifier as resolved, if it is one.
fn word_ident(t: &TokenWithSpan) -> Option<String> {
    match &t.token {
        Token::Word(w) => Some(ident(&ast::Ident {
            value: w.value.clone(),
            quote_style: w.quote_style,
            span: t.span,
        })),
        _ => None,
    }
}

/// The index of the parenthesis closing the one at `t[open]`.
fn closing(t: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (j, x) in t.iter().enumerate().skip(open) {
        match x.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

/// `OVER ( RANGE interval PRECEDING )` at `t[i]` after the stream name
/// `out.last()`; returns the window and the index after it (the alias
/// stays in the tokens).
fn stream_window(
    t: &[TokenWithSpan],
    i: usize,
    out: &[TokenWithSpan],
) -> Result<(StreamWindow, usize), SqlError> {
    let stream = out.last().and_then(word_ident).unwrap_or_default();
    let end = closing(t, i + 1).ok_or_else(|| err_at(end_of(t), "Unclosed OVER ("))?;
    let mut p = parser(t[i + 1..=end].to_vec());
    let parsed: WindowSpec = p
        .expect_token(&Token::LParen)
        .and_then(|_| p.parse_window_spec())
        .map_err(|e| from_parser(e, t[i].span.start))?;
    let range = match parsed.window_frame.map(|f| (f.units, f.start_bound)) {
        Some((ast::WindowFrameUnits::Range, ast::WindowFrameBound::Preceding(Some(e)))) => *e,
        _ => {
            return Err(err_at(
                t[i].span.start,
                "A stream in FROM takes OVER (RANGE INTERVAL ... PRECEDING)",
            ))
        }
    };
    let alias = match (t.get(end + 1), t.get(end + 2)) {
        (Some(a), Some(n)) if is_kw(a, Keyword::AS) => word_ident(n),
        (Some(n), _) if matches!(&n.token, Token::Word(w) if w.keyword == Keyword::NoKeyword || w.quote_style.is_some()) => {
            word_ident(n)
        }
        _ => None,
    };
    Ok((
        StreamWindow {
            stream,
            alias,
            range,
        },
        end + 1,
    ))
}

/// `WINDOWED BY STAGGER ( PARTITION BY exprs RANGE interval )` starting at
/// `t[i]`; returns it and the index after it.
fn stagger_clause(t: &[TokenWithSpan], i: usize) -> Result<(Stagger, usize), SqlError> {
    let expect = |j: usize, what: &str, ok: bool| -> Result<(), SqlError> {
        if ok {
            Ok(())
        } else {
            let loc = t.get(j).map_or(end_of(t), |x| x.span.start);
            Err(err_at(
                loc,
                format!("Expected {what} in WINDOWED BY STAGGER"),
            ))
        }
    };
    expect(
        i + 1,
        "BY",
        t.get(i + 1).is_some_and(|x| is_kw(x, Keyword::BY)),
    )?;
    expect(
        i + 2,
        "STAGGER",
        t.get(i + 2).is_some_and(|x| is_word(x, "STAGGER")),
    )?;
    expect(
        i + 3,
        "(",
        t.get(i + 3).is_some_and(|x| x.token == Token::LParen),
    )?;
    let mut depth = 0;
    let mut end = None;
    for (j, x) in t.iter().enumerate().skip(i + 3) {
        match x.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    end = Some(j);
                    break;
                }
            }
            _ => {}
        }
    }
    let end = end.ok_or_else(|| err_at(end_of(t), "Unclosed WINDOWED BY STAGGER ("))?;
    // Parsed as the window specification `(PARTITION BY ... RANGE
    // interval PRECEDING)`.
    let mut spec = t[i + 3..end].to_vec();
    spec.push(word("PRECEDING", &t[end]));
    spec.push(t[end].clone());
    let mut p = parser(spec);
    let parsed: WindowSpec = p
        .expect_token(&Token::LParen)
        .and_then(|_| p.parse_window_spec())
        .map_err(|e| from_parser(e, t[i].span.start))?;
    let range = match parsed.window_frame.map(|f| f.start_bound) {
        Some(ast::WindowFrameBound::Preceding(Some(e))) => *e,
        _ => {
            return Err(err_at(
                t[i].span.start,
                "WINDOWED BY STAGGER needs RANGE INTERVAL",
            ))
        }
    };
    Ok((
        Stagger {
            partition_by: parsed.partition_by,
            range,
        },
        end + 1,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_pumps() {
        let p = parse(
            r#"
            CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), "Price" DOUBLE);
            CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
              SELECT STREAM ticker_symbol, price
              FROM "SOURCE_SQL_STREAM_001"
              WHERE sector SIMILAR TO '%TECH%';
            "#,
        )
        .unwrap();
        assert_eq!(p.statements.len(), 2);
        match &p.statements[0] {
            Statement::CreateStream { name, columns } => {
                assert_eq!(name, "DESTINATION_SQL_STREAM");
                let names: Vec<_> = columns.iter().map(|c| c.name.as_str()).collect();
                assert_eq!(names, ["TICKER_SYMBOL", "Price"]);
                assert_eq!(columns[0].data_type.to_string(), "VARCHAR(4)");
            }
            other => panic!("{other:?}"),
        }
        match &p.statements[1] {
            Statement::CreatePump {
                name,
                target,
                stream,
                stagger,
                query,
                ..
            } => {
                assert_eq!(
                    (name.as_str(), target.as_str()),
                    ("STREAM_PUMP", "DESTINATION_SQL_STREAM")
                );
                assert!(*stream);
                assert!(stagger.is_none());
                assert!(query
                    .to_string()
                    .starts_with("SELECT ticker_symbol, price FROM \"SOURCE_SQL_STREAM_001\""));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dialect_additions() {
        let p = parse(
            r#"CREATE OR REPLACE PUMP p AS INSERT INTO "D" (t, c)
               SELECT STREAM ticker, COUNT(*) FROM "S"
               GROUP BY ticker, STEP("S".ROWTIME BY INTERVAL '10' SECOND);
               CREATE OR REPLACE PUMP q AS INSERT INTO "D"
               SELECT STREAM * FROM TABLE(RANDOM_CUT_FOREST(CURSOR(SELECT STREAM * FROM "S"), 100, 256));
               CREATE OR REPLACE PUMP r AS INSERT INTO "D"
               SELECT STREAM ticker, COUNT(*) FROM "S"
               WINDOWED BY STAGGER (PARTITION BY FLOOR(event_time TO MINUTE), ticker RANGE INTERVAL '1' MINUTE)"#,
        )
        .unwrap();
        let Statement::CreatePump { query, columns, .. } = &p.statements[0] else {
            panic!()
        };
        assert_eq!(columns, &["T", "C"]);
        assert!(
            query
                .to_string()
                .contains("STEP(\"S\".ROWTIME, INTERVAL '10' SECOND)"),
            "{query}"
        );
        let Statement::CreatePump { query, .. } = &p.statements[1] else {
            panic!()
        };
        assert!(
            query
                .to_string()
                .contains("RANDOM_CUT_FOREST((SELECT * FROM \"S\"), 100, 256)"),
            "{query}"
        );
        let Statement::CreatePump {
            stagger: Some(s),
            query,
            ..
        } = &p.statements[2]
        else {
            panic!()
        };
        assert_eq!(s.partition_by.len(), 2);
        assert_eq!(s.range.to_string(), "INTERVAL '1' MINUTE");
        assert!(!query.to_string().contains("STAGGER"));
    }

    #[test]
    fn errors_point_at_the_code() {
        let e = parse("CREATE OR REPLACE STREAM s (a INT);\nCREATE OR REPLACE PUMP p AS INSERT INTO s SELECT STREAM a FROM").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = parse("SELECT 1").unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
        assert!(
            e.message.starts_with("Expected CREATE OR REPLACE STREAM"),
            "{e}"
        );
        let e = parse("CREATE OR REPLACE TABLE t (a INT)").unwrap_err();
        assert_eq!((e.line, e.column), (1, 19), "{e}");
        let e = parse("CREATE STREAM s (a INT, b VARCHAR(4)").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        let e = parse("CREATE STREAM s (a INT) ; CREATE PUMP p AS INSERT INTO s SELECT STREAM a FROM t WHERE 'x").unwrap_err();
        assert!(e.message.contains("Unterminated"), "{e}");
        assert_eq!(parse("  ;  ").unwrap().statements.len(), 0);
    }
}
