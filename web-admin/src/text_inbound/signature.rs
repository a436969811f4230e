//! How an SMS gateway's post proves it comes from the gateway (issue 15 item 1): Twilio's
//! `X-Twilio-Signature`, or a long shared token for other gateways.
//!
//! Twilio signs every webhook with `base64(HMAC-SHA1(auth token, URL + params))`, where URL is the
//! full URL it posted to (scheme, host, path and query, exactly as configured in its console) and
//! params are the form fields sorted by name (then value, duplicates once), each name followed by
//! its value. Both checks compare in constant time. Not done: Twilio's JSON-body scheme
//! (`bodySHA256`), which SMS webhooks do not use.

use base64::Engine as _;
use oncall_core::secret::constant_time_eq;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The `X-Twilio-Signature` Twilio sends for a form post of `params` to `url`.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    // HMAC takes a key of any length, so `new_from_slice` cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `given` is Twilio's signature of this post.
pub fn twilio_signature_valid(auth_token: &str, url: &str, params: &[(String, String)], given: &str) -> bool {
    !auth_token.is_empty()
        && constant_time_eq(&twilio_signature(auth_token, url, params), given.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Twilio's documented example (its security docs and every helper library's tests): auth token
    /// `12345`, this URL and these fields sign to `RSOYDt4T1cUTdK1PDd93/VVr8B8=`.
    #[test]
    fn twilios_documented_example_signature() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        // Out of order on purpose: the signature sorts them.
        let params = pairs(&[
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+14158675309"),
            ("Caller", "+14158675309"),
            ("CallSid", "CA1234567890ABCDE"),
        ]);
        assert_eq!(twilio_signature("12345", url, &params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(twilio_signature_valid(
            "12345",
            url,
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        let mut tampered = params.clone();
        tampered[0].1 = "9999".into();
        assert!(!twilio_signature_valid(
            "12345",
            url,
            &tampered,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!twilio_signature_valid(
            "12345",
            &format!("{url}&x=1"),
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!twilio_signature_valid(
            "54321",
            url,
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!twilio_signature_valid("", url, &params, ""));
    }

    /// Repeated fields (twilio-php's test vector): sorted by value too, duplicates once.
    #[test]
    fn repeated_fields_are_sorted_and_counted_once() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(twilio_signature("12345", url, &params), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }
}
