//! A line editor for a serial console, without the console: [`Editor::feed`] takes one byte
//! typed and says what to echo and whether a line is finished.
//!
//! Keys: printable ASCII inserts at the end; Backspace (DEL 0x7f or BS 0x08) deletes the last
//! character (echo "\b \b"); Enter (CR or LF; CR LF counts once) finishes the line; Ctrl-C
//! drops the line; Ctrl-D on an empty line is end of input; the up and down arrows
//! (`ESC [ A`, `ESC [ B`, also `ESC O A/B`) walk the history, redrawing the line. Anything
//! else (other escapes, control bytes, non-ASCII) is ignored.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

/// Longest line kept; further characters are ignored.
pub const LINE_MAX: usize = 256;
/// Lines kept in the history.
pub const HISTORY_MAX: usize = 32;

/// What one byte did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing finished; write this to the console (may be empty).
    Echo(String),
    /// A line was entered (the echo is the newline).
    Line(String),
    /// Ctrl-C: the line was dropped.
    Cancel,
    /// Ctrl-D on an empty line.
    Eof,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Esc {
    None,
    Start,
    Bracket,
}

/// The editor's state.
#[derive(Debug)]
pub struct Editor {
    line: String,
    history: Vec<String>,
    /// Where in the history the up/down arrows are (history.len(): the line being typed).
    at: usize,
    /// The line being typed before the arrows were used.
    draft: String,
    esc: Esc,
    last_cr: bool,
}

impl Default for Editor {
    fn default() -> Self {
        Self::new()
    }
}

impl Editor {
    /// An empty editor.
    pub const fn new() -> Self {
        Editor {
            line: String::new(),
            history: Vec::new(),
            at: 0,
            draft: String::new(),
            esc: Esc::None,
            last_cr: false,
        }
    }

    /// The line so far.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The history, oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Replaces the line with `text` and returns the echo that redraws it.
    fn replace(&mut self, text: String) -> Step {
        let mut echo = String::new();
        for _ in 0..self.line.chars().count() {
            echo.push_str("\x08 \x08");
        }
        echo.push_str(&text);
        self.line = text;
        Step::Echo(echo)
    }

    fn arrow(&mut self, up: bool) -> Step {
        if up {
            if self.at == 0 {
                return Step::Echo(String::new());
            }
            if self.at == self.history.len() {
                self.draft = self.line.clone();
            }
            self.at -= 1;
            let t = self.history[self.at].clone();
            self.replace(t)
        } else {
            if self.at >= self.history.len() {
                return Step::Echo(String::new());
            }
            self.at += 1;
            let t = if self.at == self.history.len() {
                core::mem::take(&mut self.draft)
            } else {
                self.history[self.at].clone()
            };
            self.replace(t)
        }
    }

