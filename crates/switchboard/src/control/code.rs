//! Share codes: 10 symbols of Crockford's base32 (50 bits), shown as `XXXXX-XXXXX`.
//!
//! Typed input is forgiving, as Crockford's decoding rules say: any case, hyphens and spaces
//! anywhere, `I`/`L` read as `1` and `O` as `0`. `U` (left out of the alphabet) and anything else
//! is refused. Codes are drawn from the operating system's random source; the store keeps only
//! [`ShareCode::hash`], SHA-256 of the normalized code (a 50-bit random code needs no slow hash:
//! guessing one is bounded by the per-address budget, not by hashing cost).

use rand::Rng;
use sha2::{Digest, Sha256};

/// Crockford's base32 alphabet.
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Symbols in a code.
pub const LEN: usize = 10;

/// A share code, normalized: [`LEN`] symbols of [`ALPHABET`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ShareCode([u8; LEN]);

impl std::fmt::Debug for ShareCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A code is a credential: never in logs.
        f.write_str("ShareCode(..)")
    }
}

impl ShareCode {
    /// A new random code.
    pub fn random() -> ShareCode {
        let mut rng = rand::rng();
        ShareCode(std::array::from_fn(|_| ALPHABET[rng.random_range(0..32)]))
    }

    /// The code typed as `input`, normalized; `None` if it is not one.
    pub fn parse(input: &str) -> Option<ShareCode> {
        let mut code = [0; LEN];
        let mut n = 0;
        for c in input.chars() {
            let symbol = match c.to_ascii_uppercase() {
                '-' | ' ' | '\t' => continue,
                'I' | 'L' => b'1',
                'O' => b'0',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c as u8,
                _ => return None,
            };
            *code.get_mut(n)? = symbol;
            n += 1;
        }
        (n == LEN).then_some(ShareCode(code))
    }

    /// The code as shown: `XXXXX-XXXXX`.
    pub fn display(&self) -> String {
        let text = self.compact();
        format!("{}-{}", &text[..LEN / 2], &text[LEN / 2..])
    }

    /// The code without its hyphen, for links.
    pub fn compact(&self) -> &str {
        // Only ALPHABET's ASCII symbols are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// What the store keeps.
    pub fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.0).to_vec()
    }
}

/// A new random id: `prefix`, `_`, and 16 lower-case symbols of [`ALPHABET`] (80 bits), for
/// accounts, invites and login families.
pub fn random_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let symbols: String = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..32)].to_ascii_lowercase() as char)
        .collect();
    format!("{prefix}_{symbols}")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn look_alikes_case_and_separators_are_forgiven() {
        let code = ShareCode::parse("ABCDE-FGH10").unwrap();
        for typed in [
            "abcde-fgh10",
            "ABCDEFGHIO",
            "abcde fghlo",
            " a-b-c-d-e-f-g-h-1-0 ",
        ] {
            assert_eq!(ShareCode::parse(typed), Some(code.clone()), "{typed}");
        }
        assert_eq!(code.display(), "ABCDE-FGH10");
        assert_eq!(code.compact(), "ABCDEFGH10");
        for bad in [
            "ABCDE-FGHU0",
            "ABCDE-FGH1",
            "ABCDE-FGH100",
            "ABCDE_FGH10",
            "ÀBCDE-FGH10",
            "",
        ] {
            assert_eq!(ShareCode::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn random_codes_differ() {
        assert_ne!(ShareCode::random(), ShareCode::random());
        assert_eq!(format!("{:?}", ShareCode::random()), "ShareCode(..)");
    }

    /// A symbol and every way of typing it.
    fn typed_symbol() -> impl Strategy<Value = (u8, String)> {
        (0..32usize, any::<bool>(), 0..3usize).prop_map(|(i, lower, alias)| {
            let symbol = ALPHABET[i];
            let mut typed = match (symbol, alias) {
                (b'1', 1) => 'I',
                (b'1', 2) => 'L',
                (b'0', 1 | 2) => 'O',
                _ => symbol as char,
            };
            if lower {
                typed = typed.to_ascii_lowercase();
            }
            (symbol, typed.to_string())
        })
    }

    proptest! {
        #[test]
        fn random_codes_are_canonical_and_round_trip(_ in 0..200u32) {
            let code = ShareCode::random();
            prop_assert!(code.compact().bytes().all(|b| ALPHABET.contains(&b)));
            prop_assert_eq!(code.compact().len(), LEN);
            prop_assert_eq!(ShareCode::parse(&code.display()), Some(code.clone()));
            prop_assert_eq!(ShareCode::parse(code.compact()), Some(code));
        }

        #[test]
        fn any_typing_of_a_code_normalizes_to_it(
            symbols in proptest::collection::vec((typed_symbol(), proptest::option::of(prop_oneof![Just("-"), Just(" ")])), LEN)
        ) {
            let canonical: Vec<u8> = symbols.iter().map(|((s, _), _)| *s).collect();
            let typed: String = symbols
                .iter()
                .map(|((_, t), sep)| format!("{t}{}", sep.unwrap_or_default()))
                .collect();
            let code = ShareCode::parse(&typed).expect("a valid typing");
            prop_assert_eq!(code.compact().as_bytes(), &canonical[..]);
            // Normalizing is idempotent, and the hash is of the normalized code only.
            prop_assert_eq!(ShareCode::parse(&code.display()).map(|c| c.hash()), Some(code.hash()));
        }

        #[test]
        fn other_text_is_refused_or_normalized_never_panics(input in "\\PC{0,24}") {
            if let Some(code) = ShareCode::parse(&input) {
                prop_assert!(code.compact().bytes().all(|b| ALPHABET.contains(&b)));
                prop_assert!(!input.to_ascii_uppercase().contains('U'));
            }
        }
    }
}
