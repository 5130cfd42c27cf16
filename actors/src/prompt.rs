//! What a model is given for one reply: the store's instructions, the
//! products retrieved for this turn, bounded history and the shopper's
//! message. Rendering to a provider's message format happens in the provider.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::catalog::Product;
use crate::knowledge::Passage;
use crate::language::Language;

/// Who said a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Shopper,
    Assistant,
    /// A person from the store who took the conversation over.
    Agent,
}

/// One earlier message of the conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    pub role: Role,
    pub text: String,
}

/// Everything a model needs for one reply.
#[derive(Clone, Debug)]
pub struct Prompt {
    pub store_name: String,
    pub store_url: String,
    pub instructions: String,
    pub language: Language,
    /// Retrieved for this turn, best first. The only products the model may
    /// recommend, and the only ones that can become cards.
    pub products: Vec<Arc<Product>>,
    /// Passages of the shop's own pages retrieved for this turn (a question
    /// about the shop), best first; cited as `[S1]`, ….
    pub passages: Vec<Arc<Passage>>,
    /// Earlier turns, oldest first, already bounded.
    pub history: Vec<Turn>,
    /// The shopper's newest message.
    pub message: String,
}

/// Rough token estimate for history bounding: about four characters a token
/// for the supported languages, plus the per-message overhead of chat formats.
pub fn estimated_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4) + 4
}

/// The newest turns that fit in `token_budget`, oldest first.
pub fn bounded_history(turns: &[Turn], token_budget: usize) -> Vec<Turn> {
    let mut used = 0;
    let mut kept: Vec<Turn> = Vec::new();
    for turn in turns.iter().rev() {
        used += estimated_tokens(&turn.text);
        if used > token_budget {
            break;
        }
        kept.push(turn.clone());
    }
    kept.reverse();
    kept
}

impl Prompt {
    /// The system message: role, rules, language, owner instructions and the
    /// retrieved products.
    pub fn system_text(&self) -> String {
        let mut s = String::with_capacity(1024 + self.products.len() * 200);
        let _ = writeln!(
            s,
            "You are the shopping assistant of {} ({}). Help shoppers find products of this store.",
            self.store_name, self.store_url
        );
        let _ = writeln!(
            s,
            "Always answer in {}. Be brief and friendly. Recommend only products from the list \
             below. Right after the name of each product you recommend, write its reference \
             from the list, for example: Nordwind Rain Jacket [P1]. The shopper sees a card for \
             each product you cite and never sees the references. Never invent products, \
             prices or links. If nothing fits, say so and ask a clarifying question.",
            self.language.english_name()
        );
        let _ = writeln!(
            s,
            "If the shopper asks for a person, tell them briefly that someone from the store \
             has been asked to join the chat and will answer here. Messages marked \
             [a person from the store wrote] were written by the store's staff."
        );
        if !self.instructions.trim().is_empty() {
            let _ = writeln!(
                s,
                "\nInstructions from the store owner:\n{}",
                self.instructions.trim()
            );
        }
        if !self.passages.is_empty() {
            let _ = writeln!(
                s,
                "\nFrom the store's own pages (answer questions about the store from these \
                 only, and write the reference right after what you took from one, for \
                 example: Returns are free within 30 days [S1]):"
            );
            for (n, p) in self.passages.iter().enumerate() {
                let place = if p.heading.is_empty() {
                    p.title.clone()
                } else {
                    format!("{} > {}", p.title, p.heading)
                };
                let _ = writeln!(s, "- [S{}] {}", n + 1, place);
                for line in p.text.lines() {
                    let _ = writeln!(s, "  {line}");
                }
            }
        }
        if self.products.is_empty() {
            let _ = writeln!(s, "\nNo products matched this question.");
        } else {
            let _ = writeln!(s, "\nProducts matching this question:");
            for (n, p) in self.products.iter().enumerate() {
                let stock = if p.in_stock {
                    "in stock"
                } else {
                    "out of stock"
                };
                let _ = writeln!(
                    s,
                    "- [P{}] {} | {} | {} | {} | {}",
                    n + 1,
                    p.name,
                    p.brand,
                    p.category,
                    p.price,
                    stock
                );
                let description: String = p.description.chars().take(240).collect();
                if !description.is_empty() {
                    let _ = writeln!(s, "  {description}");
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(role: Role, text: &str) -> Turn {
        Turn {
            role,
            text: text.into(),
        }
    }

    #[test]
    fn history_keeps_the_newest_turns_within_budget() {
        let turns = vec![
            turn(Role::Shopper, &"old ".repeat(100)),
            turn(Role::Assistant, "middle answer"),
            turn(Role::Shopper, "newest question"),
        ];
        let kept = bounded_history(&turns, 30);
        assert_eq!(kept, turns[1..].to_vec());
        assert!(bounded_history(&turns, 1).is_empty());
    }
}
