//! Tokens: a slab key plus a generation, so events never reach the wrong connection.
//!
//! A `mio::Token` is a `usize` chosen by us. The slab hands out keys that are
//! reused as soon as an entry is removed, so a bare key is ambiguous: an event
//! queued for a connection that has since closed would be delivered to the
//! connection that took its key. The token therefore carries a generation in
//! its upper half:
//!
//! ```text
//!  usize:  [ generation : BITS/2 ][ slab key : BITS/2 ]
//! ```
//!
//! Every connection gets the loop's next generation when it is inserted, and an
//! event is dispatched only if the key's current occupant carries the same
//! generation. The loop also retires keys until the end of the turn in which
//! their connection closed, so a key is never reused inside one batch of events;
//! the generation is the second, independent line of defence (and the one that
//! covers cross-thread ids, which outlive a turn).
//!
//! The two highest token values are reserved for the waker and the listener.

use mio::Token;

use crate::ConnId;

/// Bits of a token used by the slab key; the rest holds the generation.
const KEY_BITS: u32 = usize::BITS / 2;
/// Mask selecting the slab key from a token.
const KEY_MASK: usize = (1 << KEY_BITS) - 1;

/// Token of the loop's `mio::Waker` (cross-thread commands).
pub(crate) const WAKER: Token = Token(usize::MAX);
/// Token of the listening socket.
pub(crate) const LISTENER: Token = Token(usize::MAX - 1);

/// The largest slab key a connection may have: larger keys would collide with
/// the reserved tokens above once combined with the largest generation.
pub(crate) const MAX_KEY: usize = KEY_MASK - 2;

/// Builds the token for slab `key` at `generation`.
///
/// # Panics
///
/// Panics if `key` exceeds [`MAX_KEY`]; the loop refuses connections before that.
pub(crate) fn encode(key: usize, generation: u32) -> Token {
    assert!(key <= MAX_KEY, "slab key {key} does not fit in a token");
    let generation = (generation as usize) & KEY_MASK;
    Token((generation << KEY_BITS) | key)
}

/// Splits a connection token into its slab key and generation.
pub(crate) fn decode(token: Token) -> (usize, u32) {
    (token.0 & KEY_MASK, (token.0 >> KEY_BITS) as u32)
}

/// Hands out generations: one per inserted connection, wrapping, never zero.
///
/// Zero is skipped so that a zeroed id can never name a live connection.
/// The token of connection `id` on its loop.
pub(crate) fn of(id: ConnId) -> Token {
    encode(id.slot(), id.generation())
}

/// The id of the connection with `token` on loop `loop_index`.
pub(crate) fn id(loop_index: u32, token: Token) -> ConnId {
    let (slot, generation) = decode(token);
    ConnId::new(loop_index, slot, generation)
}

#[derive(Debug)]
pub(crate) struct Generations {
    /// The last generation handed out.
    last: u32,
}

impl Generations {
    /// Starts counting at 1.
    pub(crate) fn new() -> Self {
        Generations { last: 0 }
    }

    /// Returns the next generation, wrapping within the bits a token holds.
    pub(crate) fn next(&mut self) -> u32 {
        let max = KEY_MASK as u64;
        let next = (u64::from(self.last) + 1) % (max + 1);
        self.last = if next == 0 { 1 } else { next as u32 };
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encode_then_decode_round_trips() {
        for (key, generation) in [(0, 1), (7, 42), (MAX_KEY, KEY_MASK as u32)] {
            assert_eq!(decode(encode(key, generation)), (key, generation));
        }
    }

    #[test]
    fn same_key_with_another_generation_is_another_token() {
        assert_ne!(encode(3, 1), encode(3, 2));
    }

    #[test]
    fn connection_tokens_never_equal_reserved_tokens() {
        let top = encode(MAX_KEY, KEY_MASK as u32);
        assert_ne!(top, WAKER);
        assert_ne!(top, LISTENER);
    }

    #[test]
    fn generations_skip_zero_when_wrapping() {
        let mut gens = Generations {
            last: KEY_MASK as u32 - 1,
        };
        assert_eq!(gens.next(), KEY_MASK as u32);
        assert_eq!(gens.next(), 1);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn oversized_key_panics() {
        encode(MAX_KEY + 1, 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 16 } else { 1024 }))]

        #[test]
        fn any_key_and_generation_round_trip_and_never_hit_a_reserved_token(
            key in 0..=MAX_KEY,
            generation in any::<u32>(),
        ) {
            let token = encode(key, generation);
            prop_assert_eq!(decode(token), (key, generation & KEY_MASK as u32));
            prop_assert!(token != WAKER && token != LISTENER);
        }

        #[test]
        fn distinct_keys_or_generations_make_distinct_tokens(
            a in (0..=MAX_KEY, any::<u32>()),
            b in (0..=MAX_KEY, any::<u32>()),
        ) {
            prop_assume!(a != b);
            prop_assert_ne!(encode(a.0, a.1), encode(b.0, b.1));
        }

        #[test]
        fn generations_count_up_by_one_and_wrap_past_zero_to_one(
            last in 0..=KEY_MASK as u32,
        ) {
            let next = Generations { last }.next();
            let expected = if last == KEY_MASK as u32 { 1 } else { last + 1 };
            prop_assert_eq!(next, expected);
            prop_assert_ne!(next, 0);
        }
    }
}
