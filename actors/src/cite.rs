//! Product and source references in a streamed reply. The model sees each
//! product retrieved for the turn with a short reference (`[P1]`, `[P2]`,
//! …) and each passage of the shop's own pages with one (`[S1]`, …), and
//! cites by reference; [`Citations`] takes the references out of the text
//! as it streams, so the shopper never sees one, not even half of one, and
//! remembers which products and sources were cited.
//!
//! Only a `[` can start a reference, so text without one passes through at
//! once. From a `[` on, characters are held until they make a reference
//! (dropped, with the space before it) or cannot (shown as they were). A
//! space is held until the next character shows whether a reference
//! follows it; a space alone is nothing to see, so holding it delays
//! nothing visible. Model tokenizers put a word's space before it
//! (`" jacket"`), so a space is rarely held past the chunk it came in.

/// The longest run held while it may still become a reference
/// (`[P1, P2, P3, P4]` fits); anything longer is shown as text.
const MAX_HELD: usize = 40;
/// The most references one reply records.
const MAX_CITED: usize = 32;

/// A reference's text: `[P3]`, `[p3]`, `[ P3 ]`, `[P1, P4]`, `[P1,P4]`,
/// `[S2]`, `[P1, S2]`.
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    /// Could still become a reference.
    Prefix,
    /// A whole reference, with the numbers it names (1-based), each with
    /// whether it names a source (`S`) rather than a product (`P`).
    Complete(Vec<(bool, usize)>),
    /// Cannot become one.
    Not,
}

fn shape(held: &str) -> Shape {
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        /// After `[` or `,`: spaces, then `P` or `S`.
        BeforeP,
        /// After `P` or `S`: the first digit.
        AfterP,
        /// In the digits.
        Digits(usize),
        /// After the digits: spaces, `,` or `]`.
        AfterDigits,
    }
    let mut chars = held.chars();
    if chars.next() != Some('[') {
        return Shape::Not;
    }
    let mut at = At::BeforeP;
    let mut numbers = Vec::new();
    let mut number = 0_usize;
    let mut source = false;
    for c in chars {
        at = match (at, c) {
            (At::BeforeP, ' ') => At::BeforeP,
            (At::BeforeP, 'P' | 'p' | 'S' | 's') => {
                source = matches!(c, 'S' | 's');
                At::AfterP
            }
            (At::AfterP, '0'..='9') => {
                number = c as usize - '0' as usize;
                At::Digits(1)
            }
            (At::Digits(n), '0'..='9') if n < 3 => {
                number = number * 10 + (c as usize - '0' as usize);
                At::Digits(n + 1)
            }
            (At::Digits(_) | At::AfterDigits, ' ') => {
                if let At::Digits(_) = at {
                    numbers.push((source, number));
                }
                At::AfterDigits
            }
            (At::Digits(_) | At::AfterDigits, ',') => {
                if let At::Digits(_) = at {
                    numbers.push((source, number));
                }
                At::BeforeP
            }
            (At::Digits(_) | At::AfterDigits, ']') => {
                if let At::Digits(_) = at {
                    numbers.push((source, number));
                }
                return Shape::Complete(numbers);
            }
            _ => return Shape::Not,
        };
    }
    Shape::Prefix
}

/// Takes references out of a reply as it streams.
#[derive(Debug, Default)]
pub struct Citations {
    /// Spaces after the last text shown, not shown yet.
    spaces: String,
    /// From a `[` on: what may become a reference.
    held: String,
    cited: Vec<usize>,
    /// The sources (passages of the shop's pages) cited, the same way.
    sources: Vec<usize>,
    /// Each product citation as it came: the reference number and the byte offset
    /// in the shown text where it stood.
    places: Vec<(usize, usize)>,
    /// Bytes shown before the current push.
    shown: usize,
}

impl Citations {
    pub fn new() -> Self {
        Self::default()
    }

    /// The part of `text` (with what was held before) that can be shown now.
    /// A chunk with no `[` and nothing held before it (almost every token)
    /// is handed back as it came, without being copied.
    pub fn push(&mut self, text: String) -> String {
        if self.held.is_empty()
            && self.spaces.is_empty()
            && !text.contains('[')
            && !text.ends_with(' ')
        {
            self.shown += text.len();
            return text;
        }
        let mut out = String::with_capacity(text.len() + self.spaces.len());
        for c in text.chars() {
            self.feed(c, &mut out);
        }
        self.shown += out.len();
        out
    }

