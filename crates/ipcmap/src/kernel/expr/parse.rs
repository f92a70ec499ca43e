//! The expression language of `--fn`: text to a tree, with every error pointing at its column.
//!
//! ```text
//! expr    := compare
//! compare := sum (('<' | '<=' | '>' | '>=' | '==' | '!=') sum)?     (comparisons do not chain)
//! sum     := product (('+' | '-') product)*
//! product := unary (('*' | '/') unary)*
//! unary   := ('-' | '+') unary | power
//! power   := atom ('**' unary)?                                    (right-associative: -x**2 is -(x**2))
//! atom    := number | 'x' | 'pi' | 'e' | name '(' expr (',' expr)* ')' | '(' expr ')'
//! ```
//!
//! As in Python and numpy. Names may carry numpy's prefix (`np.exp`, `numpy.exp`). The text is
//! bounded ([`MAX_TEXT`] characters, [`MAX_DEPTH`] levels of nesting, [`MAX_NODES`] operations)
//! before anything recurses or allocates on it, so the same parser serves a peer's bytes.

use super::{Binary, Unary};

/// The longest expression accepted, in characters.
pub const MAX_TEXT: usize = 1000;
/// The deepest nesting accepted (parentheses, calls, unary signs and powers together).
pub const MAX_DEPTH: usize = 48;
/// The most operations an expression may hold (numbers, `x`, operators, calls).
pub const MAX_NODES: usize = 256;

/// Why an expression was refused, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// Nothing to parse.
    #[error("the expression is empty")]
    Empty,
    /// Over [`MAX_TEXT`] characters.
    #[error("the expression is {0} characters long; at most {MAX_TEXT} are accepted")]
    TooLong(usize),
    /// A mistake at a column (1-based, in characters).
    #[error("at column {column}: {message}")]
    At {
        /// Where, counting characters from 1.
        column: usize,
        /// What is wrong there.
        message: String,
    },
}

/// A parsed expression: a tree over the one variable `x`.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// The input value.
    X,
    /// A number (literal, constant, or folded).
    Number(f64),
    /// A function of one value.
    Unary(Unary, Box<Node>),
    /// An operator or function of two values.
    Binary(Binary, Box<Node>, Box<Node>),
    /// `where(condition, then, else)`: `then` where the condition is not zero.
    Where(Box<Node>, Box<Node>, Box<Node>),
}

/// The functions a call may name, with their argument count.
const FUNCTIONS: &str = "exp ln log sin cos tan sqrt abs tanh min max where";

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Number(f64),
    Name(String),
    Op(&'static str),
    End,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Number(v) => format!("the number {v}"),
            Token::Name(n) => format!("'{n}'"),
            Token::Op(op) => format!("'{op}'"),
            Token::End => "the end".to_string(),
        }
    }
}

