//! Random message ids and login secrets, drawn from an injected RNG.

use rand::Rng;

/// The original's nanoid alphabet: 64 URL-safe characters, so one random
/// byte masked to 6 bits picks one without bias.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// Length of a message id, as the original (21 × 6 = 126 bits).
pub const ID_LEN: usize = 21;

/// Length of a login secret: 24 × 6 = 144 random bits (at least 128 required).
pub const SECRET_LEN: usize = 24;

/// A fresh 21-character message id.
pub fn message_id<R: Rng + ?Sized>(rng: &mut R) -> String {
    random_string(rng, ID_LEN)
}

/// Length of an epoch: 16 × 6 = 96 bits, so that two stores never share one.
pub const EPOCH_LEN: usize = 16;

/// A fresh epoch, naming a new numbering of messages.
pub fn epoch<R: Rng + ?Sized>(rng: &mut R) -> String {
    random_string(rng, EPOCH_LEN)
}

/// A fresh login secret. Draw it from a CSPRNG: it is the only thing that
/// protects a name.
pub fn secret<R: Rng + ?Sized>(rng: &mut R) -> String {
    random_string(rng, SECRET_LEN)
}

fn random_string<R: Rng + ?Sized>(rng: &mut R, len: usize) -> String {
    let mut bytes = [0u8; 32];
    let bytes = &mut bytes[..len];
    rng.fill_bytes(bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn ids_and_secrets_have_the_right_length_and_alphabet() {
        let mut rng = StdRng::seed_from_u64(7);
        let id = message_id(&mut rng);
        let secret = secret(&mut rng);
        assert_eq!((id.len(), secret.len()), (ID_LEN, SECRET_LEN));
        assert!(
            id.bytes()
                .chain(secret.bytes())
                .all(|b| ALPHABET.contains(&b))
        );
        assert_ne!(message_id(&mut rng), id);
    }
}
