//! Tests of the JSON scanners: each checked against serde_json (or a bytewise scan) on generated
//! text, so the fast paths accept and refuse exactly what serde does.

use proptest::prelude::*;
use serde_json::value::RawValue;

use super::*;

/// serde_json's reading, the reference: where the first value of `text` ends, if it is valid.
fn serde_end(text: &str) -> Option<usize> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    values.next()?.ok()?;
    Some(values.byte_offset())
}

#[test]
fn finds_the_end_of_common_payloads() {
    for text in [
        r#"{"text":"hi"}"#,
        r#"{ "sdp" : "v=0\r\n\u00e9\/" , "x" : [1, -2.5e+3, true, null, {}] }tail"#,
        "[]",
        "[ ]",
        r#"[{"a":[[]]},"\ud800"]"#,
    ] {
        assert_eq!(container_end(text.as_bytes(), 0), serde_end(text), "{text}");
        assert!(serde_end(text).is_some(), "{text}");
    }
}

/// The reference for [`string_stop`]: one byte at a time.
fn bytewise_stop(b: &[u8], from: usize) -> Option<usize> {
    let stop = |c: &u8| matches!(c, b'"' | b'\\' | 0..0x20);
    Some(from + b.get(from..)?.iter().position(stop)?)
}

#[test]
fn stops_are_found_at_every_place_of_a_block_and_of_the_tail() {
    for len in 0..40 {
        for at in 0..len {
            for c in [b'"', b'\\', 0, 0x1f] {
                let mut b = vec![b'x'; len];
                b[at] = c;
                for from in 0..=len + 1 {
                    let expected = bytewise_stop(&b, from);
                    assert_eq!(string_stop(&b, from), expected, "{b:?} from {from}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// The word-at-a-time scan finds the first stop as a byte-at-a-time scan does, wherever the
    /// scan starts and however long the buffer is, with stops before the start too.
    #[test]
    fn word_scan_agrees_with_a_bytewise_scan(
        b in prop_oneof![Just(8), Just(100)].prop_flat_map(|plain| prop::collection::vec(
            prop_oneof![
                plain => Just(b'a'),
                1 => Just(b'"'),
                1 => Just(b'\\'),
                1 => any::<u8>(),
            ],
            0..300,
        )),
        from in any::<prop::sample::Index>(),
    ) {
        let from = from.index(b.len() + 2);
        prop_assert_eq!(string_stop(&b, from), bytewise_stop(&b, from));
    }
}

proptest! {
    /// Digits are counted as one at a time, whatever byte ends them and wherever it is.
    #[test]
    fn digit_runs_are_counted_as_bytewise(
        digits in "[0-9]{0,20}",
        end in any::<u8>(),
        tail in prop::collection::vec(any::<u8>(), 0..10),
    ) {
        let b = [digits.as_bytes(), &[end], &tail].concat();
        let expected = b.iter().take_while(|c| c.is_ascii_digit()).count();
        prop_assert_eq!(digits_len(&b), expected);
        prop_assert_eq!(digits_len(digits.as_bytes()), digits.len());
    }

    /// A plain integer is valued as serde values it, and ends where [`scalar_len`] ends it.
    #[test]
    fn plain_integers_are_read_as_serde_reads_them(
        number in "-?[0-9]{1,18}(\\.[0-9])?([eE][0-9])?",
        tail in "[,}\\]x0-9 .eE]{0,20}",
    ) {
        let text = format!("{number}{tail}");
        let b = text.as_bytes();
        if let Some((value, len)) = plain_integer(b) {
            prop_assert_eq!(Some(len), scalar_len(b));
            prop_assert_eq!(serde_json::from_str::<u64>(&text[..len]).ok(), Some(value));
        } else if let Ok(n) = number.parse::<u64>() {
            // Only a number that is not plain, or too near the end, is left to the slow path.
            let plain = number.len() <= 15 && !number.starts_with('0');
            let room = if number.len() < 8 { 8 } else { 16 };
            let followed = !tail.starts_with(|c: char| c.is_ascii_digit() || ".eE".contains(c));
            prop_assert!(!(plain && followed && b.len() >= room), "{} {}", text, n);
        }
    }

    /// Up to nineteen digits, leading zeros and all, are valued as `str::parse` values them,
    /// and anything else among them is refused.
    #[test]
    fn digits_are_valued_as_parse_values_them(
        digits in "[0-9]{1,19}",
        other in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let mut digits = digits.into_bytes();
        if let Some((at, c)) = other {
            let at = at.index(digits.len());
            digits[at] = c;
        }
        // `str::parse` also takes a leading `+`, which is not a digit.
        let expected = match digits.iter().all(u8::is_ascii_digit) {
            true => std::str::from_utf8(&digits).ok().and_then(|s| s.parse().ok()),
            false => None,
        };
        prop_assert_eq!(digits_value(&digits), expected);
    }
}

#[test]
fn every_ascii_character_in_a_string_is_read_as_serde_reads_it() {
    for c in (0..0x80u8).map(char::from) {
        // At every place in a block, and in the last few bytes.
        for pad in 0..40 {
            let x = "x".repeat(pad);
            for text in [format!("[\"{x}{c}\"]"), format!("[\"{x}\\{c}\"]")] {
                assert_eq!(
                    container_end(text.as_bytes(), 0),
                    serde_end(&text),
                    "{text:?}"
                );
            }
        }
    }
}

#[test]
fn deep_nesting_is_left_to_serde() {
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let deepest = nested(MAX_DEPTH as usize + 1);
    assert_eq!(container_end(deepest.as_bytes(), 0), Some(deepest.len()));
    let deeper = nested(MAX_DEPTH as usize + 2);
    assert_eq!(container_end(deeper.as_bytes(), 0), None);
    assert_eq!(serde_end(&deeper), Some(deeper.len()));
}

/// Plain strings, strings with every valid escape, and strings with one doubtful piece.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\"[a-z0-9 é]{0,12}\"",
        "\"([a-z\\x7f]|\\\\[\"\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4})*\"",
        "\"[a-z]{0,3}(\\\\[uvx0 é]|\\\\u[0-9a-fA-FgG]{0,4}|[\\x00-\\x1f])[a-z]{0,3}\"",
    ]
}

fn whitespace() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(""), Just(" "), Just("\n\t"), Just("\r ")]
}

/// JSON-ish text from JSON's grammar, with near misses among its pieces.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        string(),
        "-?(0|[1-9][0-9]{0,5}|0[0-9])(\\.[0-9]{0,3})?([eE][+-]?[0-9]{0,3})?",
        prop_oneof![
            Just("true"),
            Just("false"),
            Just("null"),
            Just("nul"),
            Just("tru"),
            Just("-"),
        ]
        .prop_map(str::to_owned),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        let item = move || {
            (whitespace(), inner.clone(), whitespace()).prop_map(|(a, v, b)| format!("{a}{v}{b}"))
        };
        prop_oneof![
            prop::collection::vec(item(), 0..6).prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((string(), whitespace(), item()), 0..6).prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, ws, v)| format!("{k}{ws}:{v}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// An edit of one character: replaced, inserted before, or removed; or the text cut there.
#[derive(Debug, Clone)]
enum Edit {
    Replace(prop::sample::Index, char),
    Insert(prop::sample::Index, char),
    Remove(prop::sample::Index),
    Cut(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<prop::sample::Index>;
    let c = || {
        prop::sample::select(
            "[]{},:\"\\/0123456789eE+-. \n\ttfnulrubx\u{1}\u{1f}\u{7f}é"
                .chars()
                .collect::<Vec<_>>(),
        )
    };
    prop_oneof![
        (at(), c()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (at(), c()).prop_map(|(i, c)| Edit::Insert(i, c)),
        at().prop_map(Edit::Remove),
        at().prop_map(Edit::Cut),
    ]
}

/// `text` with `edits` made to it, one after the other.
fn edited(text: &str, edits: Vec<Edit>) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let len = chars.len() + 1;
        match edit {
            Edit::Replace(i, c) if !chars.is_empty() => chars[i.index(len - 1)] = c,
            Edit::Insert(i, c) => chars.insert(i.index(len), c),
            Edit::Remove(i) if !chars.is_empty() => {
                chars.remove(i.index(len - 1));
            }
            Edit::Cut(i) => chars.truncate(i.index(len)),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Valid, broken and edited JSON: accepted and refused as serde_json does, ending where it
    /// ends (whatever follows the value).
    #[test]
    fn container_end_agrees_with_serde(
        root in prop_oneof![value().prop_map(|v| format!("[{v}]")), value()],
        edits in prop::collection::vec(edit(), 0..3),
        tail in "[ ,\\]}x1\"]{0,2}",
    ) {
        let text = edited(&format!("{root}{tail}"), edits);
        let expected = if text.starts_with(['{', '[']) { serde_end(&text) } else { None };
        prop_assert_eq!(container_end(text.as_bytes(), 0), expected, "{:?}", text);
    }

    /// Arrays of objects (and of other values), whitespace around every token, some edited:
    /// split as serde splits them, or left to serde only when an item is not an object.
    #[test]
    fn object_items_are_split_as_serde_splits_them(
        items in prop::collection::vec(
            prop_oneof![4 => value().prop_filter("an object", |v| v.starts_with('{')), 1 => value()],
            0..4,
        ),
        spaces in prop::collection::vec(whitespace(), 8),
        edits in prop::collection::vec(edit(), 0..2),
    ) {
        let sp = |i: usize| spaces[i % spaces.len()];
        let joined = items.iter().enumerate().map(|(i, v)| format!("{}{v}{}", sp(i), sp(i + 1)))
            .collect::<Vec<_>>().join(",");
        let text = edited(&format!("{}[{joined}]{}", sp(5), sp(6)), edits);
        let by_serde = serde_json::from_str::<Vec<&RawValue>>(&text)
            .ok()
            .map(|v| v.into_iter().map(RawValue::get).collect::<Vec<_>>());
        if let Some(fast) = object_items(&text) {
            prop_assert_eq!(Some(fast), by_serde, "{:?}", text);
        } else if let Some(items) = by_serde {
            prop_assert!(items.iter().any(|v| !v.starts_with('{')), "{:?}", text);
        }
    }
}