/// Operators, longest first so that `**` and `<=` win over `*` and `<`.
const OPS: [&str; 14] = ["**", "<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "(", ")", ","];

fn at(column: usize, message: impl Into<String>) -> ExprError {
    ExprError::At { column, message: message.into() }
}

/// Splits `text` into tokens, each with its column.
fn tokens(text: &str) -> Result<Vec<(Token, usize)>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && matches!(chars[i], 'e' | 'E') {
                let mut j = i + 1;
                if j < chars.len() && matches!(chars[j], '+' | '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    return Err(at(
                        column,
                        format!(
                            "'{}' is not a number (an exponent needs digits)",
                            chars[start..j].iter().collect::<String>()
                        ),
                    ));
                }
            }
            let lexeme: String = chars[start..i].iter().collect();
            let value = lexeme
                .parse::<f64>()
                .map_err(|_| at(column, format!("'{lexeme}' is not a number")))?;
            if chars.get(i).is_some_and(|c| c.is_alphanumeric() || *c == '_') {
                return Err(at(
                    i + 1,
                    format!(
                        "a number runs into '{}'; write an operator between them (2*x, not 2x)",
                        chars[i]
                    ),
                ));
            }
            out.push((Token::Number(value), column));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let bare =
                name.strip_prefix("numpy.").or_else(|| name.strip_prefix("np.")).unwrap_or(&name);
            if bare.contains('.') {
                return Err(at(column, format!("unknown name '{name}'")));
            }
            out.push((Token::Name(bare.to_string()), column));
        } else if let Some(op) =
            OPS.iter().find(|op| chars[i..].iter().take(op.len()).copied().eq(op.chars()))
        {
            out.push((Token::Op(op), column));
            i += op.len();
        } else {
            let hint = match c {
                '^' => " (powers are **, as in Python)",
                '=' => " (comparing is ==)",
                '!' => " (not-equal is !=)",
                '&' | '|' | '~' => " (combine conditions with where(...), min or max)",
                '[' | ']' | '{' | '}' => " (group with parentheses)",
                _ => "",
            };
            return Err(at(column, format!("unexpected '{c}'{hint}")));
        }
    }
    out.push((Token::End, chars.len() + 1));
    Ok(out)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    next: usize,
    depth: usize,
    nodes: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.next].0
    }

    fn column(&self) -> usize {
        self.tokens[self.next].1
    }

    fn bump(&mut self) -> (Token, usize) {
        let t = self.tokens[self.next].clone();
        if self.next + 1 < self.tokens.len() {
            self.next += 1;
        }
        t
    }

    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Token::Op(o) if *o == op) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Counts one operation and one level of nesting, within the bounds.
    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(at(self.column(), format!("nested more than {MAX_DEPTH} deep")));
        }
        Ok(())
    }

    fn node(&mut self, column: usize, node: Node) -> Result<Node, ExprError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(at(column, format!("more than {MAX_NODES} operations")));
        }
        Ok(node)
    }

    fn expr(&mut self) -> Result<Node, ExprError> {
        self.enter()?;
        let left = self.sum()?;
        let op = match self.peek() {
            Token::Op(op) => Binary::comparison(op),
            _ => None,
        };
        let node = match op {
            Some(op) => {
                let column = self.column();
                self.bump();
                let right = self.sum()?;
                if let Token::Op(next) = self.peek() {
                    if Binary::comparison(next).is_some() {
                        return Err(at(
                            self.column(),
                            "comparisons do not chain; use parentheses or where(...)",
                        ));
                    }
                }
                self.node(column, Node::Binary(op, Box::new(left), Box::new(right)))?
            }
            None => left,
        };
        self.depth -= 1;
        Ok(node)
    }

    fn sum(&mut self) -> Result<Node, ExprError> {
        self.left_associative(&[("+", Binary::Add), ("-", Binary::Sub)], Parser::product)
    }

    fn product(&mut self) -> Result<Node, ExprError> {
        self.left_associative(&[("*", Binary::Mul), ("/", Binary::Div)], Parser::unary)
    }

    /// `operand (op operand)*` for the operators of one precedence level, left-associative.
    fn left_associative(
        &mut self,
        ops: &[(&str, Binary)],
        operand: fn(&mut Parser) -> Result<Node, ExprError>,
    ) -> Result<Node, ExprError> {
        let mut left = operand(self)?;
        loop {
            let column = self.column();
            let Some(&(_, op)) = ops.iter().find(|(text, _)| self.eat(text)) else {
                return Ok(left);
            };
            let right = operand(self)?;
            left = self.node(column, Node::Binary(op, Box::new(left), Box::new(right)))?;
        }
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        let column = self.column();
        if self.eat("-") {
            self.enter()?;
            let operand = self.unary()?;
            self.depth -= 1;
            return self.node(column, Node::Unary(Unary::Neg, Box::new(operand)));
        }
        if self.eat("+") {
            self.enter()?;
            let operand = self.unary()?;
            self.depth -= 1;
            return Ok(operand);
        }
        self.power()
    }

    fn power(&mut self) -> Result<Node, ExprError> {
        let base = self.atom()?;
        let column = self.column();
        if self.eat("**") {
            self.enter()?;
            let exponent = self.unary()?;
            self.depth -= 1;
            return self
                .node(column, Node::Binary(Binary::Pow, Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Node, ExprError> {
        let (token, column) = self.bump();
        match token {
            Token::Number(v) => self.node(column, Node::Number(v)),
            Token::Op("(") => {
                let inner = self.expr()?;
                self.close(column, "(")?;
                Ok(inner)
            }
            Token::Name(name) => self.name(&name, column),
            Token::End => Err(at(
                column,
                "the expression ends where a value should be (a number, x, a function or '(')",
            )),
            other => Err(at(
                column,
                format!(
                    "expected a value (a number, x, a function or '('), found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn close(&mut self, open_column: usize, what: &str) -> Result<(), ExprError> {
        if self.eat(")") {
            return Ok(());
        }
        Err(at(
            self.column(),
            format!(
                "expected ')' to close the {what} at column {open_column}, found {}",
                self.peek().describe()
            ),
        ))
    }

    fn name(&mut self, name: &str, column: usize) -> Result<Node, ExprError> {
        let constant = match name {
            "x" => Some(Node::X),
            "pi" => Some(Node::Number(std::f64::consts::PI)),
            "e" => Some(Node::Number(std::f64::consts::E)),
            _ => None,
        };
        let is_function = FUNCTIONS.split(' ').any(|f| f == name);
        if let Some(node) = constant {
            if *self.peek() == Token::Op("(") {
                return Err(at(
                    self.column(),
                    format!(
                        "'{name}' is not a function; write an operator before '(' ({name}*(...))"
                    ),
                ));
            }
            return self.node(column, node);
        }
        if !is_function {
            return Err(at(column, format!("unknown name '{name}' (the variable is x; functions: {FUNCTIONS}; constants: pi e)")));
        }
        let open = self.column();
        if !self.eat("(") {
            return Err(at(open, format!("'{name}' is a function: write {name}(...)")));
        }
        self.enter()?;
        let mut args = vec![self.expr()?];
        while self.eat(",") {
            args.push(self.expr()?);
        }
        self.close(open, &format!("{name}("))?;
        self.depth -= 1;
        let wanted = match name {
            "min" | "max" => 2,
            "where" => 3,
            _ => 1,
        };
        if args.len() != wanted {
            let s = if wanted == 1 { "" } else { "s" };
            return Err(at(
                column,
                format!("{name} takes {wanted} argument{s}, found {}", args.len()),
            ));
        }
        let mut args = args.into_iter().map(Box::new);
        let mut arg = || args.next().unwrap_or_else(|| Box::new(Node::X));
        let node = match name {
            "min" => Node::Binary(Binary::Min, arg(), arg()),
            "max" => Node::Binary(Binary::Max, arg(), arg()),
            "where" => Node::Where(arg(), arg(), arg()),
            _ => Node::Unary(Unary::named(name).unwrap_or(Unary::Neg), arg()),
        };
        self.node(column, node)
    }
}

/// Parses `text` into a tree, or says what is wrong and where.
pub fn parse(text: &str) -> Result<Node, ExprError> {
    let length = text.chars().count();
    if length > MAX_TEXT {
        return Err(ExprError::TooLong(length));
    }
    if text.trim().is_empty() {
        return Err(ExprError::Empty);
    }
    let mut parser = Parser { tokens: tokens(text)?, next: 0, depth: 0, nodes: 0 };
    let node = parser.expr()?;
    match parser.peek() {
        Token::End => Ok(node),
        Token::Op(")") => Err(at(parser.column(), "')' closes nothing")),
        Token::Op(",") => Err(at(
            parser.column(),
            "',' outside a function's arguments (for a list of functions, separate them with ';')",
        )),
        other => Err(at(
            parser.column(),
            format!("expected an operator or the end, found {}", other.describe()),
        )),
    }
}
