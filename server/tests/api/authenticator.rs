//! A software passkey for the tests: a discoverable ES256 credential that answers the server's
//! real WebAuthn options with real data: the client data JSON a browser writes, CBOR
//! authenticator data and attestation object ("none"), a COSE public key, and ECDSA P-256
//! signatures (aws-lc-rs). Nothing in it is the server's code; it is what Chromium's virtual
//! authenticator does, written out.

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Flags of the authenticator data (WebAuthn §6.1).
const USER_PRESENT: u8 = 0x01;
const USER_VERIFIED: u8 = 0x04;
const ATTESTED_DATA: u8 = 0x40;

pub struct SoftPasskey {
    key: EcdsaKeyPair,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub rp_id: String,
    /// The signature counter; tests set it back to play a cloned authenticator.
    pub counter: u32,
    origin: String,
}

impl SoftPasskey {
    /// Answers `navigator.credentials.create()` with these options (the server's JSON) from a
    /// page at `origin`: the new credential, and the `credential` JSON the page sends back.
    pub fn create(options: &Value, origin: &str) -> (SoftPasskey, Value) {
        let public = &options["publicKey"];
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("a key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .expect("the key");
        let mut credential_id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut credential_id).expect("random");
        let passkey = SoftPasskey {
            key,
            credential_id,
            user_handle: B64
                .decode(public["user"]["id"].as_str().expect("user.id"))
                .expect("user.id is base64url"),
            rp_id: public["rp"]["id"].as_str().expect("rp.id").to_owned(),
            counter: 0,
            origin: origin.to_owned(),
        };
        let client_data = passkey.client_data("webauthn.create", public);
        let point = passkey.key.public_key().as_ref().to_vec();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let cose_key = map(&[
            (int(1), int(2)),  // kty: EC2
            (int(3), int(-7)), // alg: ES256
            (int(-1), int(1)), // crv: P-256
            (int(-2), bytes(&point[1..33])),
            (int(-3), bytes(&point[33..65])),
        ]);
        let mut auth_data = passkey.auth_data(USER_PRESENT | USER_VERIFIED | ATTESTED_DATA);
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID: none
        auth_data.extend_from_slice(&(passkey.credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&passkey.credential_id);
        auth_data.extend_from_slice(&cose_key);
        let attestation = map(&[
            (text("fmt"), text("none")),
            (text("attStmt"), map(&[])),
            (text("authData"), bytes(&auth_data)),
        ]);
        let id = B64.encode(&passkey.credential_id);
        let credential = json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "clientDataJSON": B64.encode(client_data),
                "attestationObject": B64.encode(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        });
        (passkey, credential)
    }

    /// Answers `navigator.credentials.get()` with these options (the server's JSON): the
    /// assertion JSON the page sends back, signed over its authenticator data and client data.
    pub fn get(&mut self, options: &Value) -> Value {
        let public = &options["publicKey"];
        self.counter += 1;
        let client_data = self.client_data("webauthn.get", public);
        let auth_data = self.auth_data(USER_PRESENT | USER_VERIFIED);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature = self
            .key
            .sign(&SystemRandom::new(), &signed)
            .expect("a signature");
        let id = B64.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "clientDataJSON": B64.encode(client_data),
                "authenticatorData": B64.encode(auth_data),
                "signature": B64.encode(signature.as_ref()),
                "userHandle": B64.encode(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }

    fn client_data(&self, kind: &str, public: &Value) -> Vec<u8> {
        json!({
            "type": kind,
            "challenge": public["challenge"].as_str().expect("a challenge"),
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    fn auth_data(&self, flags: u8) -> Vec<u8> {
        let mut data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend_from_slice(&self.counter.to_be_bytes());
        data
    }
}

// A little CBOR (RFC 8949): the few items the attestation object and the COSE key need.

fn head(major: u8, n: u64) -> Vec<u8> {
    let major = major << 5;
    match n {
        0..=23 => vec![major | n as u8],
        24..=0xff => vec![major | 24, n as u8],
        0x100..=0xffff => {
            let mut out = vec![major | 25];
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out
        }
        _ => {
            let mut out = vec![major | 26];
            out.extend_from_slice(&(n as u32).to_be_bytes());
            out
        }
    }
}

fn int(n: i64) -> Vec<u8> {
    match n >= 0 {
        true => head(0, n as u64),
        false => head(1, (-1 - n) as u64),
    }
}

fn bytes(data: &[u8]) -> Vec<u8> {
    let mut out = head(2, data.len() as u64);
    out.extend_from_slice(data);
    out
}

fn text(data: &str) -> Vec<u8> {
    let mut out = head(3, data.len() as u64);
    out.extend_from_slice(data.as_bytes());
    out
}

fn map(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = head(5, entries.len() as u64);
    for (key, value) in entries {
        out.extend_from_slice(key);
        out.extend_from_slice(value);
    }
    out
}