    /// What is still held, at the end of the reply: shown as it was.
    pub fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.spaces);
        out.push_str(&std::mem::take(&mut self.held));
        self.shown += out.len();
        out
    }

    /// The products cited so far: 1-based reference numbers, first citation
    /// first, each once.
    pub fn cited(&self) -> &[usize] {
        &self.cited
    }

    /// The sources cited so far: 1-based `[S…]` numbers, first first, each
    /// once.
    pub fn sources(&self) -> &[usize] {
        &self.sources
    }

    /// Every product citation in order: its reference number and where it stood in
    /// the shown text (a byte offset).
    pub fn places(&self) -> &[(usize, usize)] {
        &self.places
    }

    /// Products the model showed through its `show_products` tool, cited
    /// where the shown text stands now.
    pub fn show(&mut self, references: &[usize]) {
        let at = self.shown;
        for &n in references {
            if self.places.len() < MAX_CITED * 4 {
                self.places.push((n, at));
            }
            if !self.cited.contains(&n) && self.cited.len() < MAX_CITED {
                self.cited.push(n);
            }
        }
    }

    fn feed(&mut self, c: char, out: &mut String) {
        if !self.held.is_empty() {
            self.held.push(c);
            match shape(&self.held) {
                Shape::Prefix if self.held.len() <= MAX_HELD => {}
                Shape::Complete(numbers) => {
                    self.held.clear();
                    // The space before a reference goes with it.
                    self.spaces.clear();
                    let at = self.shown + out.len();
                    for (source, n) in numbers {
                        if source {
                            if !self.sources.contains(&n) && self.sources.len() < MAX_CITED {
                                self.sources.push(n);
                            }
                            continue;
                        }
                        if self.places.len() < MAX_CITED * 4 {
                            self.places.push((n, at));
                        }
                        if !self.cited.contains(&n) && self.cited.len() < MAX_CITED {
                            self.cited.push(n);
                        }
                    }
                }
                Shape::Prefix | Shape::Not => {
                    // Show the `[` and read the rest again: it may hold the
                    // start of a reference itself (`[[P1]`).
                    let held = std::mem::take(&mut self.held);
                    out.push_str(&std::mem::take(&mut self.spaces));
                    out.push('[');
                    for c in held.chars().skip(1) {
                        self.feed(c, out);
                    }
                }
            }
            return;
        }
        match c {
            '[' => self.held.push(c),
            ' ' => self.spaces.push(c),
            _ => {
                out.push_str(&std::mem::take(&mut self.spaces));
                out.push(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole text through the parser in the given pieces.
    fn through(pieces: &[&str]) -> (String, Vec<usize>) {
        let mut citations = Citations::new();
        let mut shown: String = pieces
            .iter()
            .map(|p| citations.push((*p).to_owned()))
            .collect();
        shown.push_str(&citations.finish());
        (shown, citations.cited().to_vec())
    }

    #[test]
    fn references_are_taken_out_with_the_space_before_them() {
        assert_eq!(
            through(&["Try the Nordwind Rain Jacket [P2]. Or the tent [P1]!"]),
            (
                "Try the Nordwind Rain Jacket. Or the tent!".into(),
                vec![2, 1]
            )
        );
        assert_eq!(
            through(&["Both [P1, P3] and [p4,P1] and [ P12 ] work"]),
            ("Both and and work".into(), vec![1, 3, 4, 12])
        );
    }

    #[test]
    fn source_references_are_taken_out_and_kept_apart_from_products() {
        let mut citations = Citations::new();
        let mut shown = citations.push("Returns are free within 30 days [S".into());
        shown.push_str(&citations.push("2]. The jacket [P1, s1] too.".into()));
        shown.push_str(&citations.finish());
        assert_eq!(shown, "Returns are free within 30 days. The jacket too.");
        assert_eq!(citations.cited(), [1]);
        assert_eq!(citations.sources(), [2, 1]);
        // Other letters stay text.
        assert_eq!(
            through(&["Size [M1] fits"]),
            ("Size [M1] fits".into(), vec![])
        );
    }

    #[test]
    fn a_reference_split_across_chunks_never_shows_half() {
        let mut citations = Citations::new();
        assert_eq!(citations.push("The jacket [".into()), "The jacket");
        assert_eq!(citations.push("P".into()), "");
        assert_eq!(citations.push("1".into()), "");
        assert_eq!(citations.push("] is ".into()), " is");
        assert_eq!(citations.push("light.".into()), " light.");
        assert_eq!(citations.finish(), "");
        assert_eq!(citations.cited(), [1]);
    }

    #[test]
    fn brackets_that_are_not_references_are_shown_as_written() {
        for text in [
            "Sizes [S, M, L] available",
            "a [link](https://x.example)",
            "[P] and [P1234] and [Px] and [",
            "[[P1] nested",
            "odd [P1 stays",
        ] {
            let (shown, _) = through(&[text]);
            let expected = text.replace(" [P1]", "").replace("[P1]", "");
            assert_eq!(shown, expected, "{text:?}");
        }
        assert_eq!(through(&["[[P1] nested"]).1, vec![1]);
        assert_eq!(through(&["odd [P1 stays"]).1, Vec::<usize>::new());
    }

    #[test]
    fn each_citation_knows_where_it_stood_in_the_shown_text() {
        let mut citations = Citations::new();
        let mut shown = citations.push("The kettle [P".into());
        shown.push_str(&citations.push("2] costs 49 euro, the mill [P1].".into()));
        shown.push_str(&citations.finish());
        assert_eq!(shown, "The kettle costs 49 euro, the mill.");
        assert_eq!(citations.places(), [(2, 10), (1, 34)]);
        assert_eq!(&shown[..10], "The kettle");
    }

    #[test]
    fn text_without_a_bracket_passes_at_once() {
        let mut citations = Citations::new();
        assert_eq!(citations.push("Hello".into()), "Hello");
        assert_eq!(citations.push(" there".into()), " there");
        assert_eq!(citations.push(", friend".into()), ", friend");
    }

    #[test]
    fn a_long_run_after_a_bracket_is_shown_once_it_cannot_be_a_reference() {
        let text = format!("[P1,{}", "P2,".repeat(20));
        let (shown, cited) = through(&[&text]);
        assert_eq!(shown, text);
        assert!(cited.is_empty());
    }

    #[test]
    fn every_split_of_a_reply_gives_the_same_text_and_citations() {
        let reply = "Look at [P3]: the Kettle [P1, P2] costs 49.95 [EUR]. [[P4] [P] end [P5]";
        let whole = through(&[reply]);
        assert_eq!(whole.1, vec![3, 1, 2, 4, 5]);
        let chars: Vec<char> = reply.chars().collect();
        for a in 0..chars.len() {
            for b in a..chars.len() {
                let first: String = chars[..a].iter().collect();
                let second: String = chars[a..b].iter().collect();
                let third: String = chars[b..].iter().collect();
                assert_eq!(
                    through(&[&first, &second, &third]),
                    whole,
                    "split at {a}, {b}"
                );
            }
        }
    }
}
