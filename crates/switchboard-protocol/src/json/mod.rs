//! Scanning JSON text without serde's generic machinery, for the fields and payload of every
//! relayed frame. Each function accepts exactly what serde_json accepts where the frame splitter
//! uses it; what they refuse goes to serde, so refusals are still worded by serde.
//!
//! The tests, which check every scanner against serde_json on generated text, are in `tests.rs`.

/// Nesting kept track of by [`container_end`]: one bit per open container. serde_json skips a
/// value of any depth, so deeper payloads are left to it rather than refused.
const MAX_DEPTH: u32 = u128::BITS;

/// `0x01` in every byte of a word: multiplied by a byte, that byte in every lane (the word-at-a-time
/// scans below).
const ONES: u64 = u64::MAX / 255;

/// The index of the first `"`, `\` or control character at or after `from`, where a string's
/// plain run stops. Eight bytes at a time ([`first_stop`]); short strings are the most common
/// (keys, ids, types), so the bytes after the last whole word are not copied out: they are looked
/// at in the buffer's last eight bytes.
///
/// Sixteen bytes at a time with SSE2 took 18% fewer instructions to parse a relayed message but
/// made no difference to relays per server CPU-second in paired runs, so the `unsafe` it needed
/// went (docs/benchmarks.md, "The string scan without `unsafe`"); the `memchr` crate measured
/// slower than this on signaling payloads, whose strings are short or full of escapes.
fn string_stop(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(word) = b.get(i..i + 8) {
        if let Some(k) = first_stop(word.try_into().expect("eight bytes"), 0) {
            return Some(i + k);
        }
        i += 8;
    }
    if i >= b.len() {
        return None;
    }
    match b.len().checked_sub(8) {
        Some(start) => {
            let word = b[start..].try_into().expect("eight bytes");
            first_stop(word, i - start).map(|k| start + k)
        }
        // A buffer shorter than a word, padded with bytes that are no stop.
        None => {
            let mut word = [b' '; 8];
            word[..b.len()].copy_from_slice(b);
            first_stop(&word, i)
        }
    }
}

/// The index of the first `"`, `\` or control character in `word` at or after `skip`.
fn first_stop(word: &[u8; 8], skip: usize) -> Option<usize> {
    // Mycroft's test for a zero byte, on `x` xored with `"` and with `\`, and for a byte below
    // 0x20 on `x` itself: a byte is flagged in its high bit, and the lowest flagged byte is always
    // a true match, since a borrow only starts at one. The xored words' high bits are those of
    // `x`, so one `!x` serves all three. The bytes before `skip` are made spaces first, as a stop
    // there could flag a byte after it falsely.
    let keep = u64::MAX << (8 * skip);
    let spaces = ONES * u64::from(b' ');
    let x = (u64::from_le_bytes(*word) & keep) | (spaces & !keep);
    let below = (x ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES)
        | (x ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES)
        | x.wrapping_sub(ONES * 0x20);
    let found = below & !x & (ONES * 0x80);
    (found != 0).then(|| found.trailing_zeros() as usize / 8)
}

/// The end (after the closing quote) of a string starting at `start` that has no escapes and no
/// control characters.
pub(crate) fn plain_string_end(b: &[u8], start: usize) -> Option<usize> {
    if b.get(start) != Some(&b'"') {
        return None;
    }
    let close = string_stop(b, start + 1)?;
    (b[close] == b'"').then_some(close + 1)
}

