//! Text from elsewhere (a worker's stderr, a user's label) made safe for a terminal.

/// `text` safe for a terminal: every control character but newline and tab (C0, DEL, C1:
/// escape sequences that set a title, clear the screen or write the clipboard) shown escaped
/// as `\u{1b}`, so a worker's words are read, never obeyed.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match unsafe_char(c) {
            true => out.extend(c.escape_unicode()),
            false => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// [`printable`], keeping the colour this program added where `color` (its own SGR
/// sequences, `ESC [ ... m`); every other control character is still shown escaped.
pub fn printable_keeping_colour(text: &str, color: bool) -> String {
    if !color {
        return printable(text).into_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\u{1b}') {
        out += &printable(&rest[..at]);
        let after = &rest[at + 1..];
        let sgr = after.strip_prefix('[').and_then(|a| {
            let end = a.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
            (a.as_bytes().get(end) == Some(&b'm')).then_some(end + 2)
        });
        match sgr {
            Some(len) => {
                out.push('\u{1b}');
                out += &after[..len];
                rest = &after[len..];
            }
            None => {
                out += &printable("\u{1b}");
                rest = after;
            }
        }
    }
    out + &printable(rest)
}