    /// Takes one byte typed.
    pub fn feed(&mut self, b: u8) -> Step {
        let was_cr = core::mem::replace(&mut self.last_cr, false);
        match self.esc {
            Esc::Start => {
                self.esc = if b == b'[' || b == b'O' {
                    Esc::Bracket
                } else {
                    Esc::None
                };
                return Step::Echo(String::new());
            }
            Esc::Bracket => {
                self.esc = Esc::None;
                return match b {
                    b'A' => self.arrow(true),
                    b'B' => self.arrow(false),
                    _ => Step::Echo(String::new()),
                };
            }
            Esc::None => {}
        }
        match b {
            0x1b => {
                self.esc = Esc::Start;
                Step::Echo(String::new())
            }
            b'\n' if was_cr => Step::Echo(String::new()),
            b'\r' | b'\n' => {
                self.last_cr = b == b'\r';
                let line = core::mem::take(&mut self.line);
                self.draft.clear();
                let t = line.trim();
                if !t.is_empty() && self.history.last().is_none_or(|l| l != t) {
                    if self.history.len() == HISTORY_MAX {
                        self.history.remove(0);
                    }
                    self.history.push(String::from(t));
                }
                self.at = self.history.len();
                Step::Line(line)
            }
            0x7f | 0x08 => {
                if self.line.pop().is_some() {
                    Step::Echo(String::from("\x08 \x08"))
                } else {
                    Step::Echo(String::new())
                }
            }
            0x03 => {
                self.line.clear();
                self.at = self.history.len();
                Step::Cancel
            }
            0x04 if self.line.is_empty() => Step::Eof,
            0x20..=0x7e if self.line.len() < LINE_MAX => {
                self.line.push(b as char);
                Step::Echo(String::from(b as char))
            }
            _ => Step::Echo(String::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(e: &mut Editor, s: &[u8]) -> Vec<Step> {
        s.iter().map(|b| e.feed(*b)).collect()
    }

    fn line_of(steps: &[Step]) -> Option<&str> {
        steps.iter().find_map(|s| match s {
            Step::Line(l) => Some(l.as_str()),
            _ => None,
        })
    }

    #[test]
    fn typing_and_backspace_edit_the_line() {
        let mut e = Editor::new();
        let s = typed(&mut e, b"helx\x7flo\r");
        assert_eq!(line_of(&s), Some("hello"));
        assert_eq!(s[4], Step::Echo("\x08 \x08".into()));
        assert_eq!(s[0], Step::Echo("h".into()));
        // Backspace on an empty line echoes nothing.
        assert_eq!(e.feed(0x08), Step::Echo(String::new()));
    }

    #[test]
    fn cr_lf_is_one_enter_and_blank_lines_stay_out_of_the_history() {
        let mut e = Editor::new();
        let s = typed(&mut e, b"ps\r\n\r\n");
        let lines: Vec<&Step> = s.iter().filter(|s| matches!(s, Step::Line(_))).collect();
        assert_eq!(lines.len(), 2, "{s:?}");
        assert_eq!(e.history(), ["ps"]);
    }

    #[test]
    fn arrows_walk_the_history_and_restore_the_draft() {
        let mut e = Editor::new();
        typed(&mut e, b"ffa\rdevices\rini");
        assert_eq!(e.feed(0x1b), Step::Echo(String::new()));
        e.feed(b'[');
        // Up: "ini" (3 chars) erased, "devices" drawn.
        assert_eq!(
            e.feed(b'A'),
            Step::Echo("\x08 \x08\x08 \x08\x08 \x08devices".into())
        );
        typed(&mut e, b"\x1b[A");
        assert_eq!(e.line(), "ffa");
        typed(&mut e, b"\x1b[A");
        assert_eq!(e.line(), "ffa", "the oldest line stays");
        typed(&mut e, b"\x1bOB\x1b[B");
        assert_eq!(e.line(), "ini", "down past the newest gives the draft back");
        typed(&mut e, b"\x1b[B");
        assert_eq!(e.line(), "ini");
        let s = typed(&mut e, b"tcalls\r");
        assert_eq!(line_of(&s), Some("initcalls"));
        assert_eq!(e.history(), ["ffa", "devices", "initcalls"]);
        // A repeated command is kept once.
        typed(&mut e, b"initcalls\r");
        assert_eq!(e.history().len(), 3);
    }

    #[test]
    fn ctrl_c_drops_and_ctrl_d_ends_only_an_empty_line() {
        let mut e = Editor::new();
        typed(&mut e, b"poweroff");
        assert_eq!(e.feed(0x04), Step::Echo(String::new()));
        assert_eq!(e.feed(0x03), Step::Cancel);
        assert_eq!(e.line(), "");
        assert_eq!(e.feed(0x04), Step::Eof);
    }

    #[test]
    fn junk_is_ignored_and_lines_are_bounded() {
        let mut e = Editor::new();
        typed(&mut e, &[0x00, 0x07, 0xff, 0x80, 0x1b, b'[', b'C', b'a']);
        assert_eq!(e.line(), "a");
        let long = [b'x'; LINE_MAX + 40];
        typed(&mut e, &long);
        assert_eq!(e.line().len(), LINE_MAX);
        for i in 0..HISTORY_MAX + 5 {
            typed(&mut e, alloc::format!("c{i}\r").as_bytes());
        }
        assert_eq!(e.history().len(), HISTORY_MAX);
        assert_eq!(
            e.history()[HISTORY_MAX - 1],
            alloc::format!("c{}", HISTORY_MAX + 4)
        );
    }
}