/// The end (after the closing quote) of a string whose contents start at `i`. Like serde_json
/// when it skips a string, any `\u` with four hex digits passes, paired surrogate or not.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i = string_stop(b, i)?;
        match b[i] {
            b'"' => return Some(i + 1),
            b'\\' => {
                i += match *b.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                    b'u' if b.get(i + 2..i + 6)?.iter().all(u8::is_ascii_hexdigit) => 6,
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
}

/// The length of a JSON number, `true`, `false` or `null` at the start of `b`. A leading zero is
/// taken alone (`01` is `0` then `1`): what follows a scalar is checked by its caller, which
/// refuses a digit there, as serde does.
pub(crate) fn scalar_len(b: &[u8]) -> Option<usize> {
    let literal = |word: &[u8]| b.starts_with(word).then_some(word.len());
    match b.first()? {
        b't' => literal(b"true"),
        b'f' => literal(b"false"),
        b'n' => literal(b"null"),
        _ => number_len(b),
    }
}

/// The length of a JSON number at the start of `b`, as [`scalar_len`] reads it.
fn number_len(b: &[u8]) -> Option<usize> {
    let digits = |from: usize| digits_len(&b[from..]);
    let mut i = usize::from(b.first() == Some(&b'-'));
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i += digits(i),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let n = digits(i + 1);
        if n == 0 {
            return None;
        }
        i += 1 + n;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return None;
        }
        i += n;
    }
    Some(i)
}

/// How many ASCII digits `b` starts with. Eight at a time: a timestamp has thirteen.
fn digits_len(b: &[u8]) -> usize {
    let mut n = 0;
    while let Some(word) = b.get(n..n + 8) {
        let not_digits = not_digits(word.try_into().expect("eight bytes"));
        if not_digits != 0 {
            return n + not_digits.trailing_zeros() as usize / 8;
        }
        n += 8;
    }
    n + b[n..].iter().take_while(|c| c.is_ascii_digit()).count()
}

/// The bytes of `word` that are not ASCII digits, each flagged in its high bit.
fn not_digits(word: [u8; 8]) -> u64 {
    let x = u64::from_le_bytes(word);
    // A byte's high bit is set already at 0x80 and above; below that, adding 0x46 sets it from
    // 0x3a (past `9`), and adding 0x50 leaves it clear below 0x30 (`0`). No sum carries into the
    // next byte.
    let low = x & (ONES * 0x7f);
    let past_nine = low + ONES * 0x46;
    let from_zero = low + ONES * 0x50;
    (x | past_nine | !from_zero) & (ONES * 0x80)
}

/// The value of `digits` when they are all ASCII digits, at most nineteen (so that they fit a
/// `u64`): the first few one at a time, then eight at a time.
pub(crate) fn digits_value(digits: &[u8]) -> Option<u64> {
    let (head, words) = digits.split_at(digits.len() % 8);
    let mut n = 0;
    for &c in head {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n * 10 + u64::from(digit);
    }
    for word in words.chunks_exact(8) {
        let word = word.try_into().expect("eight bytes");
        if not_digits(word) != 0 {
            return None;
        }
        n = n * 100_000_000 + eight_digits(word);
    }
    Some(n)
}

/// The value and length of an integer at the start of `b` written plainly: one to fifteen digits,
/// the first not `0`, and no fraction or exponent after them. Read eight bytes at a time, so it
/// needs the eight (or, past eight digits, sixteen) bytes from the start; `None` for anything
/// else, which [`scalar_len`] and serde read.
pub(crate) fn plain_integer(b: &[u8]) -> Option<(u64, usize)> {
    const POWERS_OF_TEN: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];
    if !matches!(b.first()?, b'1'..=b'9') {
        return None;
    }
    let first = b.get(..8)?.try_into().expect("eight bytes");
    let (value, len) = match not_digits(first) {
        0 => {
            let second = b.get(8..16)?.try_into().expect("eight bytes");
            let n = not_digits(second).trailing_zeros() as usize / 8;
            // Sixteen digits or more (`n` is 8) are left to the slow path.
            let low = leading_digits(second, n)?;
            (eight_digits(first) * POWERS_OF_TEN[n] + low, 8 + n)
        }
        stops => {
            let n = stops.trailing_zeros() as usize / 8;
            (leading_digits(first, n)?, n)
        }
    };
    (!matches!(b.get(len), Some(b'.' | b'e' | b'E'))).then_some((value, len))
}

/// The value of the first `n` bytes of `word`, digits, when `n` is less than eight: they are moved
/// to the end of the word, after `0`s.
fn leading_digits(word: [u8; 8], n: usize) -> Option<u64> {
    if n >= 8 {
        return None;
    }
    if n == 0 {
        return Some(0);
    }
    let shift = 8 * (8 - n as u32);
    let zeros = u64::from_le_bytes([b'0'; 8]);
    let word = (u64::from_le_bytes(word) << shift) | (zeros >> (64 - shift));
    Some(eight_digits(word.to_le_bytes()))
}

/// The value of eight ASCII digits, the first the most significant. Neighbouring numbers are
/// joined in lanes twice as wide each step: two digits, then four, then eight.
fn eight_digits(word: [u8; 8]) -> u64 {
    let v = u64::from_le_bytes(word) - u64::from_le_bytes([b'0'; 8]);
    let v = (v * 10 + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = (v * 100 + (v >> 16)) & 0x0000_ffff_0000_ffff;
    (v * 10_000 + (v >> 32)) & 0xffff_ffff
}

fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\t' | b'\r')) {
        i += 1;
    }
    i
}

/// Skips an object member's `"key":` at `i` (after whitespace), returning where its value starts.
fn member_key(b: &[u8], i: usize) -> Option<usize> {
    let i = skip_whitespace(b, i);
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = skip_whitespace(b, string_end(b, i + 1)?);
    (b.get(i) == Some(&b':')).then_some(i + 1)
}

/// The end of the object or array starting at `b[start]`, when it is one JSON value as serde_json
/// reads a `RawValue` from it (`serde_json::StreamDeserializer` then `byte_offset`). `None` when
/// it is not, and when it nests deeper than [`MAX_DEPTH`].
pub(crate) fn container_end(b: &[u8], start: usize) -> Option<usize> {
    if !matches!(b.get(start), Some(b'{' | b'[')) {
        return None;
    }
    // The open containers, innermost in the lowest bit: 1 for an object.
    let mut open: u128 = 0;
    let mut depth = 0;
    let mut i = start;
    loop {
        i = skip_whitespace(b, i);
        match *b.get(i)? {
            c @ (b'{' | b'[') => {
                let object = c == b'{';
                i = skip_whitespace(b, i + 1);
                let empty = b.get(i) == Some(if object { &b'}' } else { &b']' });
                if empty {
                    i += 1;
                } else {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    depth += 1;
                    open = open << 1 | u128::from(object);
                    if object {
                        i = member_key(b, i)?;
                    }
                    continue;
                }
            }
            b'"' => i = string_end(b, i + 1)?,
            _ => i += scalar_len(&b[i..])?,
        }
        // A value ended: a comma goes on to the next one, closing brackets end containers.
        loop {
            if depth == 0 {
                return Some(i);
            }
            i = skip_whitespace(b, i);
            let object = open & 1 == 1;
            match *b.get(i)? {
                b',' if object => {
                    i = member_key(b, i + 1)?;
                    break;
                }
                b',' => {
                    i += 1;
                    break;
                }
                b'}' if object => {}
                b']' if !object => {}
                _ => return None,
            }
            i += 1;
            open >>= 1;
            depth -= 1;
        }
    }
}

/// The objects of the JSON array of objects that is `text` (whitespace allowed around tokens),
/// each as serde_json reads it as a `RawValue`; `None` for anything else, which is then left to
/// serde: a posted batch of client messages is an array of objects.
pub(crate) fn object_items(text: &str) -> Option<Vec<&str>> {
    let b = text.as_bytes();
    let mut i = skip_whitespace(b, 0);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i = skip_whitespace(b, i + 1);
    let mut items = Vec::new();
    if b.get(i) != Some(&b']') {
        loop {
            if b.get(i) != Some(&b'{') {
                return None;
            }
            let end = container_end(b, i)?;
            items.push(&text[i..end]);
            i = skip_whitespace(b, end);
            match b.get(i)? {
                b',' => i = skip_whitespace(b, i + 1),
                b']' => break,
                _ => return None,
            }
        }
    }
    (skip_whitespace(b, i + 1) == b.len()).then_some(items)
}

#[cfg(test)]
mod tests;
